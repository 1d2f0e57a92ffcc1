"""How a trial process that buffers its reports ends: every way it can end keeps or tells about its points.

Real processes, a real DB manager: exit, SIGTERM (what Kubernetes sends when it deletes a pod, and
what early stopping sends), SIGINT, and exit with the DB manager unreachable.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from katib_dbmanager.server import DBManagerServer
from pykatib.conftest import Stored

POINTS = 500
#: Buffers POINTS reports, says so, then waits to be ended (or ends by itself with "exit").
TRIAL = f"""
import signal, sys, time
import pykatib
if sys.argv[2] == "own-handler":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))
for step in range({POINTS}):
    pykatib.report_metrics({{"loss": step / 100}}, sys.argv[1], step=step, block=False, timeout=float(sys.argv[3]))
print("queued", flush=True)
if sys.argv[2] != "exit":
    time.sleep(60)
"""


def start(address: str, trial: str, mode: str, timeout: float = 30) -> subprocess.Popen[str]:
    env = {**os.environ, "KATIB_TRIAL_NAME": trial, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-c", TRIAL, address, mode, str(timeout)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "queued", process.stderr.read() if process.stderr else ""
    return process


def losses(stored: Stored, address: str, trial: str) -> int:
    return len(stored(address, trial, "loss"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_trial_pushes_its_buffered_points_before_it_dies(
    db_manager: DBManagerServer, trial: str, stored: Stored, sig: signal.Signals
) -> None:
    process = start(db_manager.address, trial, "wait")
    process.send_signal(sig)
    process.wait(60)
    assert losses(stored, db_manager.address, trial) == POINTS
    if sig == signal.SIGTERM:
        assert process.returncode == -signal.SIGTERM  # it still dies of the signal


def test_a_programs_own_sigterm_handler_is_left_alone(db_manager: DBManagerServer, trial: str, stored: Stored) -> None:
    process = start(db_manager.address, trial, "own-handler")
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 7  # its handler ran; sys.exit runs atexit, which pushes the points
    assert losses(stored, db_manager.address, trial) == POINTS


def test_a_normal_exit_pushes_everything(db_manager: DBManagerServer, trial: str, stored: Stored) -> None:
    assert start(db_manager.address, trial, "exit").wait(60) == 0
    assert losses(stored, db_manager.address, trial) == POINTS


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def test_points_that_cannot_be_pushed_make_the_exit_status_non_zero(trial: str) -> None:
    began = time.monotonic()
    process = start(closed_port(), trial, "exit", timeout=1)
    assert process.wait(60) == 3
    assert process.stderr is not None
    assert "pykatib: Unable to push buffered metrics" in process.stderr.read()
    assert time.monotonic() - began < 30


def test_a_sigterm_with_the_db_manager_down_gives_up_within_the_grace_period(trial: str, tmp_path: Path) -> None:
    process = start(closed_port(), trial, "wait", timeout=2)
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == -signal.SIGTERM
    assert time.monotonic() - began < 15  # the report's own timeout (+5 s), far inside Kubernetes' 30 s
