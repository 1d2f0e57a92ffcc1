"""The signing-Secret bootstrap against the real API server."""

from __future__ import annotations

import base64

from kubernetes import client

from katib_core import push_auth
from katib_testcluster.cluster import Cluster
from katib_trial_controller import push_secret


def test_creates_a_usable_secret_once_and_keeps_it(k8s_cluster: Cluster, k8s_namespace: str) -> None:
    argv = ["--namespace", k8s_namespace, "--kubeconfig", str(k8s_cluster.kubeconfig)]
    assert push_secret.main(argv) == 0
    core = client.CoreV1Api(k8s_cluster.api_client)
    first = core.read_namespaced_secret(push_secret.DEFAULT_NAME, k8s_namespace).data
    assert first is not None
    text = base64.b64decode(first["secret"]).decode()
    assert len(push_auth.parse_secrets(text)) == 1  # what the DB manager will load
    assert push_secret.main(argv) == 0  # a second run (an upgrade, a retried Job) keeps it
    assert core.read_namespaced_secret(push_secret.DEFAULT_NAME, k8s_namespace).data == first


def test_an_unreachable_api_server_is_one_line_and_exit_1(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nope"
    assert push_secret.main(["--namespace", "kubeflow", "--kubeconfig", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("katib-push-secret: ")
    assert "Traceback" not in err
