"""The real kube-apiserver (infra/testcluster) calling ``katib-webhook`` over TLS.

The webhook runs as a process (``python -m katib_webhook``) with a serving certificate of the test
cluster's CA; the configurations are ``infra/webhook``'s, with ``clientConfig.url`` instead of a
Service (the only route on a loopback control plane) and scoped to this module's namespaces. Pods
come from the real Job controller; the node agent runs them, so a Push trial really pushes to a
DB manager and a File trial's sidecar really collects.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.storage import testing as storage_testing
from katib_testcluster import polling
from katib_testcluster.cluster import Cluster
from pykatib import dbmanager

REPO = Path(__file__).resolve().parents[3]
MANIFESTS = REPO / "infra" / "webhook"
DATA = Path(__file__).parent / "testdata"
SCOPE_LABEL = "pykatib.test/webhook"
INJECTION = {"katib.kubeflow.org/metrics-collector-injection": "enabled"}
NEVER_SCHEDULED = {"pykatib.test/no-such-node": "true"}
GROUP, VERSION = "kubeflow.org", "v1beta1"


# The typed clients, untyped: these tests pass and read plain dicts, which the client accepts.
def core_api(api_client: client.ApiClient) -> Any:
    return client.CoreV1Api(api_client)


def batch_api(api_client: client.ApiClient) -> Any:
    return client.BatchV1Api(api_client)


def custom_api(api_client: client.ApiClient) -> Any:
    return client.CustomObjectsApi(api_client)


def admission_api(api_client: client.ApiClient) -> Any:
    return client.AdmissionregistrationV1Api(api_client)


def plain(obj: object) -> Any:
    """A client model as API JSON."""
    return client.ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]


#: This interpreter's import path, absolute: the node agent starts Pods in directories of their own.
PYTHONPATH = os.pathsep.join(os.path.abspath(p) for p in sys.path if p)


def python_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": PYTHONPATH}


@dataclass
class Webhook:
    proc: subprocess.Popen[str]
    port: int
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


def start_webhook(log: Path, *args: str) -> Webhook:
    """``python -m katib_webhook`` on 127.0.0.1 and a free port, once it serves."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "katib_webhook", "--host", "127.0.0.1", "--port", "0", *args],
            env=python_env(),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving on https://127.0.0.1:" not in line:
        proc.kill()
        proc.wait(30)
        pytest.fail(f"katib-webhook did not start: {line}\n{log.read_text()}")
    return Webhook(proc, int(line.rsplit(":", 1)[1]), log)


def configurations(
    port: int, scope: str, *, ca: bytes | None, name: str = "katib.kubeflow.org"
) -> list[dict[str, Any]]:
    """infra/webhook's configurations, pointed at 127.0.0.1:port and limited to namespaces of ``scope``."""
    found = []
    for file in ("mutating-webhook-configuration.yaml", "validating-webhook-configuration.yaml"):
        manifest = yaml.safe_load((MANIFESTS / file).read_text())
        manifest["metadata"]["name"] = name
        for webhook in manifest["webhooks"]:
            config: dict[str, Any] = {"url": f"https://127.0.0.1:{port}{webhook['clientConfig']['service']['path']}"}
            if ca is not None:
                config["caBundle"] = base64.b64encode(ca).decode()
            webhook["clientConfig"] = config
            selector = webhook.setdefault("namespaceSelector", {})
            selector["matchLabels"] = {**selector.get("matchLabels", {}), SCOPE_LABEL: scope}
        found.append(manifest)
    return found


@contextlib.contextmanager
def registered(api_client: client.ApiClient, manifests: list[dict[str, Any]]) -> Iterator[None]:
    api = admission_api(api_client)
    mutating, validating = manifests
    api.create_mutating_webhook_configuration(mutating)
    try:
        api.create_validating_webhook_configuration(validating)
        try:
            yield
        finally:
            api.delete_validating_webhook_configuration(validating["metadata"]["name"])
    finally:
        api.delete_mutating_webhook_configuration(mutating["metadata"]["name"])


def label_namespace(api_client: client.ApiClient, namespace: str, labels: dict[str, str]) -> None:
    core_api(api_client).patch_namespace(namespace, {"metadata": {"labels": labels}})


def experiment(name: str, **spec: Any) -> dict[str, Any]:
    """The official SDK's tune() Experiment (categorical bug included), renamed."""
    body: dict[str, Any] = json.loads((DATA / "experiment-review.json").read_text())["request"]["object"]
    body["metadata"] = {"name": name}
    body["spec"].update(spec)
    return body


def wait_for_webhooks(api_client: client.ApiClient, namespace: str) -> None:
    """Until the apiserver calls the new configurations (it picks them up asynchronously)."""
    api = custom_api(api_client)
    good, bad = experiment("probe"), experiment("probe", maxTrialCount=0)

    def defaulted() -> bool:
        made = api.create_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", good, dry_run="All")
        return bool(made["spec"].get("parallelTrialCount") == 3)

    def validated() -> bool:
        try:
            api.create_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", bad, dry_run="All")
        except ApiException as exc:
            return exc.status == 400 and "validator.experiment.katib.kubeflow.org" in (exc.body or "")
        return False

    polling.wait_until(defaulted, timeout=60, what="the apiserver to call katib-webhook's defaulter")
    polling.wait_until(validated, timeout=60, what="the apiserver to call katib-webhook's validator")


@dataclass
class Setup:
    cluster: Cluster
    webhook: Webhook
    db_manager: DBManagerServer
    scope: str
    metrics_dir: Path

    def namespace(self, name: str) -> str:
        label_namespace(self.cluster.api_client, name, {**INJECTION, SCOPE_LABEL: self.scope})
        return name


@pytest.fixture(scope="module")
def setup(k8s_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("webhook")
    cert_dir = tmp / "certs"
    cert_dir.mkdir()
    pair = k8s_cluster.pki.issue_serving_cert(f"katib-webhook-{uuid.uuid4().hex[:6]}")
    shutil.copy(pair.cert, cert_dir / "tls.crt")
    shutil.copy(pair.key, cert_dir / "tls.key")
    scope = uuid.uuid4().hex[:10]
    # The node agent runs the sidecar's command as is (images are ignored).
    collector = shlex.join(["env", f"PYTHONPATH={PYTHONPATH}", sys.executable, "-m", "katib_metrics_collector"])
    with storage_testing.supply("sqlite") as supply:
        db = DBManagerServer(supply.open()).start()
        hook = start_webhook(
            tmp / "webhook.log",
            "--cert-dir", str(cert_dir),
            "--kubeconfig", str(k8s_cluster.kubeconfig),
            "--db-manager-address", db.address,
            "--collector-command", collector,
            "--cert-reload-interval", "1s",
        )  # fmt: skip
        try:
            with registered(k8s_cluster.api_client, configurations(hook.port, scope, ca=k8s_cluster.pki.ca_pem)):
                yield Setup(k8s_cluster, hook, db, scope, tmp / "metrics")
        finally:
            hook.stop()
            db.stop()
            print(hook.log.read_text()[-4000:])


@pytest.fixture()
def namespace(setup: Setup, k8s_namespace: str) -> str:
    name = setup.namespace(k8s_namespace)
    wait_for_webhooks(setup.cluster.api_client, name)
    return name


# -- Experiments -----------------------------------------------------------------------------


def test_an_experiment_is_defaulted_and_repaired_on_create(setup: Setup, namespace: str) -> None:
    api = custom_api(setup.cluster.api_client)
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", experiment("tune-experiment"))
    stored = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", "tune-experiment")
    spec = stored["spec"]
    assert spec["parameters"][2]["feasibleSpace"] == {"list": ["x", "y"], "distribution": "uniform"}
    assert (spec["parallelTrialCount"], spec["resumePolicy"]) == (3, "Never")
    assert spec["objective"]["metricStrategies"] == [
        {"name": "result", "value": "max"},
        {"name": "loss", "value": "max"},
    ]
    assert spec["trialTemplate"]["failureCondition"] == 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    assert spec["metricsCollectorSpec"] == {"collector": {"kind": "Push"}}


def test_a_bad_experiment_is_denied_naming_the_field(setup: Setup, namespace: str) -> None:
    api = custom_api(setup.cluster.api_client)
    with pytest.raises(ApiException) as caught:
        api.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "experiments", experiment("bad", maxTrialCount=0)
        )
    assert caught.value.status == 400
    message = json.loads(str(caught.value.body))["message"]
    assert 'admission webhook "validator.experiment.katib.kubeflow.org" denied the request:' in message
    assert "spec.maxTrialCount: 0 must be greater than 0" in message
    none = experiment("legacy-none", metricsCollectorSpec={"collector": {"kind": "None"}})
    with pytest.raises(ApiException) as caught:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", none)
    assert "spec.metricsCollectorSpec.collector.kind: invalid metrics collector kind: 'None'" in str(caught.value.body)


def test_an_update_may_change_only_the_counts(setup: Setup, namespace: str) -> None:
    api = custom_api(setup.cluster.api_client)
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", experiment("edited"))
    api.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "experiments", "edited", {"spec": {"maxTrialCount": 20}}
    )
    change = {"spec": {"algorithm": {"algorithmName": "tpe"}}}
    with pytest.raises(ApiException) as caught:
        api.patch_namespaced_custom_object(GROUP, VERSION, namespace, "experiments", "edited", change)
    assert "only spec.parallelTrialCount, spec.maxTrialCount and spec.maxFailedTrialCount are editable" in str(
        caught.value.body
    )


# -- Pods of trials ----------------------------------------------------------------------------


def create_trial(
    api_client: client.ApiClient, namespace: str, name: str, collector: dict[str, Any], **spec: Any
) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Trial",
        "metadata": {"name": name, "labels": {"katib.kubeflow.org/experiment": "exp"}},
        "spec": {
            "primaryContainerName": "training-container",
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "metricsCollector": collector,
            **spec,
        },
    }
    made: dict[str, Any] = custom_api(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "trials", body
    )
    return made


def owner(trial: dict[str, Any]) -> dict[str, Any]:
    meta = trial["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Trial",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
    }


def create_job(
    api_client: client.ApiClient, namespace: str, trial: dict[str, Any], command: list[str], **pod_spec: Any
) -> None:
    """The trial's Job, as a trial controller would create it."""
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": trial["metadata"]["name"], "ownerReferences": [owner(trial)]},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "training-container",
                            "image": "python:3.11",
                            "command": command,
                            "env": [{"name": "PYTHONPATH", "value": PYTHONPATH}],
                        }
                    ],
                    **pod_spec,
                }
            },
        },
    }
    batch_api(api_client).create_namespaced_job(namespace, body)


def job_pod(api_client: client.ApiClient, namespace: str, job: str) -> dict[str, Any]:
    core = core_api(api_client)

    def found() -> dict[str, Any] | None:
        pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
        return plain(pods[0]) if pods else None

    pod: dict[str, Any] = polling.wait_until(found, timeout=60, what=f"a Pod of Job {namespace}/{job}")
    return pod


def job_finished(api_client: client.ApiClient, namespace: str, job: str) -> str:
    batch = batch_api(api_client)

    def finished() -> str | None:
        status = batch.read_namespaced_job_status(job, namespace).status
        return "succeeded" if status.succeeded else "failed" if status.failed else None

    result: str = polling.wait_until(finished, timeout=180, what=f"Job {namespace}/{job} to finish")
    return result


def stored(setup: Setup, trial: str) -> list[tuple[str, str]]:
    db = dbmanager.DBManagerClient(dbmanager.open_channel(setup.db_manager.address))
    try:
        return [(log.metric.name, log.metric.value) for log in db.get(trial, timeout=30)]
    finally:
        db.channel.close()


def test_a_push_trials_pod_gets_labels_and_env_and_really_pushes(setup: Setup, namespace: str) -> None:
    api_client = setup.cluster.api_client
    trial = create_trial(api_client, namespace, "push-trial", {"collector": {"kind": "Push"}})
    report = "import pykatib; pykatib.report_metrics({'loss': 0.125})"
    create_job(api_client, namespace, trial, ["python", "-c", report])
    pod = job_pod(api_client, namespace, "push-trial")
    assert pod["metadata"]["labels"]["katib.kubeflow.org/trial"] == "push-trial"
    assert pod["metadata"]["labels"]["katib.kubeflow.org/experiment"] == "exp"
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["python", "-c", report]  # Push: nothing else
    env = {var["name"]: var for var in container["env"]}
    assert (
        env["KATIB_TRIAL_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['katib.kubeflow.org/trial']"
    )
    assert env["KATIB_DB_MANAGER_ADDRESS"]["value"] == setup.db_manager.address
    assert not pod["spec"].get("shareProcessNamespace")
    assert job_finished(api_client, namespace, "push-trial") == "succeeded", setup.cluster.pod_log(
        namespace, pod["metadata"]["name"]
    )
    assert stored(setup, "push-trial") == [("loss", "0.125")]


def test_a_stdout_trials_pod_gets_the_collector_sidecar(setup: Setup, namespace: str) -> None:
    api_client = setup.cluster.api_client
    trial = create_trial(api_client, namespace, "stdout-trial", {"collector": {"kind": "StdOut"}})
    create_job(api_client, namespace, trial, ["python", "train.py"], nodeSelector=NEVER_SCHEDULED)
    pod = job_pod(api_client, namespace, "stdout-trial")
    primary, sidecar = pod["spec"]["containers"]
    assert pod["spec"]["shareProcessNamespace"] is True
    assert sidecar["name"] == "metrics-logger-and-collector"
    assert sidecar["command"][-3:] == [sys.executable, "-m", "katib_metrics_collector"]
    assert sidecar["args"][sidecar["args"].index("-path") + 1] == "/var/log/katib/metrics.log"
    assert primary["command"] == ["sh", "-c"]
    assert primary["args"] == [
        "python train.py 1>/var/log/katib/metrics.log 2>&1"
        " || { rc=$?; echo failed > /var/log/katib/$$$$.pid; exit $rc; }"
        " && echo completed > /var/log/katib/$$$$.pid"
    ]
    assert {"name": "metrics-volume", "mountPath": "/var/log/katib"} in primary["volumeMounts"]


def test_a_file_trial_is_collected_by_its_sidecar(setup: Setup, namespace: str) -> None:
    api_client = setup.cluster.api_client
    directory = setup.metrics_dir / namespace
    directory.mkdir(parents=True)
    path = directory / "metrics.log"
    collector = {
        "collector": {"kind": "File"},
        "source": {"fileSystemPath": {"kind": "File", "path": str(path), "format": "TEXT"}},
    }
    trial = create_trial(api_client, namespace, "file-trial", collector)
    train = f"open({str(path)!r}, 'w').write('epoch 1 loss=0.5\\nepoch 2 loss=0.25\\n')"
    create_job(api_client, namespace, trial, ["python", "-c", train])
    pod = job_pod(api_client, namespace, "file-trial")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["training-container", "metrics-logger-and-collector"]
    result = job_finished(api_client, namespace, "file-trial")
    logs = setup.cluster.pod_log(namespace, pod["metadata"]["name"], "metrics-logger-and-collector")
    assert result == "succeeded", logs
    assert stored(setup, "file-trial") == [("loss", "0.5"), ("loss", "0.25")], logs


def bare_pod(
    name: str, *, labels: dict[str, str] | None = None, owners: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}, "ownerReferences": owners or []},
        "spec": {
            "nodeSelector": NEVER_SCHEDULED,
            "containers": [{"name": "main", "image": "python:3.11", "command": ["python", "-c", "pass"]}],
        },
    }


def test_a_pod_without_a_trial_owner_is_unchanged(setup: Setup, namespace: str) -> None:
    core = core_api(setup.cluster.api_client)
    made = plain(core.create_namespaced_pod(namespace, bare_pod("plain")))
    assert made["metadata"].get("labels") is None
    assert "env" not in made["spec"]["containers"][0]


def test_a_trial_pod_without_the_primary_container_is_rejected(setup: Setup, namespace: str) -> None:
    api_client = setup.cluster.api_client
    trial = create_trial(api_client, namespace, "wrong-container", {"collector": {"kind": "Push"}})
    with pytest.raises(ApiException) as caught:
        core_api(api_client).create_namespaced_pod(namespace, bare_pod("orphan", owners=[owner(trial)]))
    assert caught.value.status == 400
    assert "Unable to find primary container training-container in mutated pod containers [main]" in str(
        caught.value.body
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_outage_blocks_only_the_pods_of_trials(setup: Setup, namespace: str) -> None:
    """With the webhook unreachable: unrelated Pods (Ignore) are created, Pods labelled with a Trial (Fail) are not."""
    api_client = setup.cluster.api_client
    api = admission_api(api_client)
    core = core_api(api_client)
    current = plain(api.read_mutating_webhook_configuration("katib.kubeflow.org"))
    down = copy.deepcopy(current)
    dead = free_port()
    for webhook in down["webhooks"]:
        webhook["clientConfig"]["url"] = webhook["clientConfig"]["url"].replace(f":{setup.webhook.port}/", f":{dead}/")
    api.replace_mutating_webhook_configuration("katib.kubeflow.org", down)
    try:

        def trial_pods_blocked() -> bool:
            try:
                core.create_namespaced_pod(
                    namespace, bare_pod("trial-pod", labels={"katib.kubeflow.org/trial": "t"}), dry_run="All"
                )
            except ApiException as exc:
                return "failed calling webhook" in (exc.body or "")
            return False

        polling.wait_until(trial_pods_blocked, timeout=60, what="the apiserver to see the webhook down")
        made = core.create_namespaced_pod(namespace, bare_pod("unrelated"))
        assert made.metadata.name == "unrelated"
    finally:
        fresh = api.read_mutating_webhook_configuration("katib.kubeflow.org")
        current["metadata"]["resourceVersion"] = fresh.metadata.resource_version
        api.replace_mutating_webhook_configuration("katib.kubeflow.org", current)


def test_a_generated_certificate_is_put_into_the_configurations(
    setup: Setup, k8s_namespace: str, tmp_path: Path
) -> None:
    """An empty cert dir: the webhook makes its own CA and patches it into the configurations it is told."""
    api_client = setup.cluster.api_client
    name = f"pykatib-selfsigned-{uuid.uuid4().hex[:6]}"
    scope = uuid.uuid4().hex[:10]
    hook = start_webhook(
        tmp_path / "webhook.log",
        "--cert-dir", str(tmp_path / "certs"),
        "--cert-ip-address", "127.0.0.1",
        "--webhook-configuration", name,
        "--kubeconfig", str(setup.cluster.kubeconfig),
    )  # fmt: skip
    try:
        with registered(api_client, configurations(hook.port, scope, ca=None, name=name)):
            api = admission_api(api_client)

            def patched() -> bool:
                webhooks = api.read_validating_webhook_configuration(name).webhooks
                return all(w.client_config.ca_bundle for w in webhooks)

            polling.wait_until(patched, timeout=60, what=f"katib-webhook to patch the caBundle of {name}")
            ca = base64.b64decode(api.read_validating_webhook_configuration(name).webhooks[0].client_config.ca_bundle)
            assert ca == (tmp_path / "certs" / "ca.crt").read_bytes()
            label_namespace(api_client, k8s_namespace, {SCOPE_LABEL: scope})
            wait_for_webhooks(api_client, k8s_namespace)  # denied by this webhook, over its own TLS
    finally:
        hook.stop()
    assert "caBundle of ValidatingWebhookConfiguration" in hook.log.read_text()
