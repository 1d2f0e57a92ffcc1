"""Running the controllers for end-to-end tests: in-process under ``kopf.testing.KopfRunner``, or as
real processes that a test can SIGKILL; plus the Experiment and DB helpers the tests share."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import kopf
from kopf.testing import KopfRunner
from kubernetes import client

from katib_core import constants
from katib_core import testing as builders
from katib_experiment_controller import main as experiment_main
from katib_operator import kubeapi, running
from katib_operator.settings import OperatorSettings
from katib_testcluster import polling
from katib_testcluster.cluster import Cluster
from katib_trial_controller import main as trial_main
from pykatib import dbmanager

#: An image with pykatib installed (infra/trial-image): the node agent runs it with this
#: interpreter and import path, as it carries our code (katib_testcluster.images).
TRIAL_IMAGE = "ghcr.io/pykatib/pykatib-trial:v0.1.0"

GROUP, VERSION = constants.GROUP, constants.VERSION


def settings(db_address: str, namespace: str, *, leader_elect: bool = False) -> OperatorSettings:
    return OperatorSettings(
        db_manager_address=db_address,
        namespaces=(namespace,),
        kubeconfig=None,
        context=None,
        workers=4,
        leader_elect=leader_elect,
        lease_name="test",
        lease_namespace=namespace,
        identity="test",
        liveness=None,
        log_level="INFO",
    )


@contextlib.contextmanager
def in_process(cluster: Cluster, db_address: str, namespace: str) -> Iterator[None]:
    """Both controllers in this process, under one kopf, watching ``namespace`` only."""
    chosen = settings(db_address, namespace)
    configuration = kubeapi.load(str(cluster.kubeconfig))
    registry = kopf.OperatorRegistry()
    experiment_main.build(chosen, configuration).registry(registry)
    trial_main.build(chosen, configuration).registry(registry)
    kopf_settings = running.Controller.settings()
    with KopfRunner(
        ["run", "--standalone", "--namespace", namespace], registry=registry, settings=kopf_settings, timeout=60
    ):
        yield


class ControllerProcess:
    """``python -m <package>`` with this interpreter and sys.path, killed on exit."""

    def __init__(self, package: str, *args: str, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", package, *args], env=env, stdout=self._out, stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._out.close()

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        self._out.close()
        return code


def process_args(cluster: Cluster, db_address: str, namespace: str, identity: str) -> list[str]:
    return [
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--namespace",
        namespace,
        "--db-manager-address",
        db_address,
        "--lease-namespace",
        namespace,
        "--identity",
        identity,
        "--workers",
        "4",
    ]


def push_template(db_address: str, code: str) -> dict[str, Any]:
    """A Job whose container runs ``python -c code`` and reaches the DB manager at ``db_address``.

    Until the pod webhook injects ``KATIB_TRIAL_NAME``, the template passes it itself through the
    ``trialName`` trial parameter (reference ``${trialSpec.Name}``).
    """
    template = builders.job_template(["python", "-c", code])
    container = template["spec"]["template"]["spec"]["containers"][0]
    container["image"] = TRIAL_IMAGE  # the code imports pykatib
    container["env"].append({"name": constants.DB_MANAGER_ADDRESS_ENV, "value": db_address})
    return template


def create_experiment(api: client.ApiClient, namespace: str, name: str, **kwargs: Any) -> dict[str, Any]:
    body = builders.experiment_dict(name, namespace=namespace, **kwargs)
    del body["metadata"]["uid"]
    created: Any = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "experiments", body
    )
    return dict(created)


def get(api: client.ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any]:
    return cast(
        dict[str, Any],
        client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name),
    )


def trials(api: client.ApiClient, namespace: str, experiment: str) -> list[dict[str, Any]]:
    found: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace, "trials", label_selector=f"{constants.EXPERIMENT_LABEL}={experiment}"
    )
    return list(found["items"])


def conditions(body: dict[str, Any]) -> dict[str, str]:
    """``{type: status}`` of an object's conditions."""
    return {c["type"]: c["status"] for c in (body.get("status") or {}).get("conditions") or ()}


def reason(body: dict[str, Any], condition_type: str) -> str | None:
    return next(
        (c.get("reason") for c in (body.get("status") or {}).get("conditions") or () if c["type"] == condition_type),
        None,
    )


def wait_completed(api: client.ApiClient, namespace: str, name: str, *, timeout: float = 300) -> dict[str, Any]:
    """The Experiment once Succeeded or Failed holds (generous timeout: the machine may be busy)."""

    def done() -> dict[str, Any] | None:
        body = get(api, namespace, "experiments", name)
        held = conditions(body)
        return body if "True" in (held.get("Succeeded"), held.get("Failed")) else None

    return polling.wait_until(done, timeout=timeout, what=f"experiment {namespace}/{name} to complete", interval=0.5)


def wait_settled(api: client.ApiClient, namespace: str, name: str, *, timeout: float = 120) -> list[dict[str, Any]]:
    """The Experiment's trials once every one of them is completed."""
    completed = {"Succeeded", "Failed", "MetricsUnavailable", "Killed", "EarlyStopped"}

    def settled() -> list[dict[str, Any]] | None:
        found = trials(api, namespace, name)
        return found if all(completed & {t for t, s in conditions(t).items() if s == "True"} for t in found) else None

    return polling.wait_until(settled, timeout=timeout, what=f"trials of {namespace}/{name} to complete", interval=0.5)


def metric_logs(address: str, trial: str) -> list[tuple[str, str, str]]:
    with contextlib.closing(dbmanager.open_channel(address)) as channel:
        logs = dbmanager.DBManagerClient(channel).get(trial, timeout=30)
    return [(log.time_stamp, log.metric.name, log.metric.value) for log in logs]


def report(address: str, trial: str, rows: Sequence[tuple[str, str, str]]) -> None:
    with contextlib.closing(dbmanager.open_channel(address)) as channel:
        dbmanager.DBManagerClient(channel).report(
            trial, [dbmanager.encode_metric_log(*row) for row in rows], key=dbmanager.new_report_key(), timeout=30
        )


def print_pod_logs(cluster: Cluster, namespace: str, *, pods: int = 5, lines: int = 15) -> None:
    """The tail of a few trial pods' logs (kept by the node agent after the pods are gone)."""
    for log in sorted((cluster.dir / "node" / "pods" / namespace).glob("*/logs/*.log"))[:pods]:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- {log.parent.parent.name}/{log.name}", *tail, sep="\n")
