"""Transport over grpcio (C core), used whenever grpcio is importable — any version.

Only ``grpc.insecure_channel``/``secure_channel`` and ``channel.unary_unary(path)`` with raw bytes are used: no
generated stubs, whose ``_registered_method`` argument breaks grpcio < 1.64 (Katib #2427).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pykatib._transport._errors import RpcError, StatusCode

#: Reconnect quickly after a DB manager restart (grpcio's default backoff starts at 1 s, grows to 120 s).
_OPTIONS = [
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class GrpcioChannel:
    """One ``grpc.Channel`` to ``address``; thread-safe, reconnects by itself."""

    name = "grpcio"

    def __init__(self, address: str, *, ca_file: str | None = None) -> None:
        # grpcio is the optional extra pykatib[grpc]: an inferred edge would make the trial wheel
        # require it (and pin trial images' grpcio), while the h2 transport serves without it.
        # Targets that want it depend on 3rdparty/python:reqs#grpcio explicitly.
        import grpc  # pants: no-infer-dep

        self._grpc: Any = grpc
        if ca_file is None:
            self._channel: Any = grpc.insecure_channel(address, options=_OPTIONS)
        else:
            with open(ca_file, "rb") as file:
                credentials = grpc.ssl_channel_credentials(root_certificates=file.read())
            self._channel = grpc.secure_channel(address, credentials, options=_OPTIONS)
        self._methods: dict[str, Any] = {}

    def unary(self, method: str, payload: bytes, *, timeout: float, metadata: Sequence[tuple[str, str]] = ()) -> bytes:
        call = self._methods.get(method)
        if call is None:
            # No serializers: grpcio then sends and returns the raw bytes.
            call = self._methods[method] = self._channel.unary_unary(method)
        try:
            reply: bytes = call(payload, timeout=timeout, metadata=tuple(metadata) or None)
        except self._grpc.RpcError as exc:
            raise RpcError(StatusCode[exc.code().name], exc.details() or "") from None
        return reply

    def close(self) -> None:
        self._channel.close()
