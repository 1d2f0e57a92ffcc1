"""The control plane itself: clear errors, RBAC for static identities, two planes side by side."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from katib_testcluster import cluster, controlplane


def test_missing_binaries_name_the_build_script(tmp_path: Path) -> None:
    with pytest.raises(controlplane.MissingBinaryError, match="infra/testcluster/build-k8s.sh"):
        controlplane.Binaries.locate({"KUBE_BIN": str(tmp_path), "PATH": "/usr/bin:/bin"})


def test_cache_dir_is_keyed_by_version() -> None:
    assert str(controlplane.cache_dir({"PYKATIB_CACHE": "/c"})) == "/c/k8s-1.20.2"
    assert str(controlplane.cache_dir({"HOME": "/h"})) == "/h/.cache/pykatib/k8s-1.20.2"


def test_controller_identity_is_subject_to_rbac(k8s_cluster: cluster.Cluster, k8s_namespace: str) -> None:
    controller = k8s_cluster.control_plane.api_client(token=k8s_cluster.pki.controller_token)
    with controller, pytest.raises(ApiException) as raised:
        client.CoreV1Api(controller).list_namespaced_pod(k8s_namespace)

    assert raised.value.status == 403
    assert "system:serviceaccount:kubeflow:katib-controller" in str(raised.value.body)


def test_a_second_control_plane_does_not_clash(k8s_cluster: cluster.Cluster) -> None:
    with controlplane.ControlPlane() as other, other.api_client() as api_client:
        other_dir = other.dir
        namespaces = client.CoreV1Api(api_client).list_namespace()

        assert other.server != k8s_cluster.server
        assert other_dir != k8s_cluster.dir
        assert "default" in {ns.metadata.name for ns in namespaces.items if ns.metadata}
        client.CoreV1Api(k8s_cluster.api_client).read_namespace("default")  # the session's still serves
    assert not other_dir.exists()
