"""TrialReconciler against the real API server and a real DB manager, one reconcile at a time (no kopf):
pull mode waiting for its collector, a DB manager outage that delays but never corrupts status, and
a finalizer that waits for the DB manager."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

import pytest
from kubernetes import client

from katib_core import constants, defaulting, rendering, testing
from katib_core.errors import StorageUnavailableError
from katib_core.models import ParameterAssignment, Trial, TrialAssignment
from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.storage import testing as storage_testing
from katib_operator import kubeapi
from katib_operator.caches import ObjectCache
from katib_operator.kubeapi import KubeApi
from katib_operator.objects import Objects
from katib_testcluster import polling
from katib_testcluster.cluster import Cluster
from katib_trial_controller import resources
from katib_trial_controller.reconciler import TrialReconciler
from pykatib import dbmanager
from pykatib.metric_logs import MetricLogs

T0 = "2024-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def db() -> Iterator[DBManagerServer]:
    with storage_testing.supply("sqlite") as supply:
        server = DBManagerServer(supply.open(), listen_address="127.0.0.1:0").start()
        yield server
        server.stop()


class Harness:
    """A reconciler whose caches are refreshed from the API server before each pass."""

    def __init__(self, cluster: Cluster, namespace: str, address: str) -> None:
        self.api = cluster.api_client
        self.kubeconfig = cluster.kubeconfig
        self.namespace = namespace
        self.trials: ObjectCache[Trial] = ObjectCache(Trial.from_api)
        self.jobs: ObjectCache[dict[str, Any]] = ObjectCache(lambda b: b, trim=resources.job_summary)
        self.channels: list[dbmanager.Channel] = []
        self.live = self.logs(address)
        kind = resources.parse_trial_resource("Job.v1.batch")
        self.reconciler = self.build(self.live)
        self._kinds = {(kind.resource.api_version, kind.kind): kind}

    def logs(self, address: str) -> MetricLogs:
        channel = dbmanager.open_channel(address)
        self.channels.append(channel)
        return MetricLogs(dbmanager.DBManagerClient(channel), timeout=2)

    def build(self, logs: MetricLogs) -> TrialReconciler:
        kind = resources.parse_trial_resource("Job.v1.batch")
        return TrialReconciler(
            objects=Objects(KubeApi(kubeapi.load(str(self.kubeconfig)))),
            trials=self.trials,
            jobs=self.jobs,
            job_kinds={(kind.resource.api_version, kind.kind): kind},
            metric_logs=logs,
        )

    def create(self, name: str, kind: str) -> None:
        experiment = testing.experiment(
            "exp", namespace=self.namespace, kind=kind, template=testing.job_template(["python", "-c", "pass"])
        )
        assert experiment.metadata is not None
        experiment.metadata.uid = None
        assignment = TrialAssignment(name=name, parameter_assignments=[ParameterAssignment(name="lr", value="0.02")])
        body = rendering.build_trial(defaulting.default_experiment(experiment), assignment).to_api()
        client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            constants.GROUP, constants.VERSION, self.namespace, "trials", body
        )

    def refresh(self, name: str) -> None:
        custom = client.CustomObjectsApi(self.api)
        try:
            found: Any = custom.get_namespaced_custom_object(
                constants.GROUP, constants.VERSION, self.namespace, "trials", name
            )
            self.trials.put(found)
        except client.ApiException as exc:
            assert exc.status == 404
            self.trials.remove((self.namespace, name))
        try:
            self.jobs.put(
                cast(dict[str, Any], custom.get_namespaced_custom_object("batch", "v1", self.namespace, "jobs", name))
            )
        except client.ApiException as exc:
            assert exc.status == 404
            self.jobs.remove((self.namespace, name))

    def reconcile(self, name: str, reconciler: TrialReconciler | None = None) -> Any:
        self.refresh(name)
        return (reconciler or self.reconciler)((self.namespace, name))

    def status(self, name: str) -> dict[str, str]:
        self.refresh(name)
        trial = self.trials.raw((self.namespace, name)) or {}
        return {c["type"]: c["status"] for c in (trial.get("status") or {}).get("conditions") or ()}

    def job_completed(self, name: str) -> bool:
        job = client.BatchV1Api(self.api).read_namespaced_job(name, self.namespace)
        conditions = job.status.conditions if job.status else None
        return any(c.type == "Complete" and c.status == "True" for c in conditions or ())


@pytest.fixture()
def harness(k8s_cluster: Cluster, k8s_namespace: str, db: DBManagerServer) -> Iterator[Harness]:
    made = Harness(k8s_cluster, k8s_namespace, db.address)
    yield made
    for channel in made.channels:
        with contextlib.suppress(Exception):
            channel.close()


def report(address: str, trial: str, value: str) -> None:
    with contextlib.closing(dbmanager.open_channel(address)) as channel:
        dbmanager.DBManagerClient(channel).report(
            trial, [dbmanager.encode_metric_log(T0, "loss", value)], key=dbmanager.new_report_key(), timeout=10
        )


def test_pull_mode_requeues_until_its_collector_reports(harness: Harness, db: DBManagerServer) -> None:
    harness.create("pull", "StdOut")
    assert harness.reconcile("pull").requeue_after is None
    assert harness.status("pull") == {"Created": "True", "Running": "True"}
    polling.wait_until(lambda: harness.job_completed("pull"), timeout=120, what="the job to complete")
    assert harness.reconcile("pull").requeue_after == 1.0
    assert harness.status("pull") == {"Created": "True", "Running": "True"}
    report(db.address, "pull", "0.5")
    assert harness.reconcile("pull").requeue_after is None
    assert harness.status("pull") == {"Created": "True", "Running": "False", "Succeeded": "True"}


def test_a_db_manager_outage_delays_status_and_never_corrupts_it(harness: Harness, db: DBManagerServer) -> None:
    down = harness.build(harness.logs("127.0.0.1:1"))
    harness.create("outage", "Push")
    harness.reconcile("outage")
    polling.wait_until(lambda: harness.job_completed("outage"), timeout=120, what="the job to complete")
    for _ in range(2):
        with pytest.raises(StorageUnavailableError):
            harness.reconcile("outage", down)
        assert harness.status("outage") == {"Created": "True", "Running": "True"}  # not MetricsUnavailable
    harness.reconcile("outage")  # the DB manager is back: nothing was pushed, so MU with its sentinel
    assert harness.status("outage")["MetricsUnavailable"] == "True"
    with contextlib.closing(dbmanager.open_channel(db.address)) as channel:
        rows = dbmanager.DBManagerClient(channel).get("outage", timeout=10)
    assert [(r.time_stamp, r.metric.name, r.metric.value) for r in rows] == [
        ("0001-01-01T00:00:00Z", "loss", "unavailable")
    ]


def test_the_finalizer_waits_for_the_db_manager(harness: Harness, db: DBManagerServer) -> None:
    down = harness.build(harness.logs("127.0.0.1:1"))
    harness.create("doomed", "Push")
    report(db.address, "doomed", "1")
    client.CustomObjectsApi(harness.api).delete_namespaced_custom_object(
        constants.GROUP, constants.VERSION, harness.namespace, "trials", "doomed"
    )
    with pytest.raises(StorageUnavailableError):
        harness.reconcile("doomed", down)
    harness.refresh("doomed")
    assert harness.trials.raw((harness.namespace, "doomed")) is not None  # deletion waits
    harness.reconcile("doomed")
    polling.wait_until(
        lambda: harness.reconcile("doomed") is not None and harness.trials.raw((harness.namespace, "doomed")) is None,
        timeout=30,
        what="the trial to go",
    )
    with contextlib.closing(dbmanager.open_channel(db.address)) as channel:
        assert dbmanager.DBManagerClient(channel).get("doomed", timeout=10) == []
