"""KatibClient against a real kube-apiserver with Katib's CRDs (infra/testcluster); no controllers run,
so the tests write the status a controller would write through the status subresource."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s

import pykatib as katib
from katib_core import constants
from katib_core.errors import AlreadyExistsError, ValidationError
from katib_core.models import Experiment, OptimalTrial
from katib_testcluster.cluster import Cluster

GROUP, VERSION = constants.GROUP, constants.VERSION


def objective(parameters):  # type: ignore[no-untyped-def]
    import pykatib as katib

    katib.report_metrics({"loss": float(parameters["lr"])})


@pytest.fixture()
def client(k8s_cluster: Cluster, k8s_namespace: str) -> katib.KatibClient:
    return katib.KatibClient(client_configuration=k8s_cluster.api_client.configuration, namespace=k8s_namespace)


@pytest.fixture()
def custom(k8s_cluster: Cluster) -> k8s.CustomObjectsApi:
    return k8s.CustomObjectsApi(k8s_cluster.api_client)


def tune(client: katib.KatibClient, name: str = "push-exp", **overrides: Any) -> Experiment:
    arguments: dict[str, Any] = {
        "objective": objective,
        "parameters": {"lr": katib.search.double(0.01, 0.1), "opt": katib.search.categorical(["sgd", "adam"])},
        "objective_metric_name": "loss",
        "objective_type": "minimize",
        "max_trial_count": 4,
        "parallel_trial_count": 2,
        "metrics_collector_config": {"kind": "Push"},
    }
    arguments.update(overrides)
    return client.tune(name=name, **arguments)


def set_status(custom: k8s.CustomObjectsApi, namespace: str, plural: str, name: str, status: dict[str, Any]) -> None:
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, plural, name, {"status": status})


def condition(kind: str, status: str = "True") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": f"Experiment{kind}", "message": f"Experiment is {kind.lower()}"}


def test_tune_get_list_edit_delete(client: katib.KatibClient, k8s_namespace: str) -> None:
    created = tune(client)
    assert created.metadata is not None
    assert created.metadata.uid
    got = client.get_experiment("push-exp")
    assert got.spec is not None
    assert created.spec is not None
    assert got.spec.to_api() == created.spec.to_api()
    assert got.spec.metrics_collector_spec is not None
    assert got.spec.metrics_collector_spec.to_api() == {"collector": {"kind": "Push"}}
    assert got.spec.parameters is not None
    assert got.spec.parameters[1].feasible_space is not None
    assert got.spec.parameters[1].feasible_space.list == ["sgd", "adam"]
    assert [e.metadata.name for e in client.list_experiments() if e.metadata] == ["push-exp"]
    client.edit_experiment_budget("push-exp", max_trial_count=8, parallel_trial_count=4)
    got = client.get_experiment("push-exp", namespace=k8s_namespace)
    assert got.spec is not None
    assert (got.spec.max_trial_count, got.spec.parallel_trial_count) == (8, 4)
    client.delete_experiment("push-exp")
    with pytest.raises(RuntimeError, match=f"^Failed to get Katib Experiment: {k8s_namespace}/push-exp"):
        client.get_experiment("push-exp")
    assert client.list_experiments() == []


def test_create_experiment_takes_json_and_refuses_duplicates(client: katib.KatibClient, k8s_namespace: str) -> None:
    body = tune(client, "first").to_api()
    body["metadata"] = {"name": "second"}
    body["spec"]["someFutureField"] = "kept by pykatib; pruned by the apiserver's structural schema"
    created = client.create_experiment(body)
    assert created.metadata is not None
    assert created.metadata.namespace == k8s_namespace
    with pytest.raises(
        AlreadyExistsError, match=f"^A Katib Experiment with the name {k8s_namespace}/second already exists.$"
    ):
        client.create_experiment(body)
    assert sorted(e.metadata.name or "" for e in client.list_experiments() if e.metadata) == ["first", "second"]


def test_invalid_experiments_fail_before_anything_is_sent(client: katib.KatibClient) -> None:
    with pytest.raises(ValidationError) as caught:
        tune(client, "Bad_Name")
    assert caught.value.field == "metadata.name"
    with pytest.raises(ValidationError) as caught:
        tune(client, parameters={"lr": katib.search.double(0.2, 0.1)})
    assert caught.value.field == "spec.parameters[0].feasibleSpace"
    assert client.list_experiments() == []


def test_conditions_wait_and_optimal_trial(
    client: katib.KatibClient, custom: k8s.CustomObjectsApi, k8s_namespace: str
) -> None:
    tune(client)
    assert not client.is_experiment_created("push-exp")
    assert client.get_optimal_hyperparameters("push-exp") is None
    set_status(
        custom, k8s_namespace, "experiments", "push-exp", {"conditions": [condition("Created"), condition("Running")]}
    )
    assert client.is_experiment_created("push-exp")
    assert client.is_experiment_running("push-exp")
    assert [c.type for c in client.get_experiment_conditions("push-exp")] == ["Created", "Running"]
    assert client.wait_for_experiment_condition("push-exp", expected_condition="Running", polling_interval=1).status
    with pytest.raises(TimeoutError, match="to reach Restarting state"):
        client.wait_for_experiment_condition("push-exp", expected_condition="Restarting", timeout=2, polling_interval=1)
    optimal = {
        "bestTrialName": "push-exp-abc",
        "parameterAssignments": [{"name": "lr", "value": "0.05"}],
        "observation": {"metrics": [{"name": "loss", "min": "0.1", "max": "0.9", "latest": "0.1"}]},
    }
    set_status(
        custom,
        k8s_namespace,
        "experiments",
        "push-exp",
        {
            "conditions": [condition("Created"), condition("Running", "False"), condition("Succeeded")],
            "currentOptimalTrial": optimal,
        },
    )
    done = client.wait_for_experiment_condition("push-exp", polling_interval=1)
    assert client.is_experiment_succeeded("push-exp", experiment=done)
    assert not client.is_experiment_running("push-exp", experiment=done)
    assert client.get_optimal_hyperparameters("push-exp") == OptimalTrial.from_api(optimal)
    set_status(custom, k8s_namespace, "experiments", "push-exp", {"conditions": [condition("Failed")]})
    assert client.is_experiment_failed("push-exp")
    with pytest.raises(RuntimeError, match=f"^Experiment: {k8s_namespace}/push-exp is Failed"):
        client.wait_for_experiment_condition("push-exp", polling_interval=1)
    assert client.wait_for_experiment_condition("push-exp", expected_condition="Failed", polling_interval=1)


def test_trials_and_suggestions(client: katib.KatibClient, custom: k8s.CustomObjectsApi, k8s_namespace: str) -> None:
    tune(client)
    for index, succeeded in enumerate((True, False)):
        name = f"push-exp-{index}"
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            k8s_namespace,
            "trials",
            {
                "apiVersion": constants.API_VERSION,
                "kind": "Trial",
                "metadata": {"name": name, "labels": {constants.EXPERIMENT_LABEL: "push-exp"}},
                "spec": {
                    "objective": {"type": "minimize", "objectiveMetricName": "loss"},
                    "parameterAssignments": [{"name": "lr", "value": str(0.01 * (index + 1))}],
                    "metricsCollector": {"collector": {"kind": "Push"}},
                    "primaryContainerName": "training-container",
                },
            },
        )
        conditions = [{"type": "Succeeded" if succeeded else "Running", "status": "True", "reason": "x"}]
        metrics = {"metrics": [{"name": "loss", "min": "0.2", "max": "0.5", "latest": "0.2"}]}
        set_status(custom, k8s_namespace, "trials", name, {"conditions": conditions, "observation": metrics})
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        k8s_namespace,
        "trials",
        {"apiVersion": constants.API_VERSION, "kind": "Trial", "metadata": {"name": "other"}},
    )
    assert sorted(t.metadata.name or "" for t in client.list_trials("push-exp") if t.metadata) == [
        "push-exp-0",
        "push-exp-1",
    ]
    assert len(client.list_trials()) == 3
    trial = client.get_trial("push-exp-0")
    assert trial.spec is not None
    assert trial.spec.parameter_assignments is not None
    assert trial.spec.parameter_assignments[0].value == "0.01"
    (details,) = client.get_success_trial_details("push-exp")
    assert details["name"] == "push-exp-0"
    assert [(p.name, p.value) for p in details["parameter_assignments"]] == [("lr", "0.01")]
    assert [(m.name, m.latest) for m in details["metrics"]] == [("loss", "0.2")]
    with pytest.raises(RuntimeError, match=f"^Failed to get Katib Trial: {k8s_namespace}/missing"):
        client.get_trial("missing")
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        k8s_namespace,
        "suggestions",
        {
            "apiVersion": constants.API_VERSION,
            "kind": "Suggestion",
            "metadata": {"name": "push-exp"},
            "spec": {"algorithm": {"algorithmName": "random"}, "requests": 2},
        },
    )
    suggestion = client.get_suggestion("push-exp")
    assert suggestion.spec is not None
    assert suggestion.spec.requests == 2
    assert [s.metadata.name for s in client.list_suggestions() if s.metadata] == ["push-exp"]


def test_get_job_logs_reads_the_trials_pod(
    client: katib.KatibClient, custom: k8s.CustomObjectsApi, k8s_cluster: Cluster, k8s_namespace: str
) -> None:
    """kubeflow-katib's get_job_logs: the trial's Pod (through the apiserver's pods/log), from the
    primary container, or from the StdOut collector's sidecar, which echoes the training's output."""
    core = k8s.CoreV1Api(k8s_cluster.api_client)
    counting = "import time\nfor i in range(4):\n    print('epoch', i, flush=True)\n    time.sleep(0.3)\n"
    for name, kind, container in (
        ("pushed", "Push", "training-container"),
        ("parsed", "StdOut", "metrics-logger-and-collector"),
    ):
        spec = {"metricsCollector": {"collector": {"kind": kind}}, "primaryContainerName": "training-container"}
        labels = {constants.EXPERIMENT_LABEL: "logs-exp"}
        body = {"apiVersion": constants.API_VERSION, "kind": "Trial", "metadata": {"name": name, "labels": labels}}
        custom.create_namespaced_custom_object(GROUP, VERSION, k8s_namespace, "trials", {**body, "spec": spec})
        containers = [
            {"name": container, "image": "python:3.11-slim", "command": ["python", "-c", counting]},
            {"name": "other", "image": "python:3.11-slim", "command": ["python", "-c", "print('noise')"]},
        ]
        pod = {
            "metadata": {"name": f"{name}-pod", "labels": {constants.TRIAL_LABEL: name}},
            "spec": {"restartPolicy": "Never", "containers": containers},
        }
        core.create_namespaced_pod(k8s_namespace, pod)  # type: ignore[arg-type]  # JSON is sent as is
        if name == "pushed":  # followed while its Pod is being created: waits for it, then streams
            followed = list(client.get_job_logs("logs-exp", "pushed", follow=True))
            assert followed == [f"epoch {i}" for i in range(4)]

    assert list(client.get_job_logs("logs-exp", "parsed", follow=True)) == [f"epoch {i}" for i in range(4)]
    assert list(client.get_job_logs("logs-exp", "pushed")) == [f"epoch {i}" for i in range(4)]

    with pytest.raises(ValueError, match="^Trial name is required$"):
        client.get_job_logs("logs-exp", "")
    with pytest.raises(RuntimeError, match="is a trial of Experiment 'logs-exp', not of 'other-exp'"):
        list(client.get_job_logs("other-exp", "pushed"))
    with pytest.raises(RuntimeError, match=f"^Failed to get logs of Trial {k8s_namespace}/missing"):
        list(client.get_job_logs("logs-exp", "missing"))
    body = {"apiVersion": constants.API_VERSION, "kind": "Trial", "metadata": {"name": "podless", "labels": labels}}
    custom.create_namespaced_custom_object(GROUP, VERSION, k8s_namespace, "trials", body)
    with pytest.raises(RuntimeError, match=f"no Pod of Trial {k8s_namespace}/podless"):
        list(client.get_job_logs("logs-exp", "podless"))
