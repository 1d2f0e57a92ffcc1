"""Group commit: reports from many concurrent RPCs share transactions.

Each RPC hands its report to ``GroupCommitter.submit`` and awaits the returned future; a writer
thread takes everything queued so far (up to a size limit), stores it with one
``ObservationStore.append`` (one transaction, one commit) and then settles every waiting
future with a single hop back into the event loop. Under load this turns hundreds of tiny
transactions into a few large ones; idle, a lone report is committed at once.

A report whose caller gave up (deadline, cancellation) is still committed: it was accepted.
A batch that fails for a reason other than an unreachable database is retried one report at
a time, so one bad report cannot fail the reports that happened to share its transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence

from katib_core.errors import StorageUnavailableError
from katib_core.observations import Report
from katib_dbmanager.storage import ObservationStore

_log = logging.getLogger(__name__)
_Item = tuple[Report, "asyncio.Future[bool]"]
_STOP = None


class GroupCommitter:
    """Commits reports submitted from ``loop`` in shared transactions on writer threads."""

    def __init__(
        self,
        store: ObservationStore,
        loop: asyncio.AbstractEventLoop,
        *,
        writers: int = 1,
        max_batch_reports: int = 512,
        max_batch_points: int = 20_000,
        on_unavailable: Callable[[StorageUnavailableError], None] | None = None,
    ) -> None:
        self._store = store
        self._loop = loop
        self._max_reports = max_batch_reports
        self._max_points = max_batch_points
        self._on_unavailable = on_unavailable
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run, name=f"group-commit-{i}", daemon=True) for i in range(writers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, report: Report) -> asyncio.Future[bool]:
        """Queue ``report`` (call from the loop); the future gets ``append``'s answer for it."""
        if self._closed:
            raise StorageUnavailableError("the DB manager is shutting down")
        future: asyncio.Future[bool] = self._loop.create_future()
        self._queue.put((report, future))
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking reports, commit everything already queued, and stop the writers."""
        if self._closed:
            return
        self._closed = True
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            points = len(first[0].points)
            stop = False
            while len(batch) < self._max_reports and points < self._max_points:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
                points += len(item[0].points)
            try:
                self._commit(batch)
            except Exception:  # never let the writer die: every later report would hang
                _log.exception("unexpected failure while committing %d reports", len(batch))
                self._settle([(future, StorageUnavailableError("internal error in the writer")) for _, future in batch])
            if stop:
                return

    def _commit(self, batch: list[_Item]) -> None:
        outcomes: list[tuple[asyncio.Future[bool], bool | BaseException]]
        try:
            written = self._store.append([report for report, _ in batch])
        except StorageUnavailableError as exc:
            if self._on_unavailable is not None:
                self._on_unavailable(exc)
            outcomes = [(future, exc) for _, future in batch]
        except Exception as exc:
            if len(batch) > 1:
                _log.warning("a batch of %d reports failed (%s); retrying them one by one", len(batch), exc)
                for item in batch:
                    self._commit([item])
                return
            _log.error("report for trial %s failed: %s", batch[0][0].trial_name, exc)
            outcomes = [(batch[0][1], exc)]
        else:
            outcomes = [(future, fresh) for (_, future), fresh in zip(batch, written, strict=True)]
        self._settle(outcomes)

    def _settle(self, outcomes: Sequence[tuple[asyncio.Future[bool], bool | BaseException]]) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self._loop.call_soon_threadsafe(_settle_in_loop, outcomes)


def _settle_in_loop(outcomes: Sequence[tuple[asyncio.Future[bool], bool | BaseException]]) -> None:
    for future, outcome in outcomes:
        if future.done():  # the caller gave up; the report was committed anyway
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
