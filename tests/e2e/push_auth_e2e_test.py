"""Authenticated pushes on the whole system (issue 9): the DB manager requires tokens, the trial
controller gives every trial its own in a Secret, the webhook points the trial's env at it.

On the real test control plane with the parts as processes, as ``infra/overlays/push-auth``
configures them: ``katib-db-manager --auth-secret-file`` (in-process here, on MariaDB),
``katib-webhook --inject-push-token``, both controllers with ``--push-auth-secret-file``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

import pykatib as katib
from e2e import system as system_mod
from e2e.controllers import TRIAL_IMAGE
from e2e.system import System
from katib_core import push_auth
from katib_dbmanager.auth import Authenticator
from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.storage import testing as storage_testing
from katib_testcluster import polling
from katib_testcluster.cluster import Cluster
from pykatib import dbmanager

SECRET = push_auth.new_secret()
VICTIM = "someone-elses-trial"


def admin_token() -> str:
    return push_auth.mint(SECRET.encode(), push_auth.Claims("*", "*", int(time.time() + 600)))


@pytest.fixture(scope="module")
def secured(k8s_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The system as infra/install configures it, reading the DB manager with an admin token."""
    workdir = tmp_path_factory.mktemp("push-auth")
    secret_file = workdir / "push-auth-secret"
    secret_file.write_text(SECRET + "\n")
    scope = os.urandom(5).hex()
    with storage_testing.supply("mysql") as supply:
        db = DBManagerServer(
            supply.open(), listen_address="127.0.0.1:0", authenticator=Authenticator(secret_file)
        ).start()
        try:
            with system_mod.webhook(
                k8s_cluster,
                db_address=db.address,
                scope=scope,
                workdir=workdir,
                extra_args=["--inject-push-token"],
                name="webhook-push-auth",
            ) as hook:

                def controllers(namespace: str) -> contextlib.AbstractContextManager[None]:
                    return system_mod.controllers(
                        kubeconfig=k8s_cluster.kubeconfig,
                        db_address=db.address,
                        namespace=namespace,
                        workdir=workdir,
                        extra_args=["--push-auth-secret-file", str(secret_file)],
                    )

                yield System(
                    kubeconfig=k8s_cluster.kubeconfig,
                    api=k8s_cluster.api_client,
                    db_manager_address=db.address,
                    scope=scope,
                    trial_image=TRIAL_IMAGE,  # the trials import pykatib
                    installed=False,
                    controllers=controllers,
                    db_token=admin_token,
                )
                print("--- webhook", hook.tail(40), sep="\n")
        finally:
            db.stop()


@pytest.fixture()
def namespace(secured: System) -> Iterator[str]:
    with secured.namespace("auth") as name:
        system_mod.wait_for_webhooks(secured.api, name)
        yield name


def rows(system: System, trial: str) -> list[tuple[str, str]]:
    return [(metric, value) for _, metric, value in system.metric_logs(trial)]


def honest_then_forging_objective(parameters):  # type: ignore[no-untyped-def]  # its source runs in the trial
    import os

    import pykatib as katib
    from pykatib import dbmanager

    x = float(parameters["x"])
    for step in range(2):
        katib.report_metrics({"loss": (x - 0.3) ** 2 + 0.01 / (step + 1)}, step=step)
    # A compromised trial: write another trial's metrics with its own token (it must be refused).
    own = dbmanager.DBManagerClient(dbmanager.open_channel(os.environ["KATIB_DB_MANAGER_ADDRESS"]))
    forged = [dbmanager.encode_metric_log("2024-01-01T00:00:00Z", "loss", "-1")]
    try:
        own.report("someone-elses-trial", forged, key=dbmanager.new_report_key(), timeout=10)
    except dbmanager.RpcError as exc:
        print("forged push refused:", exc.code.name, flush=True)
    else:
        raise SystemExit("a forged push was accepted")


def test_every_trial_pushes_with_its_own_token_and_cannot_forge(
    secured: System, namespace: str, k8s_cluster: Cluster
) -> None:
    tuner = katib.KatibClient(config_file=str(secured.kubeconfig), namespace=namespace)
    tuner.tune(
        name="auth",
        objective=honest_then_forging_objective,
        parameters={"x": katib.search.double(min=0.0, max=1.0)},
        objective_metric_name="loss",
        objective_type="minimize",
        metrics_collector_config={"kind": "Push"},
        max_trial_count=2,
        parallel_trial_count=2,
        base_image=secured.trial_image,
    )
    tuner.wait_for_experiment_condition("auth", namespace, timeout=600, polling_interval=1)
    custom = client.CustomObjectsApi(secured.api)
    core = client.CoreV1Api(secured.api)
    found: Any = custom.list_namespaced_custom_object(
        "kubeflow.org", "v1beta1", namespace, "trials", label_selector="katib.kubeflow.org/experiment=auth"
    )
    names = [t["metadata"]["name"] for t in found["items"]]
    assert len(names) == 2
    for trial in found["items"]:
        name = trial["metadata"]["name"]
        assert any(c["type"] == "Succeeded" and c["status"] == "True" for c in trial["status"]["conditions"])
        assert sorted({metric for metric, _ in rows(secured, name)}) == ["loss", "pykatib.step"]
        secret: Any = core.read_namespaced_secret(push_auth.trial_secret_name(name), namespace)
        assert [(o.kind, o.name, o.controller) for o in secret.metadata.owner_references] == [("Trial", name, True)]
        token = base64.b64decode(secret.data["token"]).decode()
        claims = push_auth.verify(token, [SECRET.encode()], now=time.time())
        assert (claims.namespace, claims.trial) == (namespace, name)
    assert rows(secured, VICTIM) == []  # both forgeries were refused
    logs = sorted((k8s_cluster.dir / "node" / "pods" / namespace).glob("*/logs/*.log"))
    refused = [log for log in logs if "forged push refused: PERMISSION_DENIED" in log.read_text(errors="replace")]
    assert len(refused) == 2, [log.read_text(errors="replace")[-500:] for log in logs]

    # Deleting the experiment: the finalizer's DeleteObservationLog (the controller's admin token),
    # and the garbage collector takes the token Secrets with their Trials.
    tuner.delete_experiment("auth", namespace)

    def cleaned() -> bool:
        secrets = core.list_namespaced_secret(namespace, label_selector="katib.kubeflow.org/experiment=auth")
        return not secrets.items and not any(rows(secured, name) for name in names)

    polling.wait_until(cleaned, timeout=300, what="the token Secrets and metric logs to be deleted", interval=1)


def test_a_push_without_a_token_is_unauthenticated(secured: System) -> None:
    anonymous = dbmanager.DBManagerClient(dbmanager.open_channel(secured.db_manager_address), token=lambda: None)
    with contextlib.closing(anonymous.channel), pytest.raises(dbmanager.RpcError) as caught:
        anonymous.report("any", [dbmanager.encode_metric_log("2024-01-01T00:00:00Z", "loss", "1")], key="k", timeout=5)
    assert caught.value.code == dbmanager.StatusCode.UNAUTHENTICATED
