"""Buffered reporting: ``report_metrics(..., block=False)`` queues, one thread delivers in batches.

The caller's cost is a validation, a timestamp and a deque append. The sender thread wakes on the
first queued point, lingers briefly so that more points join, then sends consecutive points of
one trial as one report (≤ 10,000 metric logs, within Katib's MySQL limit), each with a fresh
idempotency key that every retry of that report reuses. ``flush`` waits for everything queued
before it; at interpreter exit the process-wide sender is flushed (atexit).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

from pykatib import _metrics, _wire
from pykatib._dbmanager import DBManagerClient, new_report_key

_log = logging.getLogger(__name__)

MAX_LOGS_PER_REPORT = 10_000


@dataclass(frozen=True)
class Point:
    """The metrics of one ``report_metrics`` call, waiting to be sent."""

    __slots__ = (
        "address",
        "trial_name",
        "micros",
        "pairs",
        "timeout",
    )  # dataclass(slots=True) needs 3.10; the trial path runs on 3.8

    address: str
    trial_name: str
    micros: int
    pairs: tuple[tuple[str, str], ...]
    timeout: float


_Item = Union[Point, threading.Event]  # an Event marks a flush (typing.Union: runs on 3.8)


class BufferedSender:
    """Queue of points and the daemon thread that delivers them to the DB manager(s)."""

    def __init__(self, clients: Callable[[str], DBManagerClient], *, linger: float = 0.02) -> None:
        self._clients = clients
        self._linger = linger
        self._queue: deque[_Item] = deque()
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failures: list[str] = []
        self.longest_timeout = 0.0

    def submit(self, point: Point) -> None:
        """Queue ``point``; returns at once."""
        self._queue.append(point)
        if point.timeout > self.longest_timeout:
            self.longest_timeout = point.timeout
        if self._thread is None:
            self._start()
        if not self._wake.is_set():
            self._wake.set()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every point queued before this call is stored or given up on.

        Raises:
            RuntimeError: points were dropped (their report failed for its whole timeout), or
                ``timeout`` passed first.
        """
        marker = threading.Event()
        self._queue.append(marker)
        if self._thread is None:
            self._start()
        self._urgent.set()
        self._wake.set()
        if not marker.wait(timeout):
            raise RuntimeError(f"Buffered metrics were not all pushed to Katib DB within {timeout:g} s")
        failures, self._failures = self._failures, []
        if failures:
            raise RuntimeError("Unable to push buffered metrics to Katib DB: " + "; ".join(failures))

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pykatib-report-metrics", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if not self._urgent.is_set():
                self._urgent.wait(self._linger)  # let more points join this batch
            self._wake.clear()
            self._urgent.clear()
            self._drain()

    def _drain(self) -> None:
        group: list[Point] = []
        logs = 0
        while self._queue:
            item = self._queue.popleft()
            if isinstance(item, threading.Event):
                self._deliver(group)
                group, logs = [], 0
                item.set()
                continue
            if group and (
                (item.address, item.trial_name, item.timeout)
                != (group[0].address, group[0].trial_name, group[0].timeout)
                or logs + len(item.pairs) > MAX_LOGS_PER_REPORT
            ):
                self._deliver(group)
                group, logs = [], 0
            group.append(item)
            logs += len(item.pairs)
        self._deliver(group)

    def _deliver(self, group: list[Point]) -> None:
        if not group:
            return
        first = group[0]
        encoded: list[bytes] = []
        for point in group:
            stamp = _metrics.format_micros(point.micros)
            encoded.extend(_wire.encode_metric_log(stamp, name, value) for name, value in point.pairs)
        try:
            self._clients(first.address).report(first.trial_name, encoded, key=new_report_key(), timeout=first.timeout)
        except Exception as exc:  # recorded for flush(); the thread must keep serving later points
            what = f"{len(encoded)} metric logs of Trial {first.trial_name} to {first.address}: {exc}"
            _log.error("dropped %s", what)
            self._failures.append(what)
