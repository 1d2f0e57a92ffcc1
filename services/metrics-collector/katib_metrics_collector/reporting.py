"""Sending what the collector found: one ``ReportObservationLog``, and ``SetTrialStatus`` after an early stop.

Both go over the SDK's channel (grpcio when installed, else pure-Python HTTP/2); the report is
retried with an idempotency key, so a retry never stores the rows twice.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from katib_core import timestamps
from katib_core.observations import MetricPoint
from pykatib import dbmanager


def report(channel: dbmanager.Channel, trial_name: str, rows: Sequence[MetricPoint], *, timeout: float) -> None:
    """Store ``rows`` for ``trial_name`` in one request.

    Raises:
        dbmanager.RpcError: the DB manager refused them or stayed unreachable for ``timeout`` seconds.
    """
    logs = [dbmanager.encode_metric_log(timestamps.format_nano(row.time), row.name, row.value) for row in rows]
    client = dbmanager.DBManagerClient(channel)
    client.report(trial_name, logs, key=dbmanager.new_report_key(), timeout=timeout)


def set_trial_status(channel: dbmanager.Channel, trial_name: str, *, timeout: float) -> None:
    """``EarlyStopping.SetTrialStatus``: the trial was stopped early (retried while unavailable).

    Raises:
        dbmanager.RpcError: the service refused, or stayed unreachable for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    payload = dbmanager.encode_set_trial_status(trial_name)
    delay = 0.1
    while True:
        try:
            channel.unary(dbmanager.SET_TRIAL_STATUS_METHOD, payload, timeout=max(deadline - time.monotonic(), 0.1))
            return
        except dbmanager.RpcError as exc:
            if exc.code != dbmanager.StatusCode.UNAVAILABLE or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
