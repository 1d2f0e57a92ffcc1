"""How a controller calls the DB manager: one channel, and with push auth an admin token of its own."""

from __future__ import annotations

import time

from katib_core.push_keys import TokenMinter
from katib_operator.settings import OperatorSettings
from katib_pushauth.secret_file import SecretFile
from pykatib import dbmanager


def push_minter(settings: OperatorSettings) -> TokenMinter | None:
    """The token minter of ``--push-auth-secret-file`` (None when push auth is off).

    Raises:
        SystemExit: the file is missing or holds no valid secret (a start-up error, with its reason).
    """
    if settings.push_auth_secret_file is None:
        return None
    try:
        return TokenMinter(SecretFile(settings.push_auth_secret_file), clock=time.time)
    except ValueError as exc:
        raise SystemExit(f"--push-auth-secret-file: {exc}") from None


def client(channel: dbmanager.Channel, minter: TokenMinter | None) -> dbmanager.DBManagerClient:
    """A client sending this controller's admin token when push auth is on, and no token otherwise.

    (Never ``KATIB_TRIAL_TOKEN`` from the environment: that is a trial's credential.)
    """
    return dbmanager.DBManagerClient(channel, token=(lambda: None) if minter is None else minter.admin_token)
