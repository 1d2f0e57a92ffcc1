"""Local mode with push auth: each trial may push only its own metrics."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pykatib_local.local_test import PUSH, conditions, experiment, run
from pykatib_local.session import SECRET_FILE, LocalSession

# Pushes its own loss, then tries to write a victim trial's metrics under its own token.
FORGER = """
    import os, sys, pykatib
    pykatib.report_metrics({"loss": float(sys.argv[1])})
    os.environ["KATIB_TRIAL_NAME"] = "victim-trial"
    try:
        pykatib.report_metrics({"loss": 0.0}, timeout=5)
    except RuntimeError as exc:
        print("refused:", exc)
        sys.exit(3)
"""


def test_trials_push_with_their_token_and_cannot_write_another_trial(tmp_path: Path) -> None:
    with LocalSession(tmp_path / "work", push_auth=True) as session:
        secret = tmp_path / "work" / SECRET_FILE
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        final = run(session, experiment("honest", PUSH))
        assert "Succeeded" in conditions(final)

        forged = run(session, experiment("forger", FORGER, maxTrialCount=2, maxFailedTrialCount=0))
        trials = session.store.list_trials("default", experiment="forger")
        assert "Failed" in conditions(forged)
        failed = [t for t in trials if "Failed" in conditions(t)]
        assert failed
        message = failed[0].status.conditions[-1].message  # type: ignore[index,union-attr]
        assert "refused" in (message or "")
        assert "PERMISSION_DENIED" in (message or "")
        assert session.db.get("victim-trial", timeout=10) == []  # nothing was written for the victim


def test_without_a_token_a_push_is_unauthenticated(tmp_path: Path) -> None:
    from pykatib._dbmanager import DBManagerClient
    from pykatib._transport import RpcError, StatusCode, open_channel

    with LocalSession(tmp_path / "work", push_auth=True) as session:
        anonymous = DBManagerClient(open_channel(session.db_address), token=lambda: None)
        try:
            anonymous.get("any-trial", timeout=5)
        except RpcError as exc:
            assert exc.code == StatusCode.UNAUTHENTICATED
        else:
            raise AssertionError("an anonymous read was allowed")
        assert os.environ.get("KATIB_TRIAL_TOKEN") is None  # the test process itself holds no token
