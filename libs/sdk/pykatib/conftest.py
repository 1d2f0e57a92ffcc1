"""Fixtures for reporting tests: real DB managers, a trial's environment, clean reporting state."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import pytest

from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.storage import testing as storage_testing
from pykatib import _reporting, _wire
from pykatib._dbmanager import DBManagerClient
from pykatib._transport import open_channel

Stored = Callable[..., list[_wire.MetricLog]]


@contextlib.contextmanager
def serving(mode: str, listen_address: str = "127.0.0.1:0") -> Iterator[DBManagerServer]:
    """An in-process DB manager on a fresh database of ``mode`` (sqlite, mysql, postgresql)."""
    with storage_testing.supply(mode) as supply:
        server = DBManagerServer(supply.open(), listen_address=listen_address).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(params=["sqlite", "mysql"], scope="module")
def db_manager(request: pytest.FixtureRequest) -> Iterator[DBManagerServer]:
    with serving(request.param) as server:
        yield server


@pytest.fixture(params=["grpcio", "h2"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PYKATIB_TRANSPORT", request.param)
    return str(request.param)


@pytest.fixture(autouse=True)
def _fresh_reporting(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets new process-wide reporting state (channels, buffer), flushed and closed after."""
    state = _reporting._Process()
    monkeypatch.setattr(_reporting, "_process", state)
    monkeypatch.delenv("KATIB_DB_MANAGER_ADDRESS", raising=False)
    yield
    with contextlib.suppress(RuntimeError):
        state.flush(10)
    state.close()


@pytest.fixture()
def trial(monkeypatch: pytest.MonkeyPatch) -> str:
    """What the pod webhook gives a trial: KATIB_TRIAL_NAME."""
    name = f"trial-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("KATIB_TRIAL_NAME", name)
    return name


@pytest.fixture()
def stored() -> Stored:
    """``stored(address, trial, metric="")``: the trial's metric logs, read over a fresh channel."""

    def read(address: str, trial: str, metric: str = "") -> list[_wire.MetricLog]:
        with contextlib.closing(open_channel(address, "grpcio")) as channel:
            return DBManagerClient(channel).get(trial, metric, timeout=30)

    return read
