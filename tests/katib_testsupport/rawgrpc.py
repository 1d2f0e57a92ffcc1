"""gRPC calls written frame by frame with ``h2``, for requests no gRPC library will send.

Tests and benchmarks use it to send what a broken or hostile client could: a call with no message,
a length prefix cut short, a body shorter than its prefix, a compressed flag, a bad grpc-timeout.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.events


@dataclass(frozen=True)
class Answer:
    """What came back: the gRPC status (None if none arrived before ``wait``) and its message."""

    status: int | None
    message: str
    reset: bool = False

    @property
    def answered(self) -> bool:
        return self.status is not None or self.reset


def frame(body: bytes, *, length: int | None = None, compressed: bool = False) -> bytes:
    """A gRPC length-prefixed message; ``length`` overrides the prefix (to lie about the body)."""
    return struct.pack(">BI", 1 if compressed else 0, len(body) if length is None else length) + body


class RawConnection:
    """One HTTP/2 connection to a gRPC server; ``open_call`` starts calls on it, ``answers`` reads."""

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        host, _, port = address.rpartition(":")
        self.authority = address
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.h2.initiate_connection()
        self.sock.sendall(self.h2.data_to_send())
        self.statuses: dict[int, Answer] = {}

    def open_call(
        self, path: str, data: Sequence[bytes], *, end_stream: bool = True, headers: Sequence[tuple[str, str]] = ()
    ) -> int:
        """Send HEADERS, then each of ``data`` as one DATA frame; the stream id."""
        stream = self.h2.get_next_available_stream_id()
        self.h2.send_headers(
            stream,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", path),
                (":authority", self.authority),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                *headers,
            ],
            end_stream=end_stream and not data,
        )
        for index, chunk in enumerate(data):
            self.h2.send_data(stream, chunk, end_stream=end_stream and index == len(data) - 1)
        self.sock.sendall(self.h2.data_to_send())
        return stream

    def answers(self, streams: Sequence[int], wait: float) -> dict[int, Answer]:
        """Read until every stream in ``streams`` is answered or ``wait`` seconds pass."""
        deadline = time.monotonic() + wait
        pending = set(streams) - set(self.statuses)
        while pending and (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                received = self.sock.recv(1 << 16)
            except TimeoutError:
                break
            if not received:
                break
            for event in self.h2.receive_data(received):
                if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    fields = {_text(name): _text(value) for name, value in event.headers}
                    if "grpc-status" in fields:
                        answer = Answer(int(fields["grpc-status"]), fields.get("grpc-message", ""))
                        self.statuses[event.stream_id] = answer
                elif isinstance(event, h2.events.StreamReset) and event.stream_id not in self.statuses:
                    # (a server that answered before the client half-closed resets with NO_ERROR after)
                    self.statuses[event.stream_id] = Answer(None, f"RST_STREAM {event.error_code}", reset=True)
                elif isinstance(event, h2.events.DataReceived):
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self.sock.sendall(self.h2.data_to_send())
            pending -= set(self.statuses)
        return {stream: self.statuses.get(stream, Answer(None, "")) for stream in streams}

    def close(self) -> None:
        self.sock.close()


def _text(value: str | bytes) -> str:
    """h2 gives str headers with ``header_encoding`` set (its types say bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def call(
    address: str,
    path: str,
    data: Sequence[bytes],
    *,
    end_stream: bool = True,
    headers: Sequence[tuple[str, str]] = (),
    wait: float = 10.0,
) -> Answer:
    """One call on a connection of its own."""
    connection = RawConnection(address)
    try:
        stream = connection.open_call(path, data, end_stream=end_stream, headers=headers)
        return connection.answers([stream], wait)[stream]
    finally:
        connection.close()
