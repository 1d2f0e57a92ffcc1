"""The DB manager as the experiment and trial loops see it (``katib_core.trial_loop.MetricLogPort``):
read a trial's rows, store its sentinel, delete its logs. The trial controller and local mode share it.

DB-manager failures become ``StorageUnavailableError`` (unreachable, timed out: retried) or
``StorageError``; either way the reconcile stops before writing status, so an outage delays
status and never corrupts it.
"""

from __future__ import annotations

from katib_core import aggregation
from katib_core.errors import StorageError, StorageUnavailableError
from pykatib import dbmanager


class MetricLogs:
    """``GetObservationLog`` / ``ReportObservationLog`` / ``DeleteObservationLog`` with a per-call timeout."""

    def __init__(self, client: dbmanager.DBManagerClient, *, timeout: float = 10.0) -> None:
        self._client = client
        self._timeout = timeout

    def rows(self, trial_name: str) -> list[aggregation.Row]:
        """Every metric log of the trial in time order (one RPC for all metrics; we filter by strategy)."""
        try:
            logs = self._client.get(trial_name, timeout=self._timeout)
        except dbmanager.RpcError as exc:
            raise _error(exc, f"GetObservationLog({trial_name})") from None
        return [(log.time_stamp, log.metric.name, log.metric.value) for log in logs]

    def report(self, trial_name: str, row: aggregation.Row, *, key: str | None = None) -> None:
        """Store one row; ``key`` makes retries idempotent on our DB manager (Katib's ignores it)."""
        self.report_rows(trial_name, [row], key=key)

    def report_rows(self, trial_name: str, rows: list[aggregation.Row], *, key: str | None = None) -> None:
        """Store ``rows`` in one call (a pull collector's whole parse), idempotent under ``key``."""
        try:
            self._client.report(
                trial_name,
                [dbmanager.encode_metric_log(stamp, name, value) for stamp, name, value in rows],
                key=key or dbmanager.new_report_key(),
                timeout=self._timeout,
            )
        except dbmanager.RpcError as exc:
            raise _error(exc, f"ReportObservationLog({trial_name})") from None

    def values(self, trial_name: str, metric: str) -> list[str]:
        """The trial's values of ``metric`` in report order (medianstop reads succeeded trials')."""
        try:
            logs = self._client.get(trial_name, metric_name=metric, timeout=self._timeout)
        except dbmanager.RpcError as exc:
            raise _error(exc, f"GetObservationLog({trial_name}, {metric})") from None
        return [log.metric.value for log in logs]

    def delete(self, trial_name: str) -> None:
        try:
            self._client.delete(trial_name, timeout=self._timeout)
        except dbmanager.RpcError as exc:
            raise _error(exc, f"DeleteObservationLog({trial_name})") from None


#: Worth a retry: the DB manager is restarting or unreachable, or the call ran out of time.
_TRANSIENT = frozenset({dbmanager.StatusCode.UNAVAILABLE, dbmanager.StatusCode.DEADLINE_EXCEEDED})


def _error(exc: dbmanager.RpcError, what: str) -> StorageError:
    if exc.code in _TRANSIENT:
        return StorageUnavailableError(f"{what}: the DB manager is unavailable: {exc}")
    return StorageError(f"{what}: {exc}")
