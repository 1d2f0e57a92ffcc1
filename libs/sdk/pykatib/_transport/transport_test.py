"""Transport behaviour against real loopback sockets that are not (or no longer) gRPC servers."""

import socket
import threading
from collections.abc import Iterator

import pytest

from pykatib._transport import RpcError, StatusCode, open_channel
from pykatib._transport._h2 import _grpc_timeout, split_address


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("127.0.0.1:6789", ("127.0.0.1", 6789)),
        ("katib-db-manager.kubeflow:6789", ("katib-db-manager.kubeflow", 6789)),
        ("[::1]:80", ("::1", 80)),
    ],
)
def test_split_address(address: str, parts: tuple[str, int]) -> None:
    assert split_address(address) == parts


@pytest.mark.parametrize("address", ["localhost", ":80", "host:port"])
def test_bad_addresses(address: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        split_address(address)


def test_grpc_timeout_header_has_at_most_8_digits() -> None:
    assert _grpc_timeout(120) == "120000m"
    assert _grpc_timeout(0.0001) == "1m"
    assert _grpc_timeout(10**6) == "1000000S"


def test_transport_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert open_channel("127.0.0.1:1", "h2").name == "h2"
    assert open_channel("127.0.0.1:1", "grpcio").name == "grpcio"
    monkeypatch.setenv("PYKATIB_TRANSPORT", "h2")
    assert open_channel("127.0.0.1:1").name == "h2"
    monkeypatch.setenv("PYKATIB_TRANSPORT", "carrier-pigeon")
    with pytest.raises(ValueError, match="PYKATIB_TRANSPORT"):
        open_channel("127.0.0.1:1")


@pytest.fixture()
def listener() -> Iterator[tuple[socket.socket, str]]:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield server, f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


@pytest.mark.parametrize("transport", ["h2", "grpcio"])
def test_a_peer_that_hangs_up_is_unavailable(listener: tuple[socket.socket, str], transport: str) -> None:
    server, address = listener

    def hang_up() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    channel = open_channel(address, transport)
    with pytest.raises(RpcError) as caught:
        channel.unary("/api.v1.beta1.DBManager/GetObservationLog", b"", timeout=5)
    assert caught.value.code == StatusCode.UNAVAILABLE
    assert str(caught.value).startswith("UNAVAILABLE: ")
    channel.close()


def test_a_silent_peer_runs_into_the_deadline(listener: tuple[socket.socket, str]) -> None:
    _, address = listener  # accepted by the kernel, never answered
    channel = open_channel(address, "h2")
    with pytest.raises(RpcError) as caught:
        channel.unary("/api.v1.beta1.DBManager/GetObservationLog", b"", timeout=0.5)
    assert caught.value.code == StatusCode.DEADLINE_EXCEEDED
    channel.close()


def test_nothing_listening_is_unavailable() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{probe.getsockname()[1]}"
    probe.close()
    with pytest.raises(RpcError) as caught:
        open_channel(address, "h2").unary("/x/y", b"", timeout=5)
    assert caught.value.code == StatusCode.UNAVAILABLE
