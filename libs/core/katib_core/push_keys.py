"""Push tokens, minted with the signing secret of a secret source (katib_core.push_auth does the crypto).

No I/O here: the secrets come from the caller's source (katib_pushauth.SecretFile reads the
mounted file) and the time from its clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from katib_core import push_auth
from katib_core.push_auth import Claims

#: Admin tokens (the controllers' own DB-manager calls) live this long and are re-minted at half-life.
ADMIN_TOKEN_TTL: Final = 3600.0


class SigningSecret(Protocol):
    """Where the secret new tokens are signed with comes from (it may change: rotation)."""

    def signing(self) -> bytes: ...


@dataclass(frozen=True)
class AdminToken:
    token: str
    expires_at: float
    #: The secret it was signed with: a rotation re-mints it.
    signing: bytes


def trial_token(signing: bytes, namespace: str, trial: str, *, now: float, ttl: float) -> str:
    """A token that may report and read ``namespace``/``trial`` only, until ``now + ttl``."""
    return push_auth.mint(signing, Claims(namespace, trial, expires_at=int(now + ttl)))


def admin_token(cached: AdminToken | None, signing: bytes, *, now: float, ttl: float = ADMIN_TOKEN_TTL) -> AdminToken:
    """``cached`` while it is signed with ``signing`` and short of half-life, else a fresh admin token."""
    if cached is not None and cached.signing == signing and now < cached.expires_at - ttl / 2:
        return cached
    expires = now + ttl
    token = push_auth.mint(signing, Claims(push_auth.ANY, push_auth.ANY, expires_at=int(expires)))
    return AdminToken(token, expires, signing)


class TokenMinter:
    """Mints trial tokens, and a cached admin token for its own process, with ``secrets``' signing secret."""

    def __init__(
        self, secrets: SigningSecret, *, clock: Callable[[], float], admin_ttl: float = ADMIN_TOKEN_TTL
    ) -> None:
        self._secrets = secrets
        self._clock = clock
        self._admin_ttl = admin_ttl
        self._admin: AdminToken | None = None

    def trial_token(self, namespace: str, trial: str, *, ttl: float) -> str:
        """A token that may report and read ``namespace``/``trial`` only, for ``ttl`` seconds."""
        return trial_token(self._secrets.signing(), namespace, trial, now=self._clock(), ttl=ttl)

    def admin_token(self) -> str:
        """An admin token (any namespace, any trial); re-minted at half-life or when the signing secret changes.

        No lock: threads that race here each get a valid token, and one of them is cached.
        """
        self._admin = admin_token(self._admin, self._secrets.signing(), now=self._clock(), ttl=self._admin_ttl)
        return self._admin.token
