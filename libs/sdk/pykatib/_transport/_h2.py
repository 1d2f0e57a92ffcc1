"""Pure-Python gRPC transport (HTTP/2 via ``h2``) for trial images without grpcio.

Unary calls only, plaintext or TLS, one connection per address, one call at a time on it (report_metrics
is sequential; the buffered sender is one thread). Any failure of the connection closes it; the
next call opens a new one, so a restarted DB manager is picked up by the caller's retry.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TypeVar

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

from pykatib._transport._errors import RpcError, StatusCode

_USER_AGENT = "pykatib-h2"
#: gRPC's mapping of HTTP statuses for responses that carry no grpc-status.
_HTTP_TO_GRPC = {
    400: StatusCode.INTERNAL,
    401: StatusCode.UNAUTHENTICATED,
    403: StatusCode.PERMISSION_DENIED,
    404: StatusCode.UNIMPLEMENTED,
    429: StatusCode.UNAVAILABLE,
    502: StatusCode.UNAVAILABLE,
    503: StatusCode.UNAVAILABLE,
    504: StatusCode.UNAVAILABLE,
}
_CONNECT_TIMEOUT = 20.0
_WINDOW = 1 << 24
_T = TypeVar("_T")


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` → (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"DB manager address {address!r} must be HOST:PORT")
    return host.strip("[]"), int(port)


class _BrokenConnectionError(Exception):
    """The connection can't be used any more (the wrapped RpcError says why)."""

    def __init__(self, error: RpcError) -> None:
        super().__init__(str(error))
        self.error = error


class _Connection:
    def __init__(
        self, host: str, port: int, authority: str, deadline: float, tls: ssl.SSLContext | None = None
    ) -> None:
        self.authority = authority
        self.closed = False
        try:
            self.sock = socket.create_connection(
                (host, port), timeout=max(0.001, min(_CONNECT_TIMEOUT, _left(deadline)))
            )
            if tls is not None:
                self.sock = tls.wrap_socket(self.sock, server_hostname=host)
        except TimeoutError:
            raise RpcError(StatusCode.DEADLINE_EXCEEDED, f"connecting to {authority} timed out") from None
        except OSError as exc:
            raise RpcError(StatusCode.UNAVAILABLE, f"cannot connect to {authority}: {exc}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(_WINDOW)
        self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: _WINDOW})
        try:
            self._flush(deadline)
        except _BrokenConnectionError as broken:
            self.close()
            raise broken.error from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def call(self, method: str, payload: bytes, deadline: float, metadata: Sequence[tuple[str, str]]) -> bytes:
        stream = self.h2.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", method),
            (":authority", self.authority),
            ("te", "trailers"),
            ("content-type", "application/grpc"),
            ("user-agent", _USER_AGENT),
            ("grpc-timeout", _grpc_timeout(_left(deadline))),
            *metadata,
        ]
        self.h2.send_headers(stream, headers)
        body = memoryview(b"\x00" + len(payload).to_bytes(4, "big") + payload)
        response = _Response()
        sent = 0
        while sent < len(body):
            room = min(self.h2.local_flow_control_window(stream), self.h2.max_outbound_frame_size, len(body) - sent)
            if room <= 0:
                self._flush(deadline)
                self._receive(stream, response, deadline)
                if response.ended:
                    break
                continue
            self.h2.send_data(stream, body[sent : sent + room].tobytes(), end_stream=sent + room == len(body))
            sent += room
        self._flush(deadline)
        while not response.ended:
            self._receive(stream, response, deadline)
        return response.result(self.authority)

    def _flush(self, deadline: float) -> None:
        data = self.h2.data_to_send()
        if data:
            self._io(deadline, lambda: self.sock.sendall(data))

    def _receive(self, stream: int, response: _Response, deadline: float) -> None:
        data: bytes = self._io(deadline, lambda: self.sock.recv(1 << 16))
        if not data:
            raise _BrokenConnectionError(RpcError(StatusCode.UNAVAILABLE, f"{self.authority} closed the connection"))
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            raise _BrokenConnectionError(RpcError(StatusCode.UNAVAILABLE, f"HTTP/2 protocol error: {exc}")) from None
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if getattr(event, "stream_id", None) == stream:
                response.take(event)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.closed = True
                if not response.ended:
                    raise _BrokenConnectionError(
                        RpcError(StatusCode.UNAVAILABLE, f"{self.authority} closed the connection (GOAWAY)")
                    )
        self._flush(deadline)

    def _io(self, deadline: float, action: Callable[[], _T]) -> _T:
        left = _left(deadline)
        if left <= 0:
            raise _BrokenConnectionError(RpcError(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"))
        self.sock.settimeout(left)
        try:
            return action()
        except TimeoutError:
            raise _BrokenConnectionError(RpcError(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")) from None
        except OSError as exc:
            raise _BrokenConnectionError(
                RpcError(StatusCode.UNAVAILABLE, f"connection to {self.authority} failed: {exc}")
            ) from None


class _Response:
    """What arrived for one stream: headers, body bytes, trailers."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.trailers: dict[str, str] = {}
        self.body = bytearray()
        self.ended = False
        self.reset: int | None = None

    def take(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            self.headers = dict(event.headers)  # type: ignore[arg-type]
        elif isinstance(event, h2.events.DataReceived):
            self.body += event.data or b""
        elif isinstance(event, h2.events.TrailersReceived):
            self.trailers = dict(event.headers)  # type: ignore[arg-type]
        elif isinstance(event, h2.events.StreamEnded):
            self.ended = True
        elif isinstance(event, h2.events.StreamReset):
            self.ended = True
            self.reset = int(event.error_code or 0)

    def result(self, authority: str) -> bytes:
        if self.reset is not None:
            raise RpcError(StatusCode.UNAVAILABLE, f"{authority} reset the stream (HTTP/2 error {self.reset})")
        http_status = int(self.headers.get(":status", "0") or 0)
        status = self.trailers.get("grpc-status", self.headers.get("grpc-status"))
        if status is None:
            code = StatusCode.UNKNOWN if http_status == 200 else _HTTP_TO_GRPC.get(http_status, StatusCode.UNKNOWN)
            raise RpcError(code, f"HTTP status {http_status} without grpc-status")
        message = urllib.parse.unquote(self.trailers.get("grpc-message", self.headers.get("grpc-message", "")))
        if int(status) != StatusCode.OK:
            try:
                code = StatusCode(int(status))
            except ValueError:
                code = StatusCode.UNKNOWN
            raise RpcError(code, message)
        if len(self.body) < 5:
            raise RpcError(StatusCode.INTERNAL, "the reply has no message")
        if self.body[0] != 0:
            raise RpcError(StatusCode.INTERNAL, "the reply is compressed, which was not negotiated")
        size = int.from_bytes(self.body[1:5], "big")
        if len(self.body) < 5 + size:
            raise RpcError(StatusCode.INTERNAL, "the reply message is truncated")
        return bytes(self.body[5 : 5 + size])


def _grpc_timeout(seconds: float) -> str:
    """The ``grpc-timeout`` header: at most 8 digits and a unit."""
    millis = max(1, int(seconds * 1000))
    return f"{millis}m" if millis < 100_000_000 else f"{min(int(seconds), 99_999_999)}S"


def _left(deadline: float) -> float:
    return deadline - time.monotonic()


class H2Channel:
    """A lazily opened HTTP/2 connection to ``address``; thread-safe (calls are serialised)."""

    name = "h2"

    def __init__(self, address: str, *, ca_file: str | None = None) -> None:
        self._host, self._port = split_address(address)
        self._authority = address
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self._tls: ssl.SSLContext | None = None
        if ca_file is not None:
            self._tls = ssl.create_default_context(cafile=ca_file)
            self._tls.set_alpn_protocols(["h2"])

    def unary(self, method: str, payload: bytes, *, timeout: float, metadata: Sequence[tuple[str, str]] = ()) -> bytes:
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=max(0.0, timeout)):
            raise RpcError(StatusCode.DEADLINE_EXCEEDED, "deadline exceeded waiting for the connection")
        try:
            if self._conn is None:
                self._conn = _Connection(self._host, self._port, self._authority, deadline, self._tls)
            try:
                reply = self._conn.call(method, payload, deadline, metadata)
            except _BrokenConnectionError as broken:
                self._drop()
                raise broken.error from None
            except h2.exceptions.H2Error as exc:
                self._drop()
                raise RpcError(StatusCode.UNAVAILABLE, f"HTTP/2 error: {exc}") from None
            if self._conn.closed:  # the server said goodbye; the next call reconnects
                self._drop()
            return reply
        finally:
            self._lock.release()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()
