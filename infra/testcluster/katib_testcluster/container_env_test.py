"""Kubelet-style env expansion and fieldRef paths (no cluster needed)."""

from __future__ import annotations

import pytest

from katib_testcluster import container_env

POD = {
    "metadata": {
        "name": "p",
        "namespace": "ns",
        "uid": "u-1",
        "labels": {"katib.kubeflow.org/trial": "t-1"},
        "annotations": {"a/b": "c"},
    },
    "spec": {"nodeName": "n", "serviceAccountName": "sa"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)-$(B)", "1-two"),
        ("$$(A)", "$(A)"),
        ("$(UNKNOWN) stays", "$(UNKNOWN) stays"),
        ("no close $(A", "no close $(A"),
        ("${A} is shell syntax", "${A} is shell syntax"),
        ("$$$(A)", "$1"),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert container_env.expand(text, {"A": "1", "B": "two"}) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("metadata.name", "p"),
        ("metadata.namespace", "ns"),
        ("metadata.uid", "u-1"),
        ("metadata.labels['katib.kubeflow.org/trial']", "t-1"),
        ("metadata.annotations['a/b']", "c"),
        ("metadata.labels['absent']", ""),
        ("spec.nodeName", "n"),
        ("spec.serviceAccountName", "sa"),
        ("status.podIP", "127.0.0.1"),
    ],
)
def test_field_value(path: str, expected: str) -> None:
    assert container_env.field_value(POD, path, pod_ip="127.0.0.1") == expected


def test_unsupported_field_path_is_an_env_error() -> None:
    with pytest.raises(container_env.EnvError, match="spec.hostname"):
        container_env.field_value(POD, "spec.hostname", pod_ip="127.0.0.1")
