"""A small, fair, blocking connection pool shared by the SQL backends.

mysql-connector's own pool raises when exhausted instead of waiting, and SQLite has none;
one pool with the same behaviour for every backend keeps the backends interchangeable.
Waiters are served first come, first served, so a busy reader cannot starve a writer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from katib_core.errors import StorageUnavailableError

Connection = Any  # a DB-API 2 connection of whichever driver

_log = logging.getLogger(__name__)


class _Waiter:
    """A borrower queued for a connection: handed one, or the right to open one."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.conn: tuple[Connection, float] | None = None
        self.may_open = False
        self.closed = False


class Pool:
    """Up to ``size`` connections made by ``connect``; callers wait up to ``timeout`` for one."""

    def __init__(self, connect: Callable[[], Connection], *, size: int, timeout: float = 30.0) -> None:
        self._connect = connect
        self._size = size
        self._timeout = timeout
        self._idle: list[tuple[Connection, float]] = []
        self._waiters: deque[_Waiter] = deque()
        self._open = 0
        self._closed = False
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[tuple[Connection, float]]:
        """Lend a connection and the monotonic time it was last returned (0.0 if new).

        The borrower must leave it with no open transaction, or raise: a connection whose
        borrower raised is closed instead of reused, since its state is unknown.
        """
        conn, idle_since = self._take()
        try:
            yield conn, idle_since
        except BaseException:
            self._discard(conn)
            raise
        self._give_back(conn)

    def close_idle(self) -> None:
        """Close every idle connection (after one of them turned out stale)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for conn, _ in idle:
            _close_quietly(conn)

    def close(self) -> None:
        """Close idle connections now and lent ones when they come back; fail every waiter."""
        with self._lock:
            self._closed = True
            waiters, self._waiters = list(self._waiters), deque()
        for waiter in waiters:
            waiter.closed = True
            waiter.event.set()
        self.close_idle()

    def _take(self) -> tuple[Connection, float]:
        with self._lock:
            if self._closed:
                raise StorageUnavailableError("the store is closed")
            if self._idle and not self._waiters:
                return self._idle.pop()
            waiter = None
            if self._open < self._size:
                self._open += 1
            else:
                waiter = _Waiter()
                self._waiters.append(waiter)
        if waiter is not None:
            granted = self._wait(waiter)
            if granted is not None:
                return granted
        return self._open_new()

    def _wait(self, waiter: _Waiter) -> tuple[Connection, float] | None:
        """Wait for a handed-over connection (returned) or a free slot (None)."""
        if not waiter.event.wait(self._timeout):
            with self._lock:
                if not waiter.event.is_set():
                    self._waiters.remove(waiter)
                    raise StorageUnavailableError(
                        f"no database connection free after {self._timeout:.0f}s (pool size {self._size})"
                    )
        if waiter.closed:
            raise StorageUnavailableError("the store is closed")
        return waiter.conn

    def _open_new(self) -> tuple[Connection, float]:
        try:
            return self._connect(), 0.0
        except BaseException:
            self._release_slot()
            raise

    def _give_back(self, conn: Connection) -> None:
        with self._lock:
            if not self._closed:
                if self._waiters:
                    waiter = self._waiters.popleft()
                    waiter.conn = (conn, time.monotonic())
                    waiter.event.set()
                else:
                    self._idle.append((conn, time.monotonic()))
                return
            self._open -= 1
        _close_quietly(conn)

    def _discard(self, conn: Connection) -> None:
        _close_quietly(conn)
        self._release_slot()

    def _release_slot(self) -> None:
        with self._lock:
            if self._waiters and not self._closed:
                waiter = self._waiters.popleft()
                waiter.may_open = True  # the slot passes on; ``_open`` stays the same
                waiter.event.set()
            else:
                self._open -= 1


def _close_quietly(conn: Connection) -> None:
    try:
        conn.close()
    except Exception as exc:  # the connection is being thrown away; its close error is moot
        _log.debug("closing a discarded connection failed: %s", exc)
