"""Push authentication for the DB manager (off unless ``--auth-secret-file`` is given).

The secret file (a mounted Kubernetes Secret, say) holds one secret per line: the first signs,
all verify (katib_core.push_auth). It is re-read when it changes, so rotating a secret needs no
restart: add the new secret first, let tokens signed by the old one expire, then remove it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from katib_core import push_auth
from katib_core.errors import UnauthenticatedError
from katib_core.push_auth import Claims
from katib_pushauth.secret_file import SecretFile


class Authenticator:
    """Verifies bearer tokens against the secrets in ``path`` (katib_pushauth.secret_file.SecretFile).

    Raises:
        ValueError: (at construction) the file is missing or holds no valid secret.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._secrets = SecretFile(path)
        self._clock = clock

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
        return push_auth.verify(token, self._secrets.secrets(), now=self._clock())
