"""Buffered reporting across a SIGKILL of the DB manager process: every point stored exactly once.

The packaged ``katib-db-manager`` runs as a real process (as in a cluster); it is killed with
SIGKILL while points are being pushed, then restarted on the same port and database.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from katib_testsupport.processes import DBManagerProcess, mariadb_database

import pykatib as katib
from pykatib.conftest import Stored

POINTS = 4000


@pytest.fixture(params=["sqlite", "mysql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db')}/katib.db"
        return
    name = f"pykatib_restart_{uuid.uuid4().hex[:10]}"
    mariadb_database(name)
    try:
        yield f"mysql://root@127.0.0.1:3306/{name}"
    finally:
        mariadb_database(name, drop=True)


def wait_for(what: str, condition: object, limit: float = 120) -> None:
    """Poll ``condition()`` (bounded); fail naming ``what``. Not a timing assertion: a hang guard."""
    end = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_points_survive_a_db_manager_sigkill(db_url: str, trial: str, transport: str, stored: Stored) -> None:
    first = DBManagerProcess("--db-url", db_url)
    address = first.address
    errors: list[BaseException] = []
    reported = threading.Event()

    def train() -> None:
        try:
            for step in range(POINTS):
                katib.report_metrics({"loss": step}, address, step=step, block=False)
                if step % 20 == 0:
                    time.sleep(0.002)  # a training step takes time
            # A blocking report while the server may be down: it retries until it is back.
            katib.report_metrics({"final": 1}, address, timeout=120)
        except BaseException as exc:  # handed to the test thread
            errors.append(exc)
        finally:
            reported.set()

    trainer = threading.Thread(target=train)
    trainer.start()
    second = None
    try:
        wait_for("the first points to be stored", lambda: len(stored(address, trial, "loss")) > 200)
        first.stop(signal.SIGKILL)
        time.sleep(0.5)  # points keep coming while nothing listens
        second = DBManagerProcess("--listen-address", address, "--db-url", db_url)
        assert second.address == address
        trainer.join(180)
        assert reported.is_set()
        assert errors == []
        katib.flush(120)
        losses = stored(address, trial, "loss")
        assert [log.metric.value for log in losses] == [str(step) for step in range(POINTS)]
        steps = stored(address, trial, "pykatib.step")
        assert [log.metric.value for log in steps] == [str(step) for step in range(POINTS)]
        assert [log.metric.value for log in stored(address, trial, "final")] == ["1"]
    finally:
        trainer.join(180)
        first.stop(signal.SIGKILL)
        if second is not None:
            second.stop()
