"""How the SDK speaks gRPC: grpcio when importable (any version), else pure-Python HTTP/2.

``open_channel(address)`` returns a ``Channel``: ``unary(method, payload_bytes, timeout=,
metadata=)`` → reply bytes, raising ``RpcError`` with a ``StatusCode``. Env ``PYKATIB_TRANSPORT``
(``grpcio`` | ``h2``) forces a choice.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

from pykatib._transport._errors import RpcError, StatusCode

TRANSPORT_ENV = "PYKATIB_TRANSPORT"


class Channel(Protocol):
    name: str

    def unary(
        self, method: str, payload: bytes, *, timeout: float, metadata: Sequence[tuple[str, str]] = ()
    ) -> bytes: ...

    def close(self) -> None: ...


def open_channel(address: str, transport: str | None = None) -> Channel:
    """A channel to ``address`` over ``transport`` (default: env, else grpcio if importable, else h2)."""
    choice = transport or os.environ.get(TRANSPORT_ENV, "")
    if choice not in ("", "grpcio", "h2"):
        raise ValueError(f"{TRANSPORT_ENV}={choice!r}: expected 'grpcio' or 'h2'")
    if choice in ("", "grpcio"):
        try:
            from pykatib._transport._grpcio import GrpcioChannel

            return GrpcioChannel(address)
        except ImportError:
            if choice == "grpcio":
                raise
    from pykatib._transport._h2 import H2Channel

    return H2Channel(address)


__all__ = ["TRANSPORT_ENV", "Channel", "RpcError", "StatusCode", "open_channel"]
