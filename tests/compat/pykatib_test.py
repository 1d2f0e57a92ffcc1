"""pykatib next to the official kubeflow-katib 0.19.0, in one process (resolve ``katib-compat``).

- Both SDKs import and push in the same process: pykatib registers no ``api.v1.beta1`` protobuf
  symbols (its codec is hand-written), so it cannot clash with kubeflow-katib's.
- ``tune()`` builds the same Experiment: both clients send their request to a loopback HTTP
  recorder standing in for the API server, and the recorded bodies are compared field by field.
  The only differences are pykatib's on purpose: categorical values in ``feasibleSpace.list``,
  and for Push without ``packages_to_install`` a pip step that runs only when the image lacks pykatib.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from katib_testsupport.processes import DBManagerProcess
from kubeflow import katib as official
from kubeflow.katib import katib_api_pb2, katib_api_pb2_grpc
from kubeflow.katib.types.types import TrainerResources
from kubeflow.katib.utils import utils as official_utils
from kubernetes import client as k8s

import pykatib as katib


@pytest.fixture(scope="module")
def db_manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with DBManagerProcess("--db-url", f"sqlite:///{tmp_path_factory.mktemp('db')}/katib.db") as proc:
        yield proc.address


def test_both_sdks_report_from_one_process(db_manager: str, monkeypatch: pytest.MonkeyPatch) -> None:
    trial = f"both-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KATIB_TRIAL_NAME", trial)
    monkeypatch.setattr(official_utils, "get_current_k8s_namespace", lambda: "kubeflow")  # not in a pod
    official.report_metrics({"loss": 0.5}, db_manager_address=db_manager)
    katib.report_metrics({"loss": 0.25}, db_manager, step=1)
    with grpc.insecure_channel(db_manager) as channel:
        reply = katib_api_pb2_grpc.DBManagerStub(channel).GetObservationLog(
            katib_api_pb2.GetObservationLogRequest(trial_name=trial), timeout=30
        )
    theirs = [(m.metric.name, m.metric.value) for m in reply.observation_log.metric_logs]
    client = katib.KatibClient(client_configuration=k8s.Configuration())
    ours = client.get_trial_metrics(trial, db_manager_address=db_manager, steps=True)
    assert sorted(theirs) == sorted([("loss", "0.5"), ("pykatib.step", "1"), ("loss", "0.25")])
    assert sorted((log.metric.name, log.metric.value) for log in ours) == sorted(theirs)
    # By default the step companion is no metric of the user's; the history joins it back.
    plain = client.get_trial_metrics(trial, db_manager_address=db_manager)
    assert sorted((log.metric.name, log.metric.value) for log in plain) == [("loss", "0.25"), ("loss", "0.5")]
    history = client.get_trial_metric_history(trial, db_manager_address=db_manager)
    assert sorted((point.value, point.step) for point in history["loss"]) == [(0.25, 1), (0.5, None)]


class Recorder(BaseHTTPRequestHandler):
    """A loopback stand-in for the API server's create endpoint: records bodies, echoes them."""

    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append({"path": self.path, "body": body})
        if body["metadata"]["name"] == "taken":
            answer, code = {"kind": "Status", "status": "Failure", "reason": "AlreadyExists", "code": 409}, 409
        else:
            answer, code = {**body, "metadata": {**body["metadata"], "uid": "1"}}, 201
        data = json.dumps(answer).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def recorder() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def objective(parameters):  # type: ignore[no-untyped-def]
    import pykatib as katib

    katib.report_metrics({"result": float(parameters["a"]) * 0.1, "loss": 0.5})


def compact(search: Any) -> dict[str, Any]:
    """A small tune() call: int, double, categorical and fixed values, GPUs (docs/katib-compat.md#tune-experiment)."""
    return {
        "parameters": {
            "a": search.int(10, 20),
            "b": search.double(0.1, 0.2),
            "c": search.categorical(["x", "y"]),
            "fixed": 5,
        },
        "objective_metric_name": "result",
        "additional_metric_names": ["loss"],
        "max_trial_count": 12,
        "resources_per_trial": {"gpu": "2"},
        "metrics_collector_config": {"kind": "Push"},
    }


def stdout_everything(search: Any) -> dict[str, Any]:
    return {
        "parameters": {"lr": search.double(0.01, 0.1, step=0.01), "layers": search.int(1, 4), "tag": "v1"},
        "objective_metric_name": "loss",
        "objective_type": "minimize",
        "objective_goal": 0.05,
        "algorithm_name": "tpe",
        "algorithm_settings": {"random_state": 10, "n_startup_trials": 3},
        "max_trial_count": 6,
        "parallel_trial_count": 2,
        "max_failed_trial_count": 1,
        "env_per_trial": {"EPOCHS": 3, "MODE": "fast"},
        "packages_to_install": ["numpy>=1.26", "pykatib"],
        "pip_index_urls": ["https://pypi.org/simple", "https://example.org/simple"],
        "retain_trials": True,
        "trial_active_deadline_seconds": 300,
        "base_image": "docker.io/library/python:3.11",
        "resources_per_trial": {"CPU": "1", "Memory": "1Gi"},
    }


def kubernetes_objects(_: Any) -> dict[str, Any]:
    # The official SDK's own objects, passed to both clients.
    return {
        "parameters": {"a": official.search.int(1, 3), "c": official.search.categorical(["p", "q"])},
        "objective_metric_name": "acc",
        "algorithm_settings": [official.models.V1beta1AlgorithmSetting(name="seed", value="1")],
        "env_per_trial": [
            k8s.V1EnvVar(name="A", value="1"),
            k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="settings")),
        ],
        "resources_per_trial": k8s.V1ResourceRequirements(limits={"cpu": "2"}, requests={"cpu": "1"}),
        "metrics_collector_config": {"kind": "Push"},
        "packages_to_install": ["pykatib"],
    }


def pytorchjob(search: Any) -> dict[str, Any]:
    return {
        "parameters": {"lr": search.double(0.1, 0.2)},
        "objective_metric_name": "loss",
        "resources_per_trial": TrainerResources(num_workers=3, num_procs_per_worker=2, resources_per_worker={"gpu": 1}),
        "metrics_collector_config": {"kind": "Push"},
        "packages_to_install": ["torch"],
        "trial_active_deadline_seconds": 120,
    }


def run_tune(
    make: Callable[..., Any], base: str, search: Any, arguments: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    configuration = k8s.Configuration()
    configuration.host = base
    client = make(client_configuration=configuration, namespace="kubeflow")
    Recorder.bodies.clear()
    client.tune(name="tune-experiment", objective=objective, **arguments(search))
    (request,) = Recorder.bodies
    assert request["path"] == "/apis/kubeflow.org/v1beta1/namespaces/kubeflow/experiments"
    body: dict[str, Any] = request["body"]
    return body


def containers(experiment: dict[str, Any]) -> list[dict[str, Any]]:
    job = experiment["spec"]["trialTemplate"]["trialSpec"]
    if job["kind"] == "Job":
        return list(job["spec"]["template"]["spec"]["containers"])
    return [c for spec in job["spec"]["pytorchReplicaSpecs"].values() for c in spec["template"]["spec"]["containers"]]


@pytest.mark.parametrize("arguments", [compact, stdout_everything, kubernetes_objects, pytorchjob])
def test_tune_builds_the_official_experiment(recorder: str, arguments: Callable[[Any], dict[str, Any]]) -> None:
    theirs = run_tune(official.KatibClient, recorder, official.search, arguments)
    ours = run_tune(katib.KatibClient, recorder, katib.search, arguments)
    expected = copy.deepcopy(theirs)
    # Difference 1: the categorical bug (docs/katib-compat.md#search-helpers) is fixed.
    for parameter in expected["spec"]["parameters"]:
        if parameter["parameterType"] == "categorical":
            parameter["feasibleSpace"] = {"list": parameter["feasibleSpace"].pop("distribution")}
    # Difference 3: the objective gets numbers (docs/sdk.md#typed-parameters).
    for container in containers(expected):
        for parameter in expected["spec"]["parameters"]:
            placeholder = repr("${trialParameters." + parameter["name"] + "}")
            if "args" in container:
                container["args"] = [a.replace(placeholder, typed(parameter, placeholder)) for a in container["args"]]
    # Difference 2: Push without packages_to_install installs pykatib only where it is missing.
    if arguments(official.search).get("packages_to_install") is None and ours["spec"]["metricsCollectorSpec"] == {
        "collector": {"kind": "Push"}
    }:
        for mine in containers(ours):
            guard, rest = mine["args"][0].split("fi\n\nprogram_path", 1)
            assert guard.startswith("\nif ! python3 -c 'import pykatib' >/dev/null 2>&1; then\n")
            assert f"pykatib=={katib.__version__}\n" in guard
            mine["args"] = ["\nprogram_path" + rest]
    assert_same(ours, expected)


def typed(parameter: dict[str, Any], placeholder: str) -> str:
    """How our script hands a parameter to the objective."""
    kind = parameter["parameterType"]
    if kind == "int":
        return f"int({placeholder})"
    if kind == "double":
        return f"float({placeholder})"
    if kind == "discrete":
        values = parameter["feasibleSpace"]["list"]
        return f"{'int' if all(v.lstrip('+-').isdigit() for v in values) else 'float'}({placeholder})"
    return placeholder


def assert_same(ours: Any, theirs: Any, path: str = "") -> None:
    """Field by field, so a failure names the JSON path that differs."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        assert sorted(ours) == sorted(theirs), f"{path or '.'}: keys differ"
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list) and isinstance(ours, list):
        assert len(ours) == len(theirs), f"{path}: lengths differ"
        for index, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(mine, other, f"{path}[{index}]")
    else:
        assert ours == theirs, f"{path}: {ours!r} != {theirs!r}"


def test_an_existing_name_fails_the_same_way(recorder: str) -> None:
    messages = []
    for make, search in ((official.KatibClient, official.search), (katib.KatibClient, katib.search)):
        configuration = k8s.Configuration()
        configuration.host = recorder
        with pytest.raises(Exception) as caught:  # noqa: PT011 - upstream raises a bare Exception
            make(client_configuration=configuration, namespace="kubeflow").tune(
                name="taken", objective=objective, parameters={"a": search.int(1, 2)}, objective_metric_name="m"
            )
        messages.append(str(caught.value))
    assert messages == ["A Katib Experiment with the name kubeflow/taken already exists."] * 2


def test_the_official_sdk_is_this_version() -> None:
    import importlib.metadata

    assert importlib.metadata.version("kubeflow-katib") == "0.19.0"
    assert Path(official.__file__).exists()
