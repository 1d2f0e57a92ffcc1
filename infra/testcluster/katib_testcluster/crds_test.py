"""The CRDs of infra/crds on the real apiserver: round trip, /status, watch, SDK payloads, columns."""

from __future__ import annotations

import copy
import json
import ssl
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from katib_testcluster import cluster, crds

GROUP, VERSION = "kubeflow.org", "v1beta1"
MERGE_PATCH = "application/merge-patch+json"

# docs/katib-compat.md#tune-experiment: what kubeflow-katib 0.19.0's tune() sends (Push collector), including the
# categorical helper's bug that puts the value list into feasibleSpace.distribution.
SDK_EXPERIMENT: dict[str, Any] = {
    "apiVersion": "kubeflow.org/v1beta1",
    "kind": "Experiment",
    "metadata": {"name": "tune-experiment"},
    "spec": {
        "algorithm": {"algorithmName": "random"},
        "maxTrialCount": 12,
        "metricsCollectorSpec": {"collector": {"kind": "Push"}},
        "objective": {"additionalMetricNames": ["loss"], "objectiveMetricName": "result", "type": "maximize"},
        "parameters": [
            {"feasibleSpace": {"max": "20", "min": "10"}, "name": "a", "parameterType": "int"},
            {"feasibleSpace": {"max": "0.2", "min": "0.1"}, "name": "b", "parameterType": "double"},
            {"feasibleSpace": {"distribution": ["x", "y"]}, "name": "c", "parameterType": "categorical"},
        ],
        "trialTemplate": {
            "primaryContainerName": "training-container",
            "retain": False,
            "trialParameters": [
                {"name": "a", "reference": "a"},
                {"name": "b", "reference": "b"},
                {"name": "c", "reference": "c"},
            ],
            "trialSpec": {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "spec": {
                    "template": {
                        "metadata": {"annotations": {"sidecar.istio.io/inject": "false"}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "training-container",
                                    "image": "docker.io/pytorch/pytorch:2.5.0-cuda12.4-cudnn9-runtime",
                                    "command": ["bash", "-c"],
                                    "args": [
                                        "program_path=$(mktemp -d)\nread -r -d '' SCRIPT << EOM\n"
                                        "def objective(p):\n    print(p)\nobjective({'a': '${trialParameters.a}'})\n"
                                        'EOM\nprintf "%s" "$SCRIPT" > "$program_path/ephemeral_script.py"\n'
                                        'python -u "$program_path/ephemeral_script.py"'
                                    ],
                                    "resources": {
                                        "limits": {"nvidia.com/gpu": "2"},
                                        "requests": {"nvidia.com/gpu": "2"},
                                    },
                                }
                            ],
                            "restartPolicy": "Never",
                        },
                    }
                },
            },
        },
    },
}


def test_sdk_experiment_is_accepted_and_kept_verbatim(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    api = client.CustomObjectsApi(k8s_cluster.api_client)
    body = copy.deepcopy(SDK_EXPERIMENT)
    body["metadata"]["namespace"] = k8s_namespace
    body["spec"]["aFieldFromANewerKatib"] = {"kept": True}

    created = _dict(api.create_namespaced_custom_object(GROUP, VERSION, k8s_namespace, "experiments", body))

    assert created["spec"] == body["spec"]  # nothing pruned: buggy distribution, trialSpec, new fields
    assert created["spec"]["parameters"][2]["feasibleSpace"] == {"distribution": ["x", "y"]}
    assert created["metadata"]["generation"] == 1


def test_schema_rejects_wrong_types(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    api = client.CustomObjectsApi(k8s_cluster.api_client)
    body = copy.deepcopy(SDK_EXPERIMENT)
    body["spec"]["maxTrialCount"] = "twelve"

    with pytest.raises(ApiException) as raised:
        api.create_namespaced_custom_object(GROUP, VERSION, k8s_namespace, "experiments", body)

    assert raised.value.status == 422
    assert "maxTrialCount" in str(raised.value.body)


def test_trial_round_trip_status_subresource_and_watch(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    api = client.CustomObjectsApi(k8s_cluster.api_client)
    trial = {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Trial",
        "metadata": {"name": "t1", "labels": {"katib.kubeflow.org/experiment": "e1"}},
        "spec": {
            "objective": {"type": "maximize", "objectiveMetricName": "result", "goal": 0.9},
            "parameterAssignments": [{"name": "lr", "value": "0.01"}],
            "runSpec": {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": {}}}},
            "primaryContainerName": "training-container",
        },
    }
    created = _dict(api.create_namespaced_custom_object(GROUP, VERSION, k8s_namespace, "trials", trial))
    status = {
        "conditions": [{"type": "Succeeded", "status": "True", "reason": "TrialSucceeded"}],
        "observation": {"metrics": [{"name": "result", "min": "0.1", "max": "0.9", "latest": "0.5"}]},
    }

    patched = _dict(
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, k8s_namespace, "trials", "t1", {"status": status}, _content_type=MERGE_PATCH
        )
    )
    # Through the main endpoint a status change is ignored, a spec change bumps the generation.
    api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        k8s_namespace,
        "trials",
        "t1",
        {"spec": {"retainRun": True}, "status": {"conditions": []}},
        _content_type=MERGE_PATCH,
    )

    assert patched["status"] == status
    assert patched["metadata"]["generation"] == 1
    events = [
        (event["type"], event["object"])
        for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            k8s_namespace,
            "trials",
            resource_version=created["metadata"]["resourceVersion"],
            timeout_seconds=1,
        )
    ]
    assert [kind for kind, _ in events] == ["MODIFIED", "MODIFIED"]
    assert events[0][1]["status"] == status
    assert events[1][1]["metadata"]["generation"] == 2
    assert events[1][1]["spec"]["retainRun"] is True
    assert events[1][1]["status"] == status
    selected = _dict(
        api.list_namespaced_custom_object(
            GROUP, VERSION, k8s_namespace, "trials", label_selector="katib.kubeflow.org/experiment=e1"
        )
    )
    assert [item["metadata"]["name"] for item in selected["items"]] == ["t1"]


def test_trial_printer_columns(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    api = client.CustomObjectsApi(k8s_cluster.api_client)
    trial = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Trial", "metadata": {"name": "t2"}, "spec": {}}
    api.create_namespaced_custom_object(GROUP, VERSION, k8s_namespace, "trials", trial)
    status = {
        "conditions": [
            {"type": "Created", "status": "True"},
            {"type": "Succeeded", "status": "True", "reason": "TrialSucceeded"},
        ],
        "observation": {"metrics": [{"name": "result", "min": "0.1", "max": "0.9", "latest": "0.5"}]},
    }
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, k8s_namespace, "trials", "t2", {"status": status}, _content_type=MERGE_PATCH
    )

    table = _get_table(k8s_cluster, f"/apis/{GROUP}/{VERSION}/namespaces/{k8s_namespace}/trials")

    columns = [column["name"] for column in table["columnDefinitions"]]
    row = dict(zip(columns, table["rows"][0]["cells"], strict=True))
    assert row["Type"] == "Succeeded"
    assert row["Status"] == "True"
    assert row["Objective"] == "0.5"
    assert row["Metric"] == "result"


def test_crds_listed_by_kustomization_exist_on_disk() -> None:
    crd_dir = crds.find_dir()

    manifests = crds.load(crd_dir)

    assert sorted(m["spec"]["names"]["plural"] for m in manifests) == ["experiments", "suggestions", "trials"]
    for manifest in manifests:
        (version,) = manifest["spec"]["versions"]
        assert version["subresources"] == {"status": {}}


def test_find_dir_honours_env(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")

    assert crds.find_dir({crds.CRD_DIR_ENV: str(tmp_path)}) == tmp_path
    with pytest.raises(FileNotFoundError, match="infra/crds:crds"):
        crds.find_dir({}, start=tmp_path / "nowhere.py")


def _dict(value: object) -> dict[str, Any]:
    """A custom-object call's result, which the client types as `object`."""
    assert isinstance(value, dict)
    return value


def _get_table(k8s_cluster: cluster.Cluster, path: str) -> dict[str, Any]:
    """GET `path` as a server-side Table, i.e. what kubectl prints (with wide columns)."""
    request = urllib.request.Request(
        k8s_cluster.server + path,
        headers={
            "Authorization": f"Bearer {k8s_cluster.pki.admin_token}",
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io",
        },
    )
    context = ssl.create_default_context(cafile=str(k8s_cluster.pki.ca.cert))
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        table: dict[str, Any] = json.load(response)
    return table
