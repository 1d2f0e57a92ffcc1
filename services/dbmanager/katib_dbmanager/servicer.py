"""The ``api.v1.beta1.DBManager`` servicer: wire message in, one store call, wire message out.

No SQL and no rules live here. Errors map to gRPC status codes in one place (``_status``):
bad input → INVALID_ARGUMENT naming the field, database unreachable → UNAVAILABLE, anything
else the store raises → INTERNAL, a report still queued at the caller's deadline →
DEADLINE_EXCEEDED (it may still be stored: retry with the same report key).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
from collections.abc import Iterator
from typing import NoReturn

import grpc

from katib_api.v1beta1 import api_pb2, api_pb2_grpc
from katib_core.errors import StorageError, StorageUnavailableError, ValidationError
from katib_dbmanager import convert
from katib_dbmanager.batching import GroupCommitter
from katib_dbmanager.storage import ObservationStore

_log = logging.getLogger(__name__)

#: gRPC metadata carrying a report's idempotency key (see docs/api.md).
REPORT_KEY_HEADER = "pykatib-report-key"


class DBManagerServicer(api_pb2_grpc.DBManagerServicer):
    """Serves Katib's DBManager RPCs from an ObservationStore."""

    def __init__(self, *, store: ObservationStore, committer: GroupCommitter) -> None:
        self._store = store
        self._committer = committer

    def ReportObservationLog(  # noqa: N802 - gRPC method names are fixed by the proto
        self, request: api_pb2.ReportObservationLogRequest, context: grpc.ServicerContext
    ) -> api_pb2.ReportObservationLogReply:
        with _status(context):
            report = convert.report_from_request(request, key=_report_key(context))
            if report.points:
                future = self._committer.submit(report)
                try:
                    future.result(timeout=context.time_remaining())
                except concurrent.futures.TimeoutError:
                    _abort(
                        context, grpc.StatusCode.DEADLINE_EXCEEDED, "the report was not committed before the deadline"
                    )
        return api_pb2.ReportObservationLogReply()

    def GetObservationLog(  # noqa: N802
        self, request: api_pb2.GetObservationLogRequest, context: grpc.ServicerContext
    ) -> api_pb2.GetObservationLogReply:
        with _status(context):
            query = convert.query_from_request(request)
            points = self._store.get(query) if query.trial_name else []
            return convert.reply_from_points(points)
        raise AssertionError("unreachable")

    def DeleteObservationLog(  # noqa: N802
        self, request: api_pb2.DeleteObservationLogRequest, context: grpc.ServicerContext
    ) -> api_pb2.DeleteObservationLogReply:
        with _status(context):
            if request.trial_name:
                deleted = self._store.delete(request.trial_name)
                _log.info("deleted %d metric logs of trial %s", deleted, request.trial_name)
        return api_pb2.DeleteObservationLogReply()


def _report_key(context: grpc.ServicerContext) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == REPORT_KEY_HEADER:
            return str(value)
    return None


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("context.abort returned")


@contextlib.contextmanager
def _status(context: grpc.ServicerContext) -> Iterator[None]:
    try:
        yield
    except ValidationError as exc:
        _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except StorageUnavailableError as exc:
        _abort(context, grpc.StatusCode.UNAVAILABLE, f"database unavailable: {exc}")
    except StorageError as exc:
        _abort(context, grpc.StatusCode.INTERNAL, f"database error: {exc}")
