"""Push secrets kept in a file (katib_core.push_auth parses them and does the crypto).

The DB manager verifies with every secret of the file; the controllers and the local runner
sign with its first one (katib_core.push_keys.TokenMinter). The file (a mounted Kubernetes
Secret, typically) is re-read when it changes, so rotating needs no restart: put the new secret
first, keep the old one below it until the tokens it signed have expired, then remove it.

This is the one place that reads the file; a broken rewrite keeps the secrets already in use.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Final

from katib_core import push_auth

_log = logging.getLogger(__name__)
#: How often the file's modification time is looked at.
RECHECK_SECONDS: Final = 1.0


class SecretFile:
    """The secrets in ``path``: one per line, the first signs, all verify.

    Raises:
        ValueError: (at construction) the file is missing, unreadable or holds no valid secret.
    """

    def __init__(self, path: Path | str, *, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.path = Path(path)
        self._recheck = recheck_seconds
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self._secrets: list[bytes] = []
        self._reload(force=True)

    def secrets(self) -> list[bytes]:
        """Every secret, the signing one first (re-read if the file changed since the last look)."""
        self._reload()
        return self._secrets

    def signing(self) -> bytes:
        """The secret new tokens are signed with."""
        return self.secrets()[0]

    def _reload(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self._recheck:
            return
        with self._lock:
            self._checked = now
            try:
                stat = os.stat(self.path)
            except OSError as exc:
                if force:
                    raise ValueError(f"cannot read the push secret file {self.path}: {exc}") from None
                _log.error("cannot read the push secret file %s (keeping the secrets in use): %s", self.path, exc)
                return
            stamp = (stat.st_mtime, stat.st_size)
            if stamp == self._stamp:
                return
            try:
                secrets = push_auth.parse_secrets(self.path.read_text())
            except (OSError, ValueError) as exc:
                if force:
                    raise ValueError(f"push secret file {self.path}: {exc}") from None
                _log.error("push secret file %s is unusable (keeping the secrets in use): %s", self.path, exc)
                return
            if self._stamp is not None:
                _log.info("push secrets reloaded from %s (%d secrets)", self.path, len(secrets))
            self._secrets, self._stamp = secrets, stamp
