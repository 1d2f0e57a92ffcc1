import base64
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from katib_operator import connecting, kubeapi


def write(tmp_path: Path, user: Mapping[str, object], cluster: Mapping[str, object] | None = None) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": cluster or {"server": "https://127.0.0.1:6443/", "certificate-authority": "ca.crt"},
            }
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "team"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


def test_token_kubeconfig(tmp_path: Path) -> None:
    config = kubeapi.load(str(write(tmp_path, {"token": "abc"})))
    assert config.server == "https://127.0.0.1:6443"
    assert config.ca_file == str(tmp_path / "ca.crt")
    assert (config.bearer(), config.namespace) == ("abc", "team")
    info = connecting.connection_info(config)
    assert (info.server, info.token, info.scheme, info.default_namespace) == (config.server, "abc", "Bearer", "team")


def test_inline_certificates_become_files(tmp_path: Path) -> None:
    data = base64.b64encode(b"PEM").decode()
    cluster = {"server": "https://h:1", "certificate-authority-data": data}
    config = kubeapi.load(str(write(tmp_path, {"client-certificate-data": data, "client-key-data": data}, cluster)))
    for name in (config.ca_file, config.cert_file, config.key_file):
        assert name is not None
        assert Path(name).read_bytes() == b"PEM"
    assert config.bearer() is None


def test_unknown_context_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no context named 'nope'"):
        kubeapi.load(str(write(tmp_path, {"token": "t"})), context="nope")


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("", "v1", "events", "ns"), "/api/v1/namespaces/ns/events"),
        (("batch", "v1", "jobs", "ns", "j", "status"), "/apis/batch/v1/namespaces/ns/jobs/j/status"),
        (
            ("coordination.k8s.io", "v1", "leases", "ns", "a b"),
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases/a%20b",
        ),
    ],
)
def test_paths(args: tuple[str, ...], path: str) -> None:
    assert kubeapi.path(*args) == path
