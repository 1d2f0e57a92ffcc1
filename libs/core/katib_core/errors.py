"""The exception hierarchy shared by services and the SDK.

Each error also inherits the builtin that callers already catch, so ``except ValueError`` keeps
working for validation failures and ``except ConnectionError`` for an unreachable database.
Boundaries map them: storage → gRPC status (servicer) → exception (client).
"""

from __future__ import annotations


class KatibError(Exception):
    """Root of every error pykatib raises on purpose."""


class ValidationError(KatibError, ValueError):
    """Input that breaks a rule; ``field`` is the path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class NotFoundError(KatibError, LookupError):
    """A named object does not exist."""


class AlreadyExistsError(KatibError):
    """An object with that name exists already."""


class StorageError(KatibError, RuntimeError):
    """The database failed in a way a retry will not fix."""


class StorageUnavailableError(StorageError, ConnectionError):
    """The database cannot be reached now; retrying later may succeed."""


class UnauthenticatedError(KatibError, PermissionError):
    """No credential, or one that is malformed, forged, expired or signed with a retired key."""


class PermissionDeniedError(KatibError, PermissionError):
    """A valid credential that does not cover what was asked (another trial or namespace)."""
