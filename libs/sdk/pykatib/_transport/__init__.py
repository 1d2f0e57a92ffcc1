"""How the SDK speaks gRPC: grpcio when importable (any version), else pure-Python HTTP/2.

``open_channel(address)`` returns a ``Channel``: ``unary(method, payload_bytes, timeout=,
metadata=)`` → reply bytes, raising ``RpcError`` with a ``StatusCode``. Env ``PYKATIB_TRANSPORT``
(``grpcio`` | ``h2``) forces a choice; env ``KATIB_DB_MANAGER_CA_FILE`` (a PEM bundle) switches
to TLS, trusting that CA.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

from pykatib._transport._errors import RpcError, StatusCode

TRANSPORT_ENV = "PYKATIB_TRANSPORT"
CA_FILE_ENV = "KATIB_DB_MANAGER_CA_FILE"


class Channel(Protocol):
    name: str

    def unary(
        self, method: str, payload: bytes, *, timeout: float, metadata: Sequence[tuple[str, str]] = ()
    ) -> bytes: ...

    def close(self) -> None: ...


def open_channel(address: str, transport: str | None = None, *, ca_file: str | None = None) -> Channel:
    """A channel to ``address`` over ``transport`` (default: env, else grpcio if importable, else h2).

    ``ca_file`` (default: env ``KATIB_DB_MANAGER_CA_FILE``) makes it TLS, trusting that CA bundle.
    """
    choice = transport or os.environ.get(TRANSPORT_ENV, "")
    ca_file = ca_file or os.environ.get(CA_FILE_ENV) or None
    if choice not in ("", "grpcio", "h2"):
        raise ValueError(f"{TRANSPORT_ENV}={choice!r}: expected 'grpcio' or 'h2'")
    if choice in ("", "grpcio"):
        try:
            from pykatib._transport._grpcio import GrpcioChannel

            return GrpcioChannel(address, ca_file=ca_file)
        except ImportError:
            if choice == "grpcio":
                raise
    from pykatib._transport._h2 import H2Channel

    return H2Channel(address, ca_file=ca_file)


__all__ = ["CA_FILE_ENV", "TRANSPORT_ENV", "Channel", "RpcError", "StatusCode", "open_channel"]
