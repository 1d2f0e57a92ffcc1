"""report_metrics against real DB managers (in-process, SQLite and MariaDB), over both transports."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

import pykatib as katib
from katib_core import timestamps
from katib_dbmanager.server import DBManagerServer
from pykatib import _reporting, _wire
from pykatib._dbmanager import REPORT_KEY_HEADER, DBManagerClient
from pykatib._transport import Channel, RpcError, StatusCode, open_channel
from pykatib.conftest import Stored, serving


class Tensor:
    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return self.value

    def __str__(self) -> str:
        return f"tensor({self.value})"


def values(logs: Sequence[_wire.MetricLog]) -> list[tuple[str, str]]:
    return [(log.metric.name, log.metric.value) for log in logs]


def test_report_is_stored_with_one_microsecond_utc_timestamp(
    db_manager: DBManagerServer, trial: str, transport: str, stored: Stored
) -> None:
    katib.report_metrics({"loss": 0.01, "accuracy": 1, "lr": "0.5", "t": Tensor(0.25)}, db_manager.address)
    logs = stored(db_manager.address, trial)
    assert values(logs) == [("loss", "0.01"), ("accuracy", "1"), ("lr", "0.5"), ("t", "0.25")]
    assert len({log.time_stamp for log in logs}) == 1
    moment = timestamps.parse(logs[0].time_stamp)
    assert abs(moment - timestamps.utc_now()) < timedelta(minutes=5)


def test_calls_are_stored_in_call_order_with_increasing_times(
    db_manager: DBManagerServer, trial: str, transport: str, stored: Stored
) -> None:
    for step in range(50):
        katib.report_metrics({"loss": 1 / (step + 1)}, db_manager.address, step=step)
    logs = stored(db_manager.address, trial)
    assert values(logs) == [pair for s in range(50) for pair in (("pykatib.step", str(s)), ("loss", str(1 / (s + 1))))]
    times = [timestamps.parse(log.time_stamp) for log in logs[::2]]
    assert times == sorted(times)
    assert len(set(times)) == 50
    assert all(log.time_stamp == pair.time_stamp for log, pair in zip(logs[::2], logs[1::2], strict=True))


def test_address_comes_from_the_environment(
    db_manager: DBManagerServer, trial: str, stored: Stored, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KATIB_DB_MANAGER_ADDRESS", db_manager.address)
    katib.report_metrics({"loss": 0.5})
    assert values(stored(db_manager.address, trial)) == [("loss", "0.5")]


def test_one_channel_per_address(db_manager: DBManagerServer, trial: str) -> None:
    for _ in range(5):
        katib.report_metrics({"loss": 0.5}, db_manager.address)
    client = _reporting.dbmanager_client(db_manager.address)
    katib.report_metrics({"loss": 0.5}, db_manager.address)
    assert _reporting.dbmanager_client(db_manager.address) is client
    assert list(_reporting._process._clients) == [db_manager.address]


def test_an_empty_report_is_fine(db_manager: DBManagerServer, trial: str, transport: str, stored: Stored) -> None:
    katib.report_metrics({}, db_manager.address)
    assert stored(db_manager.address, trial) == []


def test_upstream_error_contract(
    db_manager: DBManagerServer, trial: str, monkeypatch: pytest.MonkeyPatch, stored: Stored
) -> None:
    with pytest.raises(ValueError, match=r"^Invalid value abc for metrics value\. "):
        katib.report_metrics({"loss": "abc"}, db_manager.address)
    with pytest.raises(RuntimeError) as caught:
        katib.report_metrics({"loss": 1}, "127.0.0.1:1", timeout=1)
    # Outside a pod there is no service-account namespace: "default", as the official client assumes.
    assert str(caught.value).startswith(f"Unable to push metrics to Katib DB for Trial default/{trial}. Exception: ")
    assert isinstance(caught.value.__cause__, RpcError)
    assert caught.value.__cause__.code in (StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED)
    # timeout=0: a deadline already past fails the push as upstream's gRPC call does, after the
    # values are checked; nothing is stored
    with pytest.raises(ValueError, match=r"^Invalid value abc for metrics value\. "):
        katib.report_metrics({"loss": "abc"}, db_manager.address, timeout=0)
    for timeout in (0, -1, 0.0):
        with pytest.raises(RuntimeError, match=f"^Unable to push metrics to Katib DB for Trial default/{trial}\\. "):
            katib.report_metrics({"loss": 1}, db_manager.address, timeout=timeout)
    assert stored(db_manager.address, trial) == []
    with pytest.raises(ValueError, match="^timeout must be a number of seconds, not 'soon'$"):
        katib.report_metrics({"loss": 1}, db_manager.address, timeout="soon")  # type: ignore[arg-type]
    monkeypatch.delenv("KATIB_TRIAL_NAME")
    with pytest.raises(ValueError, match="^The Trial name is not passed to environment variables$"):
        katib.report_metrics({"loss": 1}, db_manager.address)


class LosesFirstReply:
    """A channel (our own protocol) whose first report reaches the server but whose reply is lost."""

    name = "lossy"

    def __init__(self, inner: Channel) -> None:
        self.inner = inner
        self.keys: list[str] = []

    def unary(self, method: str, payload: bytes, *, timeout: float, metadata: Sequence[tuple[str, str]] = ()) -> bytes:
        self.keys += [value for name, value in metadata if name == REPORT_KEY_HEADER]
        reply: bytes = self.inner.unary(method, payload, timeout=timeout, metadata=metadata)
        if len(self.keys) == 1:
            raise RpcError(StatusCode.UNAVAILABLE, "connection reset before the reply arrived")
        return reply

    def close(self) -> None:
        self.inner.close()


def test_a_retried_report_is_stored_once(db_manager: DBManagerServer, transport: str, stored: Stored) -> None:
    channel = LosesFirstReply(open_channel(db_manager.address))
    client = DBManagerClient(channel, sleep=lambda _: None)
    log = _wire.encode_metric_log("2024-07-29T15:09:08.000001Z", "loss", "0.5")
    client.report("retried", [log], key="k" * 32, timeout=30)
    assert channel.keys == ["k" * 32, "k" * 32]
    assert values(stored(db_manager.address, "retried")) == [("loss", "0.5")]
    channel.close()


def test_reports_wait_for_a_db_manager_that_starts_late(trial: str, transport: str, stored: Stored) -> None:
    with serving("sqlite") as first:
        address = first.address
    done: list[BaseException | None] = []

    def report() -> None:
        try:
            katib.report_metrics({"loss": 0.5}, address, timeout=60)
            done.append(None)
        except BaseException as exc:  # handed to the test thread
            done.append(exc)

    reporter = threading.Thread(target=report)
    reporter.start()
    with contextlib.suppress(Exception):
        reporter.join(0.5)  # let it fail a few attempts
    with serving("sqlite", listen_address=address) as second:
        reporter.join(60)
        assert done == [None]
        assert values(stored(second.address, trial)) == [("loss", "0.5")]


def test_big_reports_and_replies(db_manager: DBManagerServer, trial: str, transport: str, stored: Stored) -> None:
    # 20,000 metrics in one call: HTTP/2 flow control both ways, one atomic report.
    metrics = {f"m{i:05d}": i for i in range(20_000)}
    katib.report_metrics(metrics, db_manager.address)
    client = _reporting.dbmanager_client(db_manager.address)
    logs = client.get(trial, timeout=60)
    assert [log.metric.name for log in logs] == list(metrics)


def test_buffered_reports_are_all_stored_in_order(
    db_manager: DBManagerServer, trial: str, transport: str, stored: Stored
) -> None:
    for step in range(3000):
        katib.report_metrics({"loss": step}, db_manager.address, step=step, block=False)
    katib.flush(60)
    logs = stored(db_manager.address, trial, "loss")
    assert [log.metric.value for log in logs] == [str(step) for step in range(3000)]
    steps = stored(db_manager.address, trial, "pykatib.step")
    assert [log.time_stamp for log in steps] == [log.time_stamp for log in logs]


def test_buffered_context_flushes_at_the_end(db_manager: DBManagerServer, trial: str, stored: Stored) -> None:
    with katib.buffered(db_manager.address) as report:
        for step in range(100):
            report({"loss": step / 100, "acc": Tensor(float(step))}, step=step)
    logs = stored(db_manager.address, trial)
    assert len(logs) == 300
    assert logs[-1].metric.value == "99.0"


def test_buffered_errors_surface_at_flush(trial: str) -> None:
    katib.report_metrics({"loss": 0.5}, "127.0.0.1:1", timeout=1, block=False)
    with pytest.raises(RuntimeError, match=r"Unable to push buffered metrics to Katib DB: 1 metric logs of Trial"):
        katib.flush(30)
    katib.flush(30)  # reported once


def test_buffered_validation_happens_in_the_call(trial: str) -> None:
    with pytest.raises(ValueError, match="Invalid value"):
        katib.report_metrics({"loss": "x"}, "127.0.0.1:1", block=False)
    with pytest.raises(ValueError, match="^step: "):
        katib.report_metrics({"loss": 1}, "127.0.0.1:1", step=-1, block=False)


def test_get_trial_metrics_through_the_client(db_manager: DBManagerServer, trial: str) -> None:
    from kubernetes import client as k8s

    configuration = k8s.Configuration()
    configuration.host = "https://127.0.0.1:1"  # never contacted: metrics come from the DB manager
    katib_client = katib.KatibClient(client_configuration=configuration, namespace="kubeflow")
    katib.report_metrics({"loss": 0.25}, db_manager.address)
    logs = katib_client.get_trial_metrics(trial, db_manager_address=db_manager.address)
    assert [(log.metric.name, log.metric.value) for log in logs] == [("loss", "0.25")]
    assert isinstance(datetime.fromisoformat(logs[0].time_stamp.replace("Z", "+00:00")), datetime)
    katib.report_metrics({"loss": 0.125, "acc": 1}, db_manager.address, step=7)
    logs = katib_client.get_trial_metrics(trial, db_manager_address=db_manager.address)
    assert sorted((log.metric.name, log.metric.value) for log in logs) == [
        ("acc", "1"),
        ("loss", "0.125"),
        ("loss", "0.25"),
    ]
    with_steps = katib_client.get_trial_metrics(trial, db_manager_address=db_manager.address, steps=True)
    assert sorted(log.metric.name for log in with_steps).count("pykatib.step") == 1
    history = katib_client.get_trial_metric_history(trial, db_manager_address=db_manager.address)
    assert {name: [(p.value, p.step) for p in points] for name, points in history.items()} == {
        "loss": [(0.25, None), (0.125, 7)],
        "acc": [(1.0, 7)],
    }
    with pytest.raises(RuntimeError, match=f"^Unable to get metrics for Trial kubeflow/{trial}. Exception: "):
        katib_client.get_trial_metrics(trial, db_manager_address="127.0.0.1:1", timeout=2)
    with pytest.raises(RuntimeError, match=f"^Unable to get metrics for Trial kubeflow/{trial}. Exception: "):
        katib_client.get_trial_metric_history(trial, db_manager_address="127.0.0.1:1", timeout=2)
