"""The SDKs against a whole Katib installation: whatever ``KATIB_E2E_KUBECONFIG`` points at (kind
with ``infra/install`` in CI), else the real test control plane with the services as processes
(``system.py`` says how). Every test gets its own namespace; trials really run and really push.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

import pykatib as katib
from e2e import system as system_mod
from e2e import wheel_index
from e2e.controllers import TRIAL_IMAGE
from e2e.system import GROUP, VERSION, System
from katib_dbmanager.server import DBManagerServer
from katib_testcluster import polling
from katib_testcluster.cluster import Cluster

#: Where runtime_package_dependencies puts the official SDK's tune() runner.
OFFICIAL_TUNE_PEX = Path("official-tune.pex").absolute()
#: Katib's default tune() images (kubeflow-katib 0.19.0's BASE_IMAGE_PYTORCH and
#: BASE_IMAGE_TENSORFLOW) and the minor version of the Python 3 each carries. Neither has pykatib
#: or kubeflow-katib: the trials pip-install them.
KATIB_DEFAULT_IMAGES = [
    pytest.param("docker.io/pytorch/pytorch:2.2.1-cuda12.1-cudnn8-runtime", 10, id="pytorch-py3.10"),
    pytest.param("docker.io/tensorflow/tensorflow:2.13.0", 8, id="tensorflow-py3.8"),
]
#: The grpcio each of those images ships, as its minor version (-1: none), by Python minor.
GRPCIO_MINOR = {10: -1, 8: 56}
#: What trials of the official SDK install, as its docs say to.
OFFICIAL_SDK = "kubeflow-katib==0.19.0"


@pytest.fixture(scope="session")
def system(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    try:
        installed = system_mod.from_environment(os.environ)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    if installed is not None:
        yield installed
        return
    cluster: Cluster = request.getfixturevalue("k8s_cluster")
    db: DBManagerServer = request.getfixturevalue("db_manager")
    workdir = tmp_path_factory.mktemp("system")
    scope = os.urandom(5).hex()
    with system_mod.webhook(cluster, db_address=db.address, scope=scope, workdir=workdir) as hook:

        def controllers(namespace: str) -> contextlib.AbstractContextManager[None]:
            return system_mod.controllers(
                kubeconfig=cluster.kubeconfig, db_address=db.address, namespace=namespace, workdir=workdir
            )

        yield System(
            kubeconfig=cluster.kubeconfig,
            api=cluster.api_client,
            db_manager_address=db.address,
            scope=scope,
            trial_image=TRIAL_IMAGE,  # the trials import pykatib without installing it
            installed=False,
            controllers=controllers,
        )
        print("--- webhook", hook.tail(40), sep="\n")


@pytest.fixture()
def namespace(system: System, request: pytest.FixtureRequest) -> Iterator[str]:
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower())
    with system.namespace(stem) as name:
        system_mod.wait_for_webhooks(system.api, name)
        yield name


def katib_client(system: System, namespace: str) -> katib.KatibClient:
    return katib.KatibClient(config_file=str(system.kubeconfig), namespace=namespace)


def trials(system: System, namespace: str, experiment: str) -> list[dict[str, Any]]:
    found: Any = client.CustomObjectsApi(system.api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "trials", label_selector=f"katib.kubeflow.org/experiment={experiment}"
    )
    return list(found["items"])


def conditions(body: dict[str, Any]) -> set[str]:
    """The types of the conditions that hold."""
    return {c["type"] for c in (body.get("status") or {}).get("conditions") or () if c["status"] == "True"}


def push_objective(parameters):  # type: ignore[no-untyped-def]  # its source runs in the trial
    import pykatib as katib

    x = float(parameters["x"])
    for step in range(3):
        katib.report_metrics({"loss": (x - 0.3) ** 2 + 0.01 / (step + 1)}, step=step)


def stdout_objective(parameters):  # type: ignore[no-untyped-def]  # its source runs in the trial
    x = float(parameters["x"])
    for step in range(3):
        print(f"epoch {step}")
        print(f"loss={(x - 0.3) ** 2 + 0.01 / (step + 1)}", flush=True)


def silent_objective(parameters):  # type: ignore[no-untyped-def]  # its source runs in the trial
    print("training without reporting anything", parameters)


def tune(system: System, namespace: str, name: str, objective: Any, kind: str, **kwargs: Any) -> katib.KatibClient:
    """pykatib's ``tune()`` of ``objective`` over x ∈ [0, 1], minimising ``loss``."""
    tuner = katib_client(system, namespace)
    arguments: dict[str, Any] = {
        "max_trial_count": 3,
        "parallel_trial_count": 3,
        "base_image": system.trial_image,
        **kwargs,
    }
    tuner.tune(
        name=name,
        objective=objective,
        parameters={"x": katib.search.double(min=0.0, max=1.0)},
        objective_metric_name="loss",
        objective_type="minimize",
        metrics_collector_config={"kind": kind},
        **arguments,
    )
    return tuner


def assert_optimal_is_the_best_trial(
    system: System, namespace: str, name: str, katib_client: katib.KatibClient, *, trial_count: int = 3
) -> None:
    optimal = katib_client.get_optimal_hyperparameters(name, namespace)
    assert optimal is not None
    assert optimal.observation is not None
    assert optimal.observation.metrics
    assert optimal.parameter_assignments
    assert optimal.parameter_assignments[0].name == "x"
    (loss,) = (m for m in optimal.observation.metrics if m.name == "loss")
    found = trials(system, namespace, name)
    assert [conditions(t) & {"Succeeded"} for t in found] == [{"Succeeded"}] * trial_count
    best = min(
        found,
        key=lambda t: float(next(m["min"] for m in t["status"]["observation"]["metrics"] if m["name"] == "loss")),
    )
    assert optimal.best_trial_name == best["metadata"]["name"]
    # Minimising: the loss that counts is the smallest a trial pushed, and the DB manager has them all.
    pushed = [float(v) for _, metric, v in system.metric_logs(best["metadata"]["name"]) if metric == "loss"]
    assert len(pushed) == 3
    assert float(str(loss.min)) == min(pushed)


def test_tune_with_push_succeeds_with_an_optimal_trial(system: System, namespace: str) -> None:
    katib_client = tune(system, namespace, "push", push_objective, "Push")
    katib_client.wait_for_experiment_condition("push", namespace, timeout=600, polling_interval=1)
    assert_optimal_is_the_best_trial(system, namespace, "push", katib_client)


def python_push_objective(parameters):  # type: ignore[no-untyped-def]  # its source runs in the trial
    import sys

    import pykatib as katib

    try:
        import grpc  # pykatib pushes through it when the image has it

        grpcio_minor = int(grpc.__version__.split(".")[1])
    except ImportError:
        grpcio_minor = -1
    x = float(parameters["x"])
    for step in range(3):
        katib.report_metrics({"loss": (x - 0.3) ** 2 + 0.01 / (step + 1)}, step=step)
    # What the trial really ran on.
    katib.report_metrics({"python_minor": sys.version_info[1], "grpcio_minor": grpcio_minor})


@pytest.fixture(scope="session")
def pykatib_index(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The pykatib wheels Pants built, as a package index the trials' pip can reach (``wheel_index``)."""
    if system.installed:
        pytest.fail(
            "the trials of an installed cluster cannot reach this machine's loopback wheel index (pykatib is"
            " not on PyPI yet): run these on the test control plane, or deselect -k 'not pytorch and not tensorflow'",
            pytrace=False,
        )
    try:
        wheels = wheel_index.find_wheels(["pykatib", "pykatib_core"], Path.cwd())
    except FileNotFoundError as exc:
        pytest.fail(str(exc), pytrace=False)
    root = tmp_path_factory.mktemp("wheel-index")
    wheel_index.build(wheels, root)
    with wheel_index.serving(root) as url:
        yield url


def print_pod_logs(request: pytest.FixtureRequest, namespace: str) -> None:
    """The tail of every container log of ``namespace`` (the test control plane only), for a failure."""
    cluster: Cluster = request.getfixturevalue("k8s_cluster")
    for log in sorted((cluster.dir / "node" / "pods" / namespace).glob("*/logs/*.log")):
        print(f"--- {log.parent.parent.name}/{log.name}", log.read_text(errors="replace")[-3000:], sep="\n")


@pytest.mark.parametrize(("image", "python_minor"), KATIB_DEFAULT_IMAGES)
def test_tune_with_push_on_katibs_default_image_installs_pykatib(
    system: System, namespace: str, pykatib_index: str, image: str, python_minor: int, request: pytest.FixtureRequest
) -> None:
    """The trial path on the Python of Katib's default images: each trial pip-installs pykatib (the
    local index; h2 from PyPI), on TF 2.13's Python 3.8 next to its grpcio 1.56, and pushes."""
    katib_client = tune(
        system,
        namespace,
        "default-image",
        python_push_objective,
        "Push",
        base_image=image,
        pip_index_urls=["https://pypi.org/simple", pykatib_index],
    )
    try:
        katib_client.wait_for_experiment_condition("default-image", namespace, timeout=900, polling_interval=1)
    except Exception:
        print_pod_logs(request, namespace)
        raise
    assert_optimal_is_the_best_trial(system, namespace, "default-image", katib_client)
    for trial in trials(system, namespace, "default-image"):
        ran_on = {metric: float(value) for _, metric, value in system.metric_logs(trial["metadata"]["name"])}
        assert (ran_on["python_minor"], ran_on["grpcio_minor"]) == (python_minor, GRPCIO_MINOR[python_minor])


def test_tune_with_stdout_succeeds_through_the_sidecar(system: System, namespace: str) -> None:
    # Three at once: each Pod's training and sidecar share only their own metrics-volume emptyDir
    # and PID namespace (the node agent emulates both), so no sidecar can mistake another's training.
    katib_client = tune(system, namespace, "stdout", stdout_objective, "StdOut")
    katib_client.wait_for_experiment_condition("stdout", namespace, timeout=900, polling_interval=1)
    assert_optimal_is_the_best_trial(system, namespace, "stdout", katib_client)
    for trial in trials(system, namespace, "stdout"):
        # The sidecar stored the parsed lines: three losses, nothing else from the log.
        assert [m for _, m, _ in system.metric_logs(trial["metadata"]["name"])] == ["loss"] * 3


def test_a_push_trial_that_never_reports_is_metrics_unavailable(system: System, namespace: str) -> None:
    katib_client = tune(
        system, namespace, "silent", silent_objective, "Push", max_trial_count=1, parallel_trial_count=1
    )

    def settled() -> list[dict[str, Any]] | None:
        found = trials(system, namespace, "silent")
        return found if found and "MetricsUnavailable" in conditions(found[0]) else None

    (trial,) = polling.wait_until(settled, timeout=600, what="the silent trial to be MetricsUnavailable", interval=1)
    assert "Succeeded" not in conditions(trial)
    # Katib's sentinel: the trial's objective recorded as unavailable at the zero time.
    assert system.metric_logs(trial["metadata"]["name"]) == [("0001-01-01T00:00:00Z", "loss", "unavailable")]
    assert katib_client.get_optimal_hyperparameters("silent", namespace) is None


def stopping_objective(parameters):  # type: ignore[no-untyped-def]  # its source runs in the trial
    import pykatib as katib

    x = float(parameters["x"])
    for step in range(10):
        if katib.report_metrics({"loss": (0.1 if x < 0.5 else 2.0) + 1.0 / (step + 1)}, step=step):
            break  # the verdict of medianstop, returned by the report that met its rule


def test_medianstop_early_stops_bad_push_trials(system: System, namespace: str) -> None:
    """Rules computed by the experiment controller from succeeded trials' pushes, delivered by the
    webhook in env, met inside report_metrics; the trial controller marks the trial EarlyStopped."""
    from pykatib import _tuning

    model = _tuning.build_experiment(
        name="stopping",
        namespace=namespace,
        objective=stopping_objective,
        parameters={"x": katib.search.categorical(["0.1", "0.2", "0.9", "0.8"])},
        base_image=system.trial_image,
        objective_metric_name="loss",
        objective_type="minimize",
        algorithm_name="grid",
        max_trial_count=4,
        parallel_trial_count=1,
        metrics_collector_config={"kind": "Push"},
    )
    raw = model.to_api()
    raw["spec"]["earlyStopping"] = {
        "algorithmName": "medianstop",
        "algorithmSettings": [{"name": "min_trials_required", "value": "2"}, {"name": "start_step", "value": "3"}],
    }
    tuner = katib_client(system, namespace)
    tuner.create_experiment(raw, namespace)
    tuner.wait_for_experiment_condition("stopping", namespace, timeout=900, polling_interval=1)
    found = trials(system, namespace, "stopping")
    assert len(found) == 4
    by_x = {next(a["value"] for a in t["spec"]["parameterAssignments"] if a["name"] == "x"): t for t in found}
    for x in ("0.1", "0.2"):  # ran before two trials had succeeded: no rules, all 10 steps
        assert "Succeeded" in conditions(by_x[x])
        assert [m for _, m, _ in system.metric_logs(by_x[x]["metadata"]["name"])].count("loss") == 10
    for x in ("0.9", "0.8"):
        trial = by_x[x]
        assert trial["spec"]["earlyStoppingRules"][0]["comparison"] == "greater"
        assert "EarlyStopped" in conditions(trial), trial["status"]
        pushed = [m for _, m, _ in system.metric_logs(trial["metadata"]["name"])]
        assert pushed.count("loss") == 3  # stopped at the rule's start step
        assert "pykatib.early-stopped" in pushed
    experiment = tuner.get_experiment("stopping", namespace)
    assert experiment.status is not None
    assert experiment.status.trials_early_stopped == 2


@pytest.fixture(scope="session")
def official_tune(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official SDK's tune() runner, as a venv."""
    if not OFFICIAL_TUNE_PEX.exists():
        pytest.fail(f"{OFFICIAL_TUNE_PEX} is missing: run under Pants (./pants test tests/e2e:sdk)", pytrace=False)
    venv = tmp_path_factory.mktemp("official") / "venv"
    subprocess.run(
        [sys.executable, str(OFFICIAL_TUNE_PEX), "venv", "--collisions-ok", str(venv)],
        env={**os.environ, "PEX_TOOLS": "1"},
        check=True,
    )
    return venv


@pytest.mark.parametrize(
    ("image", "python_minor"),
    [pytest.param("docker.io/library/python:3.11-slim", 11, id="python3.11-slim"), *KATIB_DEFAULT_IMAGES],
)
def test_official_sdk_tune_with_push_is_accepted_and_completed(
    system: System, namespace: str, official_tune: Path, image: str, python_minor: int, request: pytest.FixtureRequest
) -> None:
    """The official SDK's tune(); its trials pip-install kubeflow-katib from PyPI (it installs
    nothing by itself), on TF 2.13's image upgrading its grpcio 1.56 to what kubeflow-katib needs."""
    extra = {"base_image": image, "packages_to_install": [OFFICIAL_SDK]}
    done = subprocess.run(
        [str(official_tune / "pex"), str(system.kubeconfig), namespace, "official", json.dumps(extra)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0 and not system.installed:
        print_pod_logs(request, namespace)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-4000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    spec = result["experiment"]["spec"]
    assert spec["metricsCollectorSpec"]["collector"]["kind"] == "Push"
    assert spec["trialTemplate"]["primaryContainerName"] == "training-container"
    optimal = result["optimal"]
    assert optimal["parameterAssignments"][0]["name"] == "x"
    assert [m["name"] for m in optimal["observation"]["metrics"]] == ["loss"]
    found = trials(system, namespace, "official")
    assert [conditions(t) & {"Succeeded"} for t in found] == [{"Succeeded"}] * 3
    for trial in found:
        logs = system.metric_logs(trial["metadata"]["name"])
        assert sorted(metric for _, metric, _ in logs) == ["loss"] * 3 + ["python_minor"]
        assert [float(value) for _, metric, value in logs if metric == "python_minor"] == [python_minor]


def test_the_webhook_denies_a_bad_experiment(system: System, namespace: str) -> None:
    # Sent as raw JSON: pykatib's client would refuse it before the API server sees it.
    custom = client.CustomObjectsApi(system.api)
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": "bad"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "no-such-algorithm"},
            "maxTrialCount": 2,
            "parallelTrialCount": 5,
            "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "1", "max": "0"}}],
            "trialTemplate": {
                "primaryContainerName": "training-container",
                "trialParameters": [{"name": "x", "reference": "x"}],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {"name": "training-container", "image": "python:3.11-slim", "command": ["true"]}
                                ],
                            }
                        }
                    },
                },
            },
        },
    }
    with pytest.raises(ApiException) as caught:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", body)
    assert caught.value.status == 400
    message = json.loads(str(caught.value.body))["message"]
    assert 'admission webhook "validator.experiment.katib.kubeflow.org" denied the request' in message
    assert "spec.algorithm.algorithmName" in message
    assert "no-such-algorithm" in message
    with pytest.raises(ApiException):
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", "bad")


def test_deleting_an_experiment_deletes_its_metrics(system: System, namespace: str) -> None:
    katib_client = tune(system, namespace, "doomed", push_objective, "Push", max_trial_count=2, parallel_trial_count=2)
    katib_client.wait_for_experiment_condition("doomed", namespace, timeout=600, polling_interval=1)
    names = [t["metadata"]["name"] for t in trials(system, namespace, "doomed")]
    # pykatib stores each report's step as metric pykatib.step next to the loss.
    assert [sorted({m for _, m, _ in system.metric_logs(n)}) for n in names] == [["loss", "pykatib.step"]] * 2
    katib_client.delete_experiment("doomed", namespace)

    def cleaned() -> bool:
        return not trials(system, namespace, "doomed") and not any(system.metric_logs(n) for n in names)

    # The trial controller's finalizer clean-metrics-in-db: DeleteObservationLog before the Trial goes.
    polling.wait_until(cleaned, timeout=300, what="the trials and their metric logs to be deleted", interval=1)
