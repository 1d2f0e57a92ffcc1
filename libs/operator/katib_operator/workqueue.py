"""A rate-limited, de-duplicating work queue of object keys, as client-go's workqueue.

A key added many times while it waits is processed once; a key added while a worker holds it
is processed again after ``done``; never two workers on one key. ``add_after`` schedules a key
(requeue after N seconds), ``retry`` schedules it with per-key exponential backoff, ``forget``
resets that backoff. Thread-safe; workers are plain threads (``get`` blocks).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ShutDownError(Exception):
    """The queue is shut down: the worker should exit."""


class WorkQueue(Generic[K]):
    """Keys to reconcile.

    Args:
        base_delay: the first retry's delay; each further failure doubles it, up to ``max_delay``.
        clock: monotonic seconds (injected for tests).
    """

    def __init__(
        self, *, base_delay: float = 0.05, max_delay: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiting: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}  # the earliest scheduled time of each waiting key
        self._failures: dict[K, int] = {}
        self._counter = 0
        self._cond = threading.Condition()
        self._closed = False
        self._base = base_delay
        self._max = max_delay
        self._clock = clock

    def add(self, key: K) -> None:
        with self._cond:
            self._add(key)

    def _add(self, key: K) -> None:
        if self._closed or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        """Add ``key`` once ``delay`` seconds have passed (at once if ``delay <= 0``)."""
        with self._cond:
            if delay <= 0:
                self._add(key)
                return
            if key in self._dirty and key not in self._processing:
                return  # queued already: it will be reconciled sooner than asked
            due = self._clock() + delay
            if self._due.get(key, due + 1) <= due:
                return  # scheduled at least as early already
            self._due[key] = due
            self._counter += 1
            heapq.heappush(self._waiting, (due, self._counter, key))
            self._cond.notify()

    def retry(self, key: K) -> float:
        """Schedule ``key`` after its next backoff delay; returns the delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = min(self._max, self._base * 2.0**failures)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """Reset the backoff of ``key`` (it was reconciled successfully)."""
        with self._cond:
            self._failures.pop(key, None)

    def get(self, timeout: float | None = None) -> K:
        """The next key to work on (blocks); call ``done`` with it afterwards.

        Raises:
            ShutDownError: the queue was shut down.
            TimeoutError: nothing became ready within ``timeout`` seconds.
        """
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._closed:
                    raise ShutDownError
                now = self._clock()
                while self._waiting and self._waiting[0][0] <= now:
                    due, _, key = heapq.heappop(self._waiting)
                    if self._due.get(key) == due:  # else superseded by an earlier schedule
                        del self._due[key]
                        self._add(key)
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                wait = None if not self._waiting else self._waiting[0][0] - now
                if deadline is not None:
                    left = deadline - now
                    if left <= 0:
                        raise TimeoutError
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: K) -> None:
        """The worker finished ``key``; if it was added meanwhile, it is queued again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def shut_down(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue) + len(self._due)
