import pytest

import pykatib as katib
from pykatib import backends


def test_local_without_the_local_extra_says_what_to_install() -> None:
    # This test's environment has pykatib alone, as a trial image would: local mode is an extra.
    assert "local" in backends.NAMES
    with pytest.raises(ImportError, match=r"pip install 'pykatib\[local\]'"):
        katib.KatibClient(backend="local")


def test_local_takes_no_kubernetes_settings() -> None:
    with pytest.raises(ValueError, match="backend='local' takes no Kubernetes configuration"):
        katib.KatibClient(config_file="~/.kube/config", backend="local")


def test_unknown_backends_are_named() -> None:
    with pytest.raises(ValueError, match="^backend='docker': expected one of 'kubernetes', 'local'"):
        katib.KatibClient(backend="docker")
    with pytest.raises(TypeError):
        backends.create("kubernetes")  # type: ignore[arg-type]


def test_kubernetes_backend_with_a_given_configuration() -> None:
    from kubernetes import client as k8s

    configuration = k8s.Configuration()
    configuration.host = "https://127.0.0.1:1"
    katib_client = katib.KatibClient(client_configuration=configuration)
    assert katib_client.namespace == "default"  # outside a pod
    assert katib.KatibClient(client_configuration=configuration, namespace="team").namespace == "team"
    with pytest.raises(RuntimeError, match="^Failed to list Katib Experiments in namespace: team"):
        katib_client.list_experiments("team", timeout=5)
