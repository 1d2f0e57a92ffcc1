"""The storage contract every backend of the DB manager implements.

Invariants every implementation keeps (the contract suite in ``testing.py`` checks them):

- Thread safety: any method may be called from any thread at any time.
- ``append`` is atomic for everything passed in one call: all rows are committed, or none.
- Rows are append-only and keyed by trial name alone; identical rows are all kept.
- A report whose key is stored already for its trial (in this call or an earlier one) writes
  nothing; keys are scoped to the trial, so another trial's report with the same key is stored.
- A report with a ``namespace`` records it for its trial unless one is recorded already.
- ``get`` returns rows ordered by ``(time, insertion order)``; both time bounds are inclusive.
- Returned rows are snapshots: later writes never change them.
- Times are naive UTC wall time with microsecond precision, years 1-9999.
- Failures raise ``StorageUnavailableError`` (database unreachable; retry may succeed) or
  ``StorageError`` (anything else). Nothing else escapes.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from katib_core.observations import MetricPoint, Report


@dataclass(frozen=True, slots=True)
class Query:
    """Which rows ``get`` returns: one trial, optionally one metric and a time window."""

    trial_name: str
    metric_name: str = ""
    start: datetime | None = None
    end: datetime | None = None


class ObservationStore(abc.ABC):
    """Durable storage of trial metric logs (Katib's ``observation_logs`` table)."""

    @abc.abstractmethod
    def append(self, reports: Sequence[Report]) -> list[bool]:
        """Store every report in one transaction.

        Returns:
            For each report, True if its rows were written now, False if its key was already
            stored (by an earlier call, or by an earlier report in this call) and it was skipped.

        Raises:
            StorageUnavailableError: the database could not be reached; nothing was stored.
            StorageError: the transaction failed; nothing was stored.
        """

    @abc.abstractmethod
    def get(self, query: Query) -> list[MetricPoint]:
        """Return the rows matching ``query`` in ``(time, insertion)`` order; [] if none."""

    @abc.abstractmethod
    def delete(self, trial_name: str) -> int:
        """Delete every row of ``trial_name`` (and its recorded namespace); return how many rows."""

    @abc.abstractmethod
    def trial_namespace(self, trial_name: str) -> str | None:
        """The namespace recorded with the trial's first namespaced report, or None."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Check that the database answers; raise StorageUnavailableError if it does not."""

    @abc.abstractmethod
    def purge_report_keys(self, older_than: datetime) -> int:
        """Forget idempotency keys stored before ``older_than``; return how many."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release every connection. The store is unusable afterwards."""

    def __enter__(self) -> ObservationStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
