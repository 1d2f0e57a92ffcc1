"""Authenticated pushes and TLS on a real DB manager over real gRPC (pykatib as the client too)."""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import trustme
from cryptography import x509
from google.protobuf.message import Message

import pykatib
from katib_api.v1beta1 import api_pb2
from katib_core import push_auth
from katib_core.push_auth import Claims
from katib_dbmanager.auth import Authenticator
from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.storage import Query, open_store
from katib_dbmanager.tls import ServerTLS
from pykatib._dbmanager import DBManagerClient
from pykatib._transport import RpcError, StatusCode, open_channel

SECRET = b"first-secret-0123456789"
NEXT = b"second-secret-0123456789"
LOG = api_pb2.MetricLog(time_stamp="2024-01-01T00:00:00Z", metric=api_pb2.Metric(name="loss", value="0.5"))


def token(ns: str, trial: str, *, secret: bytes = SECRET, ttl: float = 600) -> str:
    return push_auth.mint(secret, Claims(ns, trial, int(time.time() + ttl)))


@pytest.fixture()
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "push-secret"
    path.write_text(SECRET.decode() + "\n")
    return path


@pytest.fixture()
def server(tmp_path: Path, secret_file: Path) -> Iterator[DBManagerServer]:
    store = open_store(f"sqlite:///{tmp_path}/katib.db")
    with DBManagerServer(store, authenticator=Authenticator(secret_file)) as running:
        yield running


def call(server: DBManagerServer, method: str, request: Message, bearer: str | None) -> grpc.StatusCode:
    metadata = (("authorization", f"Bearer {bearer}"),) if bearer is not None else None
    with grpc.insecure_channel(server.address) as channel:
        try:
            channel.unary_unary(f"/api.v1.beta1.DBManager/{method}")(
                request.SerializeToString(), timeout=10, metadata=metadata
            )
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def report(trial: str) -> api_pb2.ReportObservationLogRequest:
    return api_pb2.ReportObservationLogRequest(
        trial_name=trial, observation_log=api_pb2.ObservationLog(metric_logs=[LOG])
    )


def get(trial: str) -> api_pb2.GetObservationLogRequest:
    return api_pb2.GetObservationLogRequest(trial_name=trial)


def test_reports_need_a_token_for_their_own_trial(server: DBManagerServer) -> None:
    assert call(server, "ReportObservationLog", report("t1"), None) == grpc.StatusCode.UNAUTHENTICATED
    assert call(server, "ReportObservationLog", report("t1"), "garbage") == grpc.StatusCode.UNAUTHENTICATED
    assert call(server, "ReportObservationLog", report("t1"), token("team-a", "t1")) == grpc.StatusCode.OK
    # A forged trial name: a valid token of t1 used to write t2.
    assert (
        call(server, "ReportObservationLog", report("t2"), token("team-a", "t1")) == grpc.StatusCode.PERMISSION_DENIED
    )
    assert server.store.trial_namespace("t1") == "team-a"
    assert server.store.trial_namespace("t2") is None


def test_unauthenticated_callers_learn_nothing_about_their_request(server: DBManagerServer) -> None:
    bad = api_pb2.ReportObservationLogRequest(trial_name="t1")  # would be INVALID_ARGUMENT
    assert call(server, "ReportObservationLog", bad, None) == grpc.StatusCode.UNAUTHENTICATED


def test_expired_tampered_and_foreign_tokens(server: DBManagerServer) -> None:
    assert (
        call(server, "ReportObservationLog", report("t1"), token("a", "t1", ttl=-1)) == grpc.StatusCode.UNAUTHENTICATED
    )
    genuine = token("a", "t1")
    tampered = genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB")
    assert call(server, "ReportObservationLog", report("t1"), tampered) == grpc.StatusCode.UNAUTHENTICATED
    foreign = token("a", "t1", secret=b"someone-elses-secret-123")
    assert call(server, "ReportObservationLog", report("t1"), foreign) == grpc.StatusCode.UNAUTHENTICATED


def test_reads_and_deletes_by_namespace(server: DBManagerServer) -> None:
    assert call(server, "ReportObservationLog", report("t1"), token("team-a", "t1")) == grpc.StatusCode.OK
    # The trial's own token reads it; a token replayed against another trial does not.
    assert call(server, "GetObservationLog", get("t1"), token("team-a", "t1")) == grpc.StatusCode.OK
    assert call(server, "GetObservationLog", get("t1"), token("team-a", "t9")) == grpc.StatusCode.PERMISSION_DENIED
    # Namespace tokens read their namespace's trials only; admin tokens read everything.
    assert call(server, "GetObservationLog", get("t1"), token("team-a", "*")) == grpc.StatusCode.OK
    assert call(server, "GetObservationLog", get("t1"), token("team-b", "*")) == grpc.StatusCode.PERMISSION_DENIED
    assert call(server, "GetObservationLog", get("t1"), token("*", "*")) == grpc.StatusCode.OK
    assert call(server, "GetObservationLog", get("t1"), None) == grpc.StatusCode.UNAUTHENTICATED
    delete = api_pb2.DeleteObservationLogRequest(trial_name="t1")
    assert call(server, "DeleteObservationLog", delete, token("team-a", "t1")) == grpc.StatusCode.PERMISSION_DENIED
    assert call(server, "DeleteObservationLog", delete, token("team-b", "*")) == grpc.StatusCode.PERMISSION_DENIED
    assert call(server, "DeleteObservationLog", delete, token("team-a", "*")) == grpc.StatusCode.OK
    assert server.store.trial_namespace("t1") is None


def test_a_report_is_bound_to_the_namespace_its_trial_belongs_to(server: DBManagerServer) -> None:
    assert call(server, "ReportObservationLog", report("trial-a"), token("ns1", "trial-a")) == grpc.StatusCode.OK
    # A token for the same trial name in another namespace writes nothing into ns1's trial…
    denied = call(server, "ReportObservationLog", report("trial-a"), token("ns2", "trial-a"))
    assert denied == grpc.StatusCode.PERMISSION_DENIED
    assert len(server.store.get(Query("trial-a"))) == 1
    # …and ns1's own tokens keep reading it; ns2's namespace token neither reads nor deletes it.
    assert call(server, "GetObservationLog", get("trial-a"), token("ns1", "trial-a")) == grpc.StatusCode.OK
    assert call(server, "GetObservationLog", get("trial-a"), token("ns2", "*")) == grpc.StatusCode.PERMISSION_DENIED
    delete = api_pb2.DeleteObservationLogRequest(trial_name="trial-a")
    assert call(server, "DeleteObservationLog", delete, token("ns2", "*")) == grpc.StatusCode.PERMISSION_DENIED
    assert server.store.trial_namespace("trial-a") == "ns1"


def test_empty_names_are_no_way_around_authentication(server: DBManagerServer) -> None:
    empty_get, empty_delete = get(""), api_pb2.DeleteObservationLogRequest(trial_name="")
    assert call(server, "GetObservationLog", empty_get, None) == grpc.StatusCode.UNAUTHENTICATED
    assert call(server, "DeleteObservationLog", empty_delete, None) == grpc.StatusCode.UNAUTHENTICATED
    assert call(server, "GetObservationLog", empty_get, token("ns1", "*")) == grpc.StatusCode.OK
    assert call(server, "DeleteObservationLog", empty_delete, token("ns1", "*")) == grpc.StatusCode.OK


def test_secret_rotation_without_restart(server: DBManagerServer, secret_file: Path) -> None:
    old = token("a", "t1")
    secret_file.write_text(NEXT.decode() + "\n" + SECRET.decode() + "\n")  # new secret signs, old still verifies
    _wait_for_reload(secret_file)
    assert call(server, "ReportObservationLog", report("t1"), token("a", "t1", secret=NEXT)) == grpc.StatusCode.OK
    assert call(server, "ReportObservationLog", report("t1"), old) == grpc.StatusCode.OK
    secret_file.write_text(NEXT.decode() + "\n")  # retire the old secret: its tokens are revoked
    _wait_for_reload(secret_file)
    assert call(server, "ReportObservationLog", report("t1"), old) == grpc.StatusCode.UNAUTHENTICATED


def test_pykatib_sends_the_trial_token(server: DBManagerServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KATIB_TRIAL_NAME", "sdk-trial")
    monkeypatch.setenv("KATIB_DB_MANAGER_ADDRESS", server.address)
    with pytest.raises(RuntimeError, match="push token"):
        pykatib.report_metrics({"loss": 0.25}, timeout=5)
    monkeypatch.setenv("KATIB_TRIAL_TOKEN", token("team-a", "sdk-trial"))
    pykatib.report_metrics({"loss": 0.25}, timeout=5)
    client = DBManagerClient(open_channel(server.address))
    assert [log.metric.value for log in client.get("sdk-trial", timeout=5)] == ["0.25"]
    monkeypatch.setenv("KATIB_TRIAL_TOKEN", token("team-a", "another-trial"))
    with pytest.raises(RuntimeError, match="PERMISSION_DENIED|not 'sdk-trial'"):
        pykatib.report_metrics({"loss": 0.25}, timeout=5)


def _wait_for_reload(path: Path) -> None:
    # The file is re-read when its mtime or size changes, looked at once per second.
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 1))
    time.sleep(1.1)


# -- TLS ---------------------------------------------------------------------------------------


class Pki:
    """A CA (trustme) and serving certificates for 127.0.0.1, renewed by ``issue``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = trustme.CA(organization_unit_name="pykatib test CA")
        self.ca_file = root / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.cert_file, self.key_file = root / "tls.crt", root / "tls.key"

    def issue(self) -> int:
        """Write a new serving cert + key; return its serial number."""
        leaf = self.ca.issue_cert("127.0.0.1", "localhost", common_name="katib-db-manager")
        leaf.private_key_pem.write_to_path(str(self.key_file))
        leaf.cert_chain_pems[0].write_to_path(str(self.cert_file))
        return x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).serial_number


def served_serial(address: str, ca_file: Path) -> int:
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca_file))
    context.set_alpn_protocols(["h2"])
    with context.wrap_socket(__import__("socket").create_connection((host, int(port))), server_hostname=host) as sock:
        der = sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


@pytest.mark.parametrize("transport", ["grpcio", "h2"])
def test_tls_with_a_rotated_certificate(tmp_path: Path, transport: str) -> None:
    pki = Pki(tmp_path)
    first = pki.issue()
    store = open_store(f"sqlite:///{tmp_path}/katib.db")
    with DBManagerServer(store, tls=ServerTLS(pki.cert_file, pki.key_file)) as server:
        client = DBManagerClient(open_channel(server.address, transport, ca_file=str(pki.ca_file)))
        client.report("tls-trial", [], key="k" * 16, timeout=10)
        assert served_serial(server.address, pki.ca_file) == first
        second = pki.issue()
        os.utime(pki.cert_file, (time.time(), time.time() + 2))
        assert served_serial(server.address, pki.ca_file) == second  # new handshakes, new certificate
        fresh = DBManagerClient(open_channel(server.address, transport, ca_file=str(pki.ca_file)))
        assert fresh.get("tls-trial", timeout=10) == []
        plaintext = DBManagerClient(open_channel(server.address, transport))
        with pytest.raises(RpcError) as caught:
            plaintext.get("tls-trial", timeout=3)
        assert caught.value.code in (StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED, StatusCode.INTERNAL)
