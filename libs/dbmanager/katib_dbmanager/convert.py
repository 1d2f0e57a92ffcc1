"""Conversions between the ``api.v1.beta1`` wire messages and core types (server side)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

from katib_api.v1beta1 import api_pb2
from katib_core import observations, timestamps
from katib_core.errors import ValidationError
from katib_core.observations import MetricPoint, Report
from katib_dbmanager.storage import Query


def report_from_request(request: api_pb2.ReportObservationLogRequest, *, key: str | None) -> Report:
    """Validate a ReportObservationLogRequest into a Report (ValidationError names the field)."""
    if not request.HasField("observation_log"):
        raise ValidationError("observation_log", "is required (send an empty ObservationLog to report nothing)")
    logs = request.observation_log.metric_logs
    for index, log in enumerate(logs):
        if log.time_stamp and not log.HasField("metric"):
            raise ValidationError(f"observation_log.metric_logs[{index}].metric", "is required")
    return observations.build_report(
        request.trial_name, ((log.time_stamp, log.metric.name, log.metric.value) for log in logs), key=key
    )


def query_from_request(request: api_pb2.GetObservationLogRequest) -> Query:
    """Turn a GetObservationLogRequest into a Query; bad time bounds raise ValidationError."""
    start = timestamps.parse(request.start_time, field="start_time") if request.start_time else None
    end = timestamps.parse(request.end_time, field="end_time") if request.end_time else None
    return Query(request.trial_name, request.metric_name, start, end)


def reply_from_points(points: Sequence[MetricPoint]) -> api_pb2.GetObservationLogReply:
    """Build the reply; the observation_log is always present, even when empty."""
    reply = api_pb2.GetObservationLogReply()
    reply.observation_log.SetInParent()
    logs = reply.observation_log.metric_logs
    for point in points:
        log = logs.add()
        log.time_stamp = _format(point.time)
        log.metric.name = point.name
        log.metric.value = point.value
    return reply


@functools.lru_cache(maxsize=4096)
def _format(moment: datetime) -> str:
    # Rows of one report share a timestamp; caching the text keeps large replies cheap.
    return timestamps.format_nano(moment)
