"""One experiment loop, two adapters: the same scenarios on local mode and on the controllers.

``katib_core.experiment_loop`` and ``katib_core.trial_loop`` are the only loops; local mode
(``pykatib_local.runner``: the work directory, processes) and the controllers (the real test
control plane, trial Pods, a DB manager on MariaDB) are adapters around them. Each scenario runs
against both and asserts the same outcome: a suggester failure, a restart in the middle of an
experiment, a budget edit that resumes a finished LongRunning experiment, a trial that never
reports (MetricsUnavailable), and medianstop rules built from the succeeded trials' pushed values.
"""

from __future__ import annotations

import contextlib
import statistics
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from kubernetes import client

from e2e import controllers as c
from katib_core import constants
from katib_core import testing as builders
from katib_core.models import Experiment
from katib_core.trial_reconcile import SENTINEL_TIME
from katib_dbmanager.server import DBManagerServer
from katib_testcluster import polling
from katib_testcluster.cluster import Cluster
from pykatib_local.session import LocalSession

#: Training code: loss is smallest at lr = 0.05; also reports an additional metric.
PUSH = (
    "import pykatib; lr = float('${trialParameters.lr}'); "
    "pykatib.report_metrics({'loss': (lr - 0.05) ** 2, 'acc': 1 - lr})"
)
#: The same, a little later: a restart lands while trials run.
SLOW = "import time; time.sleep(2); " + PUSH
SILENT = "print('trained, reported nothing')"
COMPLETED = {"Succeeded", "Failed", "MetricsUnavailable", "Killed", "EarlyStopped"}


class World(Protocol):
    """An adapter with its store, seen from outside (API JSON in, API JSON out)."""

    def start(self, name: str, code: str, *, early_stopping: dict[str, str] | None = None, **spec: Any) -> None: ...

    def experiment(self, name: str) -> dict[str, Any]: ...

    def suggestion(self, name: str) -> dict[str, Any]: ...

    def trials(self, name: str) -> list[dict[str, Any]]: ...

    def metric_logs(self, trial: str) -> list[tuple[str, str, str]]: ...

    def edit_spec(self, name: str, change: Callable[[dict[str, Any]], None]) -> None: ...

    def restart(self) -> None: ...


class LocalWorld:
    """Local mode: a work directory, an in-process DB manager, the runner in a thread."""

    def __init__(self, workdir: Path) -> None:
        self.session = LocalSession(workdir)
        self.namespace = "default"
        self._started: list[str] = []

    def close(self) -> None:
        self.session.close()

    def start(self, name: str, code: str, *, early_stopping: dict[str, str] | None = None, **spec: Any) -> None:
        template = builders.job_template(["python", "-c", code])
        body = _with(
            builders.experiment_dict(name, namespace=self.namespace, template=template, **spec), early_stopping
        )
        self.session.store.create(Experiment.from_api(body))  # not validated: as a cluster without the webhook
        self.session.start(self.namespace, name)
        self._started.append(name)

    def experiment(self, name: str) -> dict[str, Any]:
        return self.session.store.get(Experiment, self.namespace, name).to_api()

    def suggestion(self, name: str) -> dict[str, Any]:
        found = [
            s for s in self.session.store.list_suggestions(self.namespace) if s.metadata and s.metadata.name == name
        ]
        return found[0].to_api()

    def trials(self, name: str) -> list[dict[str, Any]]:
        return [t.to_api() for t in self.session.store.list_trials(self.namespace, experiment=name)]

    def metric_logs(self, trial: str) -> list[tuple[str, str, str]]:
        return [(log.time_stamp, log.metric.name, log.metric.value) for log in self.session.db.get(trial, timeout=30)]

    def edit_spec(self, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        body = self.experiment(name)
        change(body["spec"])
        self.session.store.update(Experiment.from_api(body), spec_changed=True)
        self.session.start(self.namespace, name)  # as `pykatib run` does after an edit: the runner had ended

    def restart(self) -> None:
        for name in self._started:
            self.session.stop(self.namespace, name)
        for name in self._started:
            self.session.start(self.namespace, name)


class ClusterWorld:
    """The controllers in this process against the test control plane; trials are Pods."""

    def __init__(self, cluster: Cluster, db: DBManagerServer, namespace: str) -> None:
        self.api = cluster.api_client
        self._cluster = cluster
        self._db = db
        self.namespace = namespace
        self._running: contextlib.ExitStack | None = None
        self._up()

    def _up(self) -> None:
        stack = contextlib.ExitStack()
        stack.enter_context(c.in_process(self._cluster, self._db.address, self.namespace))
        self._running = stack

    def close(self) -> None:
        if self._running is not None:
            self._running.close()
            self._running = None

    def start(self, name: str, code: str, *, early_stopping: dict[str, str] | None = None, **spec: Any) -> None:
        template = c.push_template(self._db.address, code)
        body = _with(
            builders.experiment_dict(name, namespace=self.namespace, template=template, **spec), early_stopping
        )
        del body["metadata"]["uid"]
        client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            constants.GROUP, constants.VERSION, self.namespace, "experiments", body
        )

    def experiment(self, name: str) -> dict[str, Any]:
        return c.get(self.api, self.namespace, "experiments", name)

    def suggestion(self, name: str) -> dict[str, Any]:
        return c.get(self.api, self.namespace, "suggestions", name)

    def trials(self, name: str) -> list[dict[str, Any]]:
        return c.trials(self.api, self.namespace, name)

    def metric_logs(self, trial: str) -> list[tuple[str, str, str]]:
        return c.metric_logs(self._db.address, trial)

    def edit_spec(self, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        body = self.experiment(name)
        change(body["spec"])
        client.CustomObjectsApi(self.api).replace_namespaced_custom_object(
            constants.GROUP, constants.VERSION, self.namespace, "experiments", name, body
        )

    def restart(self) -> None:
        self.close()
        self._up()


@pytest.fixture(params=["local", "cluster"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "local":
        local = LocalWorld(tmp_path / "work")
        try:
            yield local
        finally:
            local.close()
        return
    cluster: Cluster = request.getfixturevalue("k8s_cluster")
    db: DBManagerServer = request.getfixturevalue("db_manager")
    namespace: str = request.getfixturevalue("k8s_namespace")
    remote = ClusterWorld(cluster, db, namespace)
    try:
        yield remote
    finally:
        remote.close()
        c.print_pod_logs(cluster, namespace)


def _with(body: dict[str, Any], early_stopping: dict[str, str] | None) -> dict[str, Any]:
    """``body`` with medianstop and ``early_stopping`` as its settings, if given."""
    if early_stopping is not None:
        settings = [{"name": k, "value": v} for k, v in early_stopping.items()]
        body["spec"]["earlyStopping"] = {"algorithmName": "medianstop", "algorithmSettings": settings}
    return body


def _name(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:5]}"


def _completed(world: World, name: str, *, timeout: float = 300) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = world.experiment(name)
        held = c.conditions(body)
        settled = all(COMPLETED & {k for k, v in c.conditions(t).items() if v == "True"} for t in world.trials(name))
        return body if settled and "True" in (held.get("Succeeded"), held.get("Failed")) else None

    return polling.wait_until(done, timeout=timeout, what=f"experiment {name} to complete", interval=0.3)


def test_a_suggester_failure_fails_the_suggestion_and_the_experiment(world: World) -> None:
    name = _name("badsettings")
    world.start(name, PUSH, settings={"random_state": "not-a-number"})
    experiment = _completed(world, name)
    assert c.conditions(experiment).get("Failed") == "True"
    assert c.reason(experiment, "Failed") == "ExperimentFailed"
    record = world.suggestion(name)
    assert c.conditions(record).get("Failed") == "True"
    failed = next(x for x in record["status"]["conditions"] if x["type"] == "Failed")
    assert "random_state" in failed["message"]
    assert "not an integer" in failed["message"]
    assert world.trials(name) == []


def test_a_restart_mid_experiment_neither_duplicates_nor_loses_trials(world: World) -> None:
    name = _name("restart")
    world.start(name, SLOW, max_trials=4, parallel=2)
    polling.wait_until(lambda: world.trials(name) or None, timeout=120, what="the first trials", interval=0.2)
    world.restart()
    experiment = _completed(world, name)
    assert c.reason(experiment, "Succeeded") == "ExperimentMaxTrialsReached"
    trials = world.trials(name)
    names = sorted(t["metadata"]["name"] for t in trials)
    assert len(names) == 4 == len(set(names))
    assert sorted(a["name"] for a in world.suggestion(name)["status"]["suggestions"]) == names
    for trial in trials:
        assert c.conditions(trial).get("Succeeded") == "True"
        assert [m for _, m, _ in world.metric_logs(trial["metadata"]["name"])].count("loss") == 1


def test_a_budget_edit_resumes_a_finished_long_running_experiment(world: World) -> None:
    name = _name("budget")
    world.start(name, PUSH, max_trials=2, parallel=2, resume_policy="LongRunning")
    first = _completed(world, name)
    assert c.reason(first, "Succeeded") == "ExperimentMaxTrialsReached"
    assert first["status"]["trialsSucceeded"] == 2

    def raise_budget(spec: dict[str, Any]) -> None:
        spec["maxTrialCount"] = 4

    world.edit_spec(name, raise_budget)

    def four_succeeded() -> dict[str, Any] | None:
        body = world.experiment(name)
        done = (body.get("status") or {}).get("trialsSucceeded") == 4 and c.conditions(body).get("Succeeded") == "True"
        return body if done else None

    experiment = polling.wait_until(four_succeeded, timeout=300, what=f"{name} to run 4 trials", interval=0.3)
    assert c.conditions(experiment).get("Succeeded") == "True"
    assert len({t["metadata"]["name"] for t in world.trials(name)}) == 4


def test_a_trial_that_never_reports_is_metrics_unavailable_with_its_sentinel(world: World) -> None:
    name = _name("silent")
    world.start(name, SILENT, max_trials=2, parallel=2, max_failed=5)
    experiment = _completed(world, name)
    assert c.reason(experiment, "Succeeded") == "ExperimentMaxTrialsReached"
    assert experiment["status"]["trialMetricsUnavailable"] == 2
    for trial in world.trials(name):
        assert c.conditions(trial).get("MetricsUnavailable") == "True"
        assert world.metric_logs(trial["metadata"]["name"]) == [(SENTINEL_TIME, "loss", "unavailable")]


def test_medianstop_rules_come_from_the_succeeded_trials_pushed_values(world: World) -> None:
    plain = _name("plain")
    world.start(plain, PUSH, max_trials=3, parallel=1)
    assert c.reason(_completed(world, plain), "Succeeded") == "ExperimentMaxTrialsReached"
    # Without earlyStopping no trial carries rules.
    assert all(not t["spec"].get("earlyStoppingRules") for t in world.trials(plain))

    name = _name("median")
    world.start(name, PUSH, max_trials=3, parallel=1, early_stopping={"min_trials_required": "2", "start_step": "1"})
    _completed(world, name)
    trials = world.trials(name)
    ruled = [t for t in trials if t["spec"].get("earlyStoppingRules")]
    assert len(trials) == 3
    assert len(ruled) == 1  # the third: asked for once two trials had succeeded
    others = [t for t in trials if t is not ruled[0]]
    losses = [float(v) for t in others for _, m, v in world.metric_logs(t["metadata"]["name"]) if m == "loss"]
    rule = ruled[0]["spec"]["earlyStoppingRules"][0]
    assert (rule["name"], rule["comparison"], int(rule["startStep"])) == ("loss", "greater", 1)
    assert float(rule["value"]) == pytest.approx(statistics.median(losses))
