"""Push authentication for the DB manager (off unless ``--auth-secret-file`` is given).

The secret file (a mounted Kubernetes Secret, say) holds one secret per line: the first signs,
all verify (katib_core.push_auth). It is re-read when it changes, so rotating a secret needs no
restart: add the new secret first, let tokens signed by the old one expire, then remove it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from katib_core import push_auth
from katib_core.errors import UnauthenticatedError
from katib_core.push_auth import Claims

_log = logging.getLogger(__name__)
#: How often the secret file's modification time is looked at.
_RECHECK_SECONDS = 1.0


class Authenticator:
    """Verifies bearer tokens against the secrets in ``path``."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self._secrets: list[bytes] = []
        self._reload(force=True)

    def claims(self, metadata: Sequence[tuple[str, str]]) -> Claims:
        """The verified claims of the call's ``authorization: Bearer`` token.

        Raises:
            UnauthenticatedError: no token, or one that fails verification.
        """
        token = push_auth.bearer(metadata)
        if token is None:
            raise UnauthenticatedError(
                "this DB manager requires a push token: send 'authorization: Bearer <token>'"
                f" (pykatib reads it from env {push_auth.TOKEN_ENV})"
            )
        self._reload()
        return push_auth.verify(token, self._secrets, now=self._clock())

    def _reload(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < _RECHECK_SECONDS:
            return
        with self._lock:
            self._checked = now
            try:
                stat = os.stat(self._path)
            except OSError as exc:
                if force:
                    raise ValueError(f"cannot read the push secret file {self._path}: {exc}") from None
                _log.error("cannot read the push secret file %s (keeping the secrets in use): %s", self._path, exc)
                return
            stamp = (stat.st_mtime, stat.st_size)
            if stamp == self._stamp:
                return
            try:
                secrets = push_auth.parse_secrets(self._path.read_text())
            except (OSError, ValueError) as exc:
                if force:
                    raise ValueError(f"push secret file {self._path}: {exc}") from None
                _log.error("push secret file %s is unusable (keeping the secrets in use): %s", self._path, exc)
                return
            if self._stamp is not None:
                _log.info("push secrets reloaded from %s (%d secrets)", self._path, len(secrets))
            self._secrets, self._stamp = secrets, stamp
