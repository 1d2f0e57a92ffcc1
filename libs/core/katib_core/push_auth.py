"""Push credentials: who may write and read which trial's metrics in the DB manager.

Katib's DB manager has no authentication: any pod can write any trial's metrics (kubeflow/katib
#2022; a non-goal of its push KEP). pykatib's DB manager can require a token, minted by the
trial controller (or the local runner) with a secret it shares with the DB manager, delivered
to the trial as env ``KATIB_TRIAL_TOKEN``, and sent as gRPC metadata ``authorization: Bearer``.

A token is ``<payload>.<signature>``, both base64url: the payload is JSON claims, the signature
HMAC-SHA256 over it. Scopes:

- a **trial** token (namespace + trial) may report and read that trial only;
- a **namespace** token (trial ``*``) may read and delete trials recorded in its namespace;
- an **admin** token (namespace ``*``) may do anything (controllers, the UI).

Several secrets may be configured: the first signs, all verify; dropping an old secret revokes
every token it signed. Pure functions: the caller supplies secrets and the clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets as _secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from katib_core.enums import StrEnum
from katib_core.errors import PermissionDeniedError, UnauthenticatedError

ANY: Final = "*"
#: Env var carrying a trial's token, and the gRPC metadata key the token travels in.
TOKEN_ENV: Final = "KATIB_TRIAL_TOKEN"
METADATA_KEY: Final = "authorization"
#: Key of a trial's token in its Secret (``trial_secret_name``), read by env ``KATIB_TRIAL_TOKEN``.
SECRET_TOKEN_KEY: Final = "token"
_SECRET_SUFFIX: Final = "-push-token"
_MAX_NAME: Final = 253
_VERSION: Final = 1
_MIN_SECRET_BYTES: Final = 16


class Action(StrEnum):
    REPORT = "report"
    READ = "read"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Claims:
    """What a token grants: ``namespace``/``trial`` (``*`` = any) until ``expires_at`` (Unix s)."""

    namespace: str
    trial: str
    expires_at: int
    nonce: str = ""

    @property
    def is_admin(self) -> bool:
        return self.namespace == ANY


def mint(secret: bytes, claims: Claims) -> str:
    """Sign ``claims`` with ``secret``; a fresh random nonce makes every token unique."""
    _check_secret(secret)
    body = {
        "v": _VERSION,
        "ns": claims.namespace,
        "trial": claims.trial,
        "exp": claims.expires_at,
        "nonce": claims.nonce or _secrets.token_hex(8),
    }
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64(_sign(secret, payload))}"


def verify(token: str, secrets: Sequence[bytes], *, now: float) -> Claims:
    """Return the claims of a genuine, unexpired token.

    Raises:
        UnauthenticatedError: malformed, signed by none of ``secrets``, or expired.
    """
    if not secrets:
        raise UnauthenticatedError("no push secret is configured")
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature:
        raise UnauthenticatedError("the token is malformed (expected <payload>.<signature>)")
    try:
        given = _unb64(signature)
    except ValueError:
        raise UnauthenticatedError("the token's signature is not base64url") from None
    if not any(hmac.compare_digest(_sign(secret, payload), given) for secret in secrets):
        raise UnauthenticatedError("the token's signature does not match (forged, or signed with a retired secret)")
    try:
        body = json.loads(_unb64(payload))
        claims = Claims(str(body["ns"]), str(body["trial"]), int(body["exp"]), str(body.get("nonce", "")))
        version = int(body["v"])
    except (ValueError, KeyError, TypeError):
        raise UnauthenticatedError("the token's claims are malformed") from None
    if version != _VERSION:
        raise UnauthenticatedError(f"token version {version} is not supported")
    if claims.expires_at <= now:
        raise UnauthenticatedError(f"the token expired at {claims.expires_at} (Unix time)")
    return claims


def authorize(claims: Claims, action: Action, trial: str, *, trial_namespace: str | None) -> None:
    """Allow ``action`` on ``trial`` (recorded in ``trial_namespace``, None if unknown) or raise.

    Raises:
        PermissionDeniedError: the token covers another trial or namespace, or a trial token
            was used to delete.
    """
    if claims.is_admin:
        return
    if claims.trial != ANY:
        if action == Action.DELETE:
            raise PermissionDeniedError("a trial token cannot delete metrics")
        if claims.trial != trial:
            raise PermissionDeniedError(f"the token is for trial {claims.namespace}/{claims.trial}, not {trial!r}")
        if trial_namespace is not None and trial_namespace != claims.namespace:
            raise PermissionDeniedError(f"trial {trial!r} belongs to namespace {trial_namespace!r}")
        return
    if action == Action.REPORT:
        raise PermissionDeniedError("a namespace token cannot report metrics; use the trial's own token")
    if trial_namespace != claims.namespace:
        owner = "an unknown namespace" if trial_namespace is None else f"namespace {trial_namespace!r}"
        raise PermissionDeniedError(f"trial {trial!r} belongs to {owner}, the token to {claims.namespace!r}")


def new_secret() -> str:
    """A fresh signing secret: 32 random bytes as 64 hex digits (one line of a secret file)."""
    return _secrets.token_hex(32)


def trial_secret_name(trial: str) -> str:
    """The Secret holding ``trial``'s token (``<trial>-push-token``; hashed down if too long for a name)."""
    name = trial + _SECRET_SUFFIX
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(trial.encode()).hexdigest()[:10]
    return f"{trial[: _MAX_NAME - len(_SECRET_SUFFIX) - 11]}-{digest}{_SECRET_SUFFIX}"


def bearer(metadata: Sequence[tuple[str, str]]) -> str | None:
    """The token of an ``authorization: Bearer <token>`` metadata entry, if any."""
    for key, value in metadata:
        if key == METADATA_KEY and value.startswith("Bearer "):
            return value[len("Bearer ") :].strip()
    return None


def parse_secrets(text: str) -> list[bytes]:
    """Secrets from a file's text: one per line, blank lines and ``#`` comments ignored.

    Raises:
        ValueError: a secret shorter than 16 bytes, or none at all.
    """
    found = [line.strip().encode() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not found:
        raise ValueError("the push secret file holds no secret")
    for secret in found:
        _check_secret(secret)
    return found


def _check_secret(secret: bytes) -> None:
    if len(secret) < _MIN_SECRET_BYTES:
        raise ValueError(f"a push secret must be at least {_MIN_SECRET_BYTES} bytes long")


def _sign(secret: bytes, payload: str) -> bytes:
    return hmac.new(secret, payload.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None
