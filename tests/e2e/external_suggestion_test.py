"""The experiment controller driving an algorithm served by a separately started ``katib-suggestion``
on the test control plane: the katib-config entry's ``endpoint`` decides, as an operator writes it."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import yaml
from katib_testsupport.processes import SuggestionProcess
from kubernetes import client

from e2e import controllers as c
from katib_api.v1beta1 import api_pb2, api_pb2_grpc
from katib_core import testing as builders
from katib_dbmanager.server import DBManagerServer
from katib_testcluster.cluster import Cluster

PUSH = (
    "import pykatib; lr = float('${trialParameters.lr}'); "
    "pykatib.report_metrics({'loss': (lr - 0.05) ** 2, 'acc': 1 - lr})"
)


def test_an_external_suggestion_service_drives_experiments(
    k8s_cluster: Cluster, db_manager: DBManagerServer, k8s_namespace: str, tmp_path: Path
) -> None:
    api, ns, address = k8s_cluster.api_client, k8s_namespace, db_manager.address
    service = SuggestionProcess()
    config = tmp_path / "katib-config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "config.kubeflow.org/v1beta1",
                "kind": "KatibConfig",
                "runtime": {"suggestions": [{"algorithmName": "tpe", "endpoint": service.address}]},
            }
        )
    )
    args = c.process_args(k8s_cluster, address, ns, "external")
    experiment_controller = c.ControllerProcess(
        "katib_experiment_controller", *args, "--katib-config", str(config), log=tmp_path / "experiment.log"
    )
    trial_controller = c.ControllerProcess("katib_trial_controller", *args, log=tmp_path / "trial.log")
    try:
        template = c.push_template(address, PUSH)
        c.create_experiment(api, ns, "external", max_trials=4, parallel=2, algorithm="tpe", template=template)
        # Not through the webhook: the service's ValidateAlgorithmSettings refuses it, as in Katib.
        c.create_experiment(
            api, ns, "refused", algorithm="tpe", settings={"random_state": "-1"}, template=template, max_trials=2
        )
        done = c.wait_completed(api, ns, "external")
        assert c.reason(done, "Succeeded") == "ExperimentMaxTrialsReached"
        assert done["status"]["trialsSucceeded"] == 4
        record = c.get(api, ns, "suggestions", "external")
        assert len(record["status"]["suggestions"]) == 4
        refused = c.wait_completed(api, ns, "refused")
        assert c.conditions(refused)["Failed"] == "True"
        failed = c.get(api, ns, "suggestions", "refused")
        message = next(x["message"] for x in failed["status"]["conditions"] if x["type"] == "Failed")
        assert "random_state" in message
        assert c.trials(api, ns, "refused") == []
        events = client.CoreV1Api(api).list_namespaced_event(ns).items
        assert any(e.reason == "SuggestionFailed" and e.involved_object.name == "refused" for e in events)
    finally:
        experiment_controller.kill()
        trial_controller.kill()
        service.stop()
        for log in sorted(tmp_path.glob("*.log")):  # shown by pytest when the test failed
            print(f"--- {log.name}", *log.read_text(errors="replace").splitlines()[-40:], sep="\n")
    assert "GetSuggestions external (tpe): 0 trials, 2 asked, 2 answered" in service.stderr


def test_set_trial_status_marks_the_trial_early_stopped_as_katibs_service(
    k8s_cluster: Cluster, k8s_namespace: str
) -> None:
    """What a pull-mode sidecar calls after stopping a training (Katib's medianstop service does
    this write): the Trial's status gets EarlyStopped, reason TrialEarlyStopped."""
    api, ns = k8s_cluster.api_client, k8s_namespace
    custom = client.CustomObjectsApi(api)

    def create_trial(namespace: str, name: str) -> None:
        body = builders.trial(name, "Created").to_api()
        body["metadata"] = {"name": name, "namespace": namespace, "labels": {"katib.kubeflow.org/experiment": "x"}}
        custom.create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, "trials", body)

    create_trial(ns, "stopped-by-sidecar")
    create_trial(ns, "twice")
    other = f"{ns}-other"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    create_trial(other, "twice")
    with SuggestionProcess("--kubeconfig", str(k8s_cluster.kubeconfig)) as service:
        with grpc.insecure_channel(service.address) as channel:
            stub = api_pb2_grpc.EarlyStoppingStub(channel)
            for _ in range(2):  # the second call finds it done
                stub.SetTrialStatus(api_pb2.SetTrialStatusRequest(trial_name="stopped-by-sidecar"), timeout=30)
            with pytest.raises(grpc.RpcError) as missing:
                stub.SetTrialStatus(api_pb2.SetTrialStatusRequest(trial_name="nobody"), timeout=30)
            with pytest.raises(grpc.RpcError) as ambiguous:
                stub.SetTrialStatus(api_pb2.SetTrialStatusRequest(trial_name="twice"), timeout=30)
        service.stop()
    trial = c.get(api, ns, "trials", "stopped-by-sidecar")
    early = [x for x in trial["status"]["conditions"] if x["type"] == "EarlyStopped"]
    assert len(early) == 1
    assert (early[0]["status"], early[0]["reason"]) == ("True", "TrialEarlyStopped")
    assert c.conditions(trial).get("Running") != "True"
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert ambiguous.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--trial-namespace" in (ambiguous.value.details() or "")
    flags = ("--kubeconfig", str(k8s_cluster.kubeconfig), "--trial-namespace", other)
    with SuggestionProcess(*flags) as service, grpc.insecure_channel(service.address) as channel:
        api_pb2_grpc.EarlyStoppingStub(channel).SetTrialStatus(
            api_pb2.SetTrialStatusRequest(trial_name="twice"), timeout=30
        )
    assert c.conditions(c.get(api, other, "trials", "twice"))["EarlyStopped"] == "True"
    assert "EarlyStopped" not in c.conditions(c.get(api, ns, "trials", "twice"))
