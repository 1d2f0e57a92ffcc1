"""The SDK's DB manager client, for pykatib's own components (the pull-mode metrics collector).

One channel per process (``open_channel``: grpcio when importable, else pure-Python HTTP/2),
``DBManagerClient.report`` retried with an idempotency key, messages encoded by hand (no protobuf).
"""

from __future__ import annotations

from pykatib import _wire
from pykatib._dbmanager import DBManagerClient, new_report_key
from pykatib._transport import Channel, RpcError, StatusCode, open_channel
from pykatib._wire import MetricLog, encode_metric_log

#: ``api.v1.beta1.EarlyStopping/SetTrialStatus``: tells the early-stopping service a trial stopped early.
SET_TRIAL_STATUS_METHOD = "/api.v1.beta1.EarlyStopping/SetTrialStatus"


def encode_set_trial_status(trial_name: str) -> bytes:
    """``SetTrialStatusRequest{trial_name = 1}`` (the same bytes as a request naming only the trial)."""
    return _wire.encode_delete(trial_name)


__all__ = [
    "SET_TRIAL_STATUS_METHOD",
    "Channel",
    "DBManagerClient",
    "MetricLog",
    "RpcError",
    "StatusCode",
    "encode_metric_log",
    "encode_set_trial_status",
    "new_report_key",
    "open_channel",
]
