"""Each Deployment's args and env, as rendered by infra/install, parsed by the program it runs.

The container's command line and environment go through the service's own settings parser
(what ``main`` does first), so a flag the program does not know, or a value it refuses, fails
here rather than in a CrashLoopBackOff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from katib_dbmanager.settings import Settings as DBManagerSettings
from katib_operator import settings as operator_settings
from katib_webhook.settings import Settings as WebhookSettings
from manifests import kustomize

#: What the kubelet would put into a container's env: fieldRefs and Secret keys.
FIELDS = {"metadata.namespace": "kubeflow", "metadata.name": "pod-0"}


@pytest.fixture(scope="module")
def install() -> list[dict[str, Any]]:
    try:
        binary = kustomize.kubectl()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    return kustomize.build(binary, kustomize.INSTALL)


def command_line(install: list[dict[str, Any]], deployment: str) -> tuple[list[str], dict[str, str]]:
    """The container's args and its environment as the kubelet resolves it."""
    ((_, container),) = ((d, c) for d, c in kustomize.containers(install) if d == deployment)
    env = {}
    for entry in container.get("env", ()):
        source = entry.get("valueFrom")
        if source is None:
            env[entry["name"]] = entry["value"]
        elif "fieldRef" in source:
            env[entry["name"]] = FIELDS[source["fieldRef"]["fieldPath"]]
        else:
            env[entry["name"]] = f"secret-{source['secretKeyRef']['key']}"
    return list(container.get("args", ())), env


def test_db_manager_reaches_katib_mysql_with_the_secret(install: list[dict[str, Any]], tmp_path: Path) -> None:
    args, env = command_line(install, "katib-db-manager")
    (tmp_path / "secret").write_text("0123456789abcdef0123456789abcdef\n")  # the push-auth mount
    settings = DBManagerSettings.from_args(args, {**env, "KATIB_DB_MANAGER_AUTH_SECRET_FILE": str(tmp_path / "secret")})
    assert settings.listen_address == "0.0.0.0:6789"
    url = settings.db_url
    assert (url.scheme, url.host, url.port, url.database) == ("mysql", "katib-mysql", 3306, "katib")
    assert url.password == "secret-MYSQL_ROOT_PASSWORD"


def test_db_manager_of_the_install_requires_tokens(tmp_path: Path) -> None:
    rendered = kustomize.build(kustomize.kubectl(), kustomize.INSTALL)
    args, env = command_line(rendered, "katib-db-manager")
    # The Secret's mount, here a file with one secret.
    secret = tmp_path / "secret"
    secret.write_text("0123456789abcdef0123456789abcdef\n")
    assert env["KATIB_DB_MANAGER_AUTH_SECRET_FILE"] == "/etc/katib/push-auth/secret"
    settings = DBManagerSettings.from_args(args, {**env, "KATIB_DB_MANAGER_AUTH_SECRET_FILE": str(secret)})
    assert settings.auth_secret_file == secret


def test_webhook_serves_its_service_and_injects_our_sidecar(install: list[dict[str, Any]]) -> None:
    args, env = command_line(install, "katib-webhook")
    settings = WebhookSettings.from_args(args, env)
    assert settings.port == 8443
    assert settings.tls.cert_dir == Path("/tmp/cert")
    assert "katib-webhook.kubeflow.svc" in settings.tls.dns_names
    injection = settings.admission.injection
    assert injection.db_manager_address == "katib-db-manager.kubeflow:6789"
    for kind in ("StdOut", "File"):
        assert injection.collectors[kind].image == "ghcr.io/pykatib/katib-metrics-collector:v0.1.0"
    assert not settings.standalone
    assert settings.kubeconfig is None  # in-cluster: its ServiceAccount


@pytest.mark.parametrize("deployment", ["katib-experiment-controller", "katib-trial-controller"])
def test_controllers_watch_everything_and_elect_a_leader_in_kubeflow(
    install: list[dict[str, Any]], deployment: str
) -> None:
    args, env = command_line(install, deployment)
    settings = operator_settings.parse(deployment, deployment, args, env)
    assert settings.clusterwide
    assert settings.leader_elect
    assert (settings.lease_namespace, settings.lease_name, settings.identity) == ("kubeflow", deployment, "pod-0")
    assert settings.liveness == "http://0.0.0.0:8080/healthz"
    assert settings.db_manager_address == "katib-db-manager.kubeflow:6789"
    assert settings.kubeconfig is None
    # Push auth (infra/components/push-auth): the controllers sign with the mounted secret.
    assert settings.push_auth_secret_file == Path("/etc/katib/push-auth/secret")


def test_the_webhook_of_the_install_injects_push_tokens(install: list[dict[str, Any]]) -> None:
    args, env = command_line(install, "katib-webhook")
    assert WebhookSettings.from_args(args, env).admission.injection.push_token
