import copy
from typing import Any

import jsonpatch
import pytest

from katib_core import pod_injection
from katib_core.models import MetricsCollectorSpec, Trial
from katib_core.pod_injection import CollectorImage, InjectionError, InjectionSettings

SETTINGS = InjectionSettings(
    db_manager_address="katib-db-manager.kubeflow:6789",
    collectors={
        "StdOut": CollectorImage("pykatib/metrics-collector:1"),
        "File": CollectorImage("pykatib/metrics-collector:1"),
        "TensorFlowEvent": CollectorImage("kubeflowkatib/tfevent-metrics-collector:v0.18.0"),
    },
)
TRIAL_ENV = {
    "name": "KATIB_TRIAL_NAME",
    "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['katib.kubeflow.org/trial']"}},
}
DB_ENV = {"name": "KATIB_DB_MANAGER_ADDRESS", "value": "katib-db-manager.kubeflow:6789"}


def pod(*containers: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Pod as the Job controller creates it for a Trial's Job."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "trial-1-",
            "namespace": "kubeflow",
            "labels": {"controller-uid": "u1", "job-name": "trial-1", **(labels or {})},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "trial-1", "uid": "u1"}],
        },
        "spec": {
            "containers": list(containers)
            or [{"name": "training-container", "image": "python:3.11", "command": ["python", "train.py", "--lr=0.1"]}],
            "restartPolicy": "Never",
        },
    }


def trial(kind: str = "Push", **spec: Any) -> Trial:
    collector: dict[str, Any] = {"collector": {"kind": kind}}
    if kind == "File":
        collector["source"] = {
            "fileSystemPath": {"path": "/var/log/train/metrics.json", "kind": "File", "format": "JSON"}
        }
    if kind == "TensorFlowEvent":
        collector["source"] = {"fileSystemPath": {"path": "/tf/logs/", "kind": "Directory"}}
    return Trial.from_api(
        {
            "metadata": {
                "name": "trial-1",
                "namespace": "kubeflow",
                "labels": {"katib.kubeflow.org/experiment": "exp"},
            },
            "spec": {
                "primaryContainerName": "training-container",
                "objective": {"type": "minimize", "objectiveMetricName": "loss", "additionalMetricNames": ["acc"]},
                "metricsCollector": collector,
                **spec,
            },
        }
    )


def test_push_gets_labels_and_env_and_nothing_else() -> None:
    original = pod()
    ops = pod_injection.pod_patch(original, trial("Push"), SETTINGS)
    assert ops == [
        {"op": "add", "path": "/metadata/labels/katib.kubeflow.org~1experiment", "value": "exp"},
        {"op": "add", "path": "/metadata/labels/katib.kubeflow.org~1trial", "value": "trial-1"},
        {"op": "add", "path": "/spec/containers/0/env", "value": [TRIAL_ENV, DB_ENV]},
    ]
    assert jsonpatch.apply_patch(original, ops) == pod_injection.mutate_pod(original, trial("Push"), SETTINGS)


def test_a_push_trial_with_stop_rules_gets_them_in_env_for_the_sdk() -> None:
    rules = [{"name": "loss", "value": "0.3", "comparison": "greater", "startStep": 4}]
    stoppable = trial("Push", earlyStoppingRules=rules)
    out = pod_injection.mutate_pod(pod(), stoppable, SETTINGS)
    env = out["spec"]["containers"][0]["env"]
    assert env[2:] == [
        {"name": "KATIB_EARLY_STOPPING_RULES", "value": "loss;0.3;greater;4"},
        {"name": "KATIB_EARLY_STOPPING_OBJECTIVE", "value": "loss;minimize"},
    ]
    assert len(out["spec"]["containers"]) == 1  # still no sidecar
    assert pod_injection.pod_patch(out, stoppable, SETTINGS) == []  # idempotent


def test_env_set_by_the_user_wins_and_mutation_is_idempotent() -> None:
    mine = {"name": "KATIB_DB_MANAGER_ADDRESS", "value": "db.other:6789"}
    container = {"name": "training-container", "command": ["python"], "env": [TRIAL_ENV, mine]}
    once = pod_injection.mutate_pod(pod(container), trial("Push"), SETTINGS)
    assert once["spec"]["containers"][0]["env"] == [TRIAL_ENV, mine]
    for kind in ("Push", "StdOut", "File"):
        first = pod_injection.mutate_pod(pod(), trial(kind), SETTINGS)
        assert pod_injection.pod_patch(first, trial(kind), SETTINGS) == []


def test_stdout_gets_the_sidecar_and_a_wrapped_command() -> None:
    out = pod_injection.mutate_pod(pod(), trial("StdOut"), SETTINGS)
    spec = out["spec"]
    assert spec["shareProcessNamespace"] is True
    assert spec["volumes"] == [{"name": "metrics-volume", "emptyDir": {}}]
    primary, sidecar = spec["containers"]
    assert primary["command"] == ["sh", "-c"]
    assert primary["args"] == [
        "python train.py --lr=0.1 1>/var/log/katib/metrics.log 2>&1"
        " || { rc=$?; echo failed > /var/log/katib/$$$$.pid; exit $rc; }"
        " && echo completed > /var/log/katib/$$$$.pid"
    ]
    assert primary["volumeMounts"] == [{"name": "metrics-volume", "mountPath": "/var/log/katib"}]
    assert sidecar == {
        "name": "metrics-logger-and-collector",
        "image": "pykatib/metrics-collector:1",
        "args": [
            "-t", "trial-1", "-m", "loss;acc", "-o-type", "minimize", "-s-db", "katib-db-manager.kubeflow:6789",
            "-path", "/var/log/katib/metrics.log", "-format", "TEXT",
        ],  # fmt: skip
        "imagePullPolicy": "IfNotPresent",
        "resources": {
            "requests": {"cpu": "50m", "memory": "10Mi", "ephemeral-storage": "500Mi"},
            "limits": {"cpu": "500m", "memory": "100Mi", "ephemeral-storage": "5Gi"},
        },
        "volumeMounts": [{"name": "metrics-volume", "mountPath": "/var/log/katib"}],
    }


def test_a_shell_script_runs_in_a_subshell_and_argv_is_quoted() -> None:
    script = {"name": "training-container", "command": ["bash", "-c"], "args": ["cd /x\npython -u run.py", "arg0"]}
    out = pod_injection.mutate_pod(pod(script), trial("StdOut"), SETTINGS)["spec"]["containers"][0]
    assert out["command"] == ["bash", "-c"]
    assert out["args"] == [
        "(\ncd /x\npython -u run.py\n) 1>/var/log/katib/metrics.log 2>&1"
        " || { rc=$?; echo failed > /var/log/katib/$$$$.pid; exit $rc; }"
        " && echo completed > /var/log/katib/$$$$.pid",
        "arg0",
    ]
    spaced = {"name": "training-container", "command": ["python", "-c", "print('a b')"]}
    out = pod_injection.mutate_pod(pod(spaced), trial("StdOut"), SETTINGS)["spec"]["containers"][0]
    assert out["args"][0].startswith("python -c 'print('\"'\"'a b'\"'\"')' 1>")


def test_file_collector_with_early_stopping_and_filters() -> None:
    rules = [{"name": "loss", "value": "2", "comparison": "greater", "startStep": 3}]
    settings = InjectionSettings(
        db_manager_address="db:6789",
        collectors={"File": CollectorImage("c:1", wait_all_processes=False, command=("katib-metrics-collector",))},
        early_stopping_address="exp-medianstop.kubeflow:6788",
        inject_security_context=True,
    )
    the_trial = trial("File", earlyStoppingRules=rules)
    container = {"name": "training-container", "command": ["python", "t.py"], "securityContext": {"runAsUser": 1000}}
    out = pod_injection.mutate_pod(pod(container), the_trial, settings)
    primary, sidecar = out["spec"]["containers"]
    assert sidecar["command"] == ["katib-metrics-collector"]
    assert sidecar["securityContext"] == {"runAsUser": 1000}
    assert sidecar["args"][sidecar["args"].index("-path") :] == [
        "-path", "/var/log/train/metrics.json", "-format", "JSON", "-w", "false",
        "-stop-rule", "loss;2;greater;3", "-s-earlystop", "exp-medianstop.kubeflow:6788",
    ]  # fmt: skip
    assert primary["volumeMounts"] == [{"name": "metrics-volume", "mountPath": "/var/log/train"}]
    assert primary["args"] == [
        "python t.py || { rc=$?; if grep -qx early-stopped /var/log/train/$$$$.pid 2>/dev/null;"
        " then echo 'Training was stopped early by the metrics collector';"
        " else echo failed > /var/log/train/$$$$.pid; exit $rc; fi; }"
        " && echo completed > /var/log/train/$$$$.pid"
    ]


def test_filters_and_tfevent_directory() -> None:
    filtered = trial("StdOut")
    assert filtered.spec is not None
    assert filtered.spec.metrics_collector is not None
    filtered.spec.metrics_collector.source = MetricsCollectorSpec.model_validate(
        {"source": {"filter": {"metricsFormat": ["(a)=(b)", "(c):(d)"]}}}
    ).source
    args = pod_injection.mutate_pod(pod(), filtered, SETTINGS)["spec"]["containers"][1]["args"]
    assert args[args.index("-f") + 1] == "(a)=(b);(c):(d)"
    out = pod_injection.mutate_pod(pod(), trial("TensorFlowEvent"), SETTINGS)
    primary, sidecar = out["spec"]["containers"]
    assert sidecar["name"] == "metrics-collector"
    assert "-format" not in sidecar["args"]
    assert sidecar["args"][sidecar["args"].index("-path") + 1] == "/tf/logs/"
    assert primary["volumeMounts"][0]["mountPath"] == "/tf/logs"
    assert primary["args"][0].endswith("&& echo completed > /tf/logs/$$$$.pid")


def test_custom_and_prometheus_collectors_are_not_wrapped() -> None:
    custom = trial(
        "Custom",
        metricsCollector={
            "collector": {"kind": "Custom", "customCollector": {"name": "my-collector", "image": "me/c:1"}},
            "source": {"fileSystemPath": {"path": "/out", "kind": "Directory"}},
        },
    )
    out = pod_injection.mutate_pod(pod(), custom, SETTINGS)
    primary, sidecar = out["spec"]["containers"]
    assert sidecar["name"] == "my-collector"
    assert sidecar["volumeMounts"] == [{"name": "metrics-volume", "mountPath": "/out"}]
    assert primary["command"] == ["python", "train.py", "--lr=0.1"]
    prometheus = trial("PrometheusMetric")
    with pytest.raises(InjectionError, match="failed to find metrics collector config for kind: PrometheusMetric"):
        pod_injection.mutate_pod(pod(), prometheus, SETTINGS)
    configured = InjectionSettings(collectors={"PrometheusMetric": CollectorImage("prom:1")})
    out = pod_injection.mutate_pod(pod(), prometheus, configured)
    assert out["spec"]["containers"][1]["name"] == "metrics-collector"
    assert "volumes" not in out["spec"]
    assert "-path" not in out["spec"]["containers"][1]["args"]


def test_missing_primary_container_is_rejected_with_katibs_message() -> None:
    other = {"name": "main", "image": "x", "command": ["true"]}
    for kind in ("Push", "StdOut"):
        with pytest.raises(InjectionError) as caught:
            pod_injection.mutate_pod(pod(other), trial(kind), SETTINGS)
        assert caught.value.field == "spec.containers"
        assert (
            caught.value.reason
            == "Unable to find primary container training-container in mutated pod containers [main]"
        )


def test_primary_pod_labels() -> None:
    labelled = trial("StdOut", primaryPodLabels={"training.kubeflow.org/job-role": "master"})
    worker = pod_injection.mutate_pod(pod(labels={"training.kubeflow.org/job-role": "worker"}), labelled, SETTINGS)
    assert worker["metadata"]["labels"]["katib.kubeflow.org/trial"] == "trial-1"
    assert len(worker["spec"]["containers"]) == 1
    assert worker["spec"]["containers"][0]["env"] == [TRIAL_ENV, DB_ENV]
    # a worker without the primary container is labelled, not rejected
    other = {"name": "initializer", "command": ["true"]}
    out = pod_injection.mutate_pod(pod(other, labels={"training.kubeflow.org/job-role": "init"}), labelled, SETTINGS)
    assert out["spec"]["containers"] == [other]
    master = pod_injection.mutate_pod(pod(labels={"training.kubeflow.org/job-role": "master"}), labelled, SETTINGS)
    assert len(master["spec"]["containers"]) == 2


def test_a_pull_pod_needs_a_command() -> None:
    no_command = {"name": "training-container", "image": "my-image", "args": ["--lr=0.1"]}
    with pytest.raises(InjectionError, match="needs a command"):
        pod_injection.mutate_pod(pod(no_command), trial("StdOut"), SETTINGS)
    assert pod_injection.mutate_pod(pod(no_command), trial("Push"), SETTINGS)  # Push does not care


def test_input_is_not_changed_and_missing_kind_means_stdout() -> None:
    original = pod()
    frozen = copy.deepcopy(original)
    no_kind = Trial.from_api({**trial().to_api(), "spec": {**trial().to_api()["spec"], "metricsCollector": None}})
    out = pod_injection.mutate_pod(original, no_kind, SETTINGS)
    assert original == frozen
    assert out["spec"]["containers"][1]["name"] == "metrics-logger-and-collector"


@pytest.mark.parametrize(
    ("refs", "name"),
    [
        ([{"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial", "name": "t1", "uid": "u"}], "t1"),
        ([{"apiVersion": "kubeflow.org/v1alpha3", "kind": "Trial", "name": "t1", "uid": "u"}], None),
        ([{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "u"}], None),
        ([], None),
    ],
)
def test_trial_owner(refs: list[dict[str, str]], name: str | None) -> None:
    assert pod_injection.trial_owner({"metadata": {"ownerReferences": refs}}) == name


TOKEN_ENV = {
    "name": "KATIB_TRIAL_TOKEN",
    "valueFrom": {"secretKeyRef": {"name": "trial-1-push-token", "key": "token", "optional": True}},
}


def test_push_token_goes_to_the_container_that_reports() -> None:
    with_tokens = InjectionSettings(
        db_manager_address=SETTINGS.db_manager_address, collectors=SETTINGS.collectors, push_token=True
    )
    push = pod_injection.mutate_pod(pod(), trial("Push"), with_tokens)
    assert push["spec"]["containers"][0]["env"] == [TRIAL_ENV, DB_ENV, TOKEN_ENV]
    assert pod_injection.pod_patch(push, trial("Push"), with_tokens) == []  # idempotent

    primary, sidecar = pod_injection.mutate_pod(pod(), trial("StdOut"), with_tokens)["spec"]["containers"]
    assert TOKEN_ENV not in primary["env"]  # the training of a pull trial does not push
    assert sidecar["env"] == [TOKEN_ENV]

    mine = {"name": "KATIB_TRIAL_TOKEN", "value": "a-token-of-my-own"}
    container = {"name": "training-container", "command": ["python"], "env": [mine]}
    own = pod_injection.mutate_pod(pod(container), trial("Push"), with_tokens)
    assert [v for v in own["spec"]["containers"][0]["env"] if v["name"] == "KATIB_TRIAL_TOKEN"] == [mine]


def test_without_push_tokens_nothing_refers_to_a_token_secret() -> None:
    for kind in ("Push", "StdOut", "File"):
        out = pod_injection.mutate_pod(pod(), trial(kind), SETTINGS)
        assert "KATIB_TRIAL_TOKEN" not in str(out)
