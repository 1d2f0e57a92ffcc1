"""The ``api.v1.beta1.DBManager`` servicer: wire message in, one store call, wire message out.

No SQL and no rules live here. Errors map to gRPC status codes in one place (``_answer``):
bad input → INVALID_ARGUMENT naming the field, database unreachable → UNAVAILABLE, anything
else the store raises → INTERNAL, a report still queued at the caller's deadline →
DEADLINE_EXCEEDED (it will still be stored: retry with the same report key).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable
from concurrent.futures import Executor
from typing import TypeVar

import grpc

from katib_api.v1beta1 import api_pb2, api_pb2_grpc
from katib_core import push_auth
from katib_core.errors import (
    PermissionDeniedError,
    StorageError,
    StorageUnavailableError,
    UnauthenticatedError,
    ValidationError,
)
from katib_core.push_auth import Action
from katib_dbmanager import convert
from katib_dbmanager.auth import Authenticator
from katib_dbmanager.batching import GroupCommitter
from katib_dbmanager.storage import ObservationStore

_log = logging.getLogger(__name__)
T = TypeVar("T")

#: gRPC metadata carrying a report's idempotency key (see docs/dbmanager.md).
REPORT_KEY_HEADER = "pykatib-report-key"
#: ``time_remaining()`` of a call without a deadline is a huge number, too big for a timer.
_NO_DEADLINE = 10 * 365 * 24 * 3600.0


class DBManagerServicer(api_pb2_grpc.DBManagerServicer):
    """Serves Katib's DBManager RPCs from an ObservationStore (asyncio; reads run on ``readers``)."""

    def __init__(
        self,
        *,
        store: ObservationStore,
        committer: GroupCommitter,
        readers: Executor,
        authenticator: Authenticator | None = None,
    ) -> None:
        self._store = store
        self._committer = committer
        self._readers = readers
        self._auth = authenticator

    async def ReportObservationLog(  # noqa: N802 - gRPC method names are fixed by the proto
        self, request: api_pb2.ReportObservationLogRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ReportObservationLogReply:
        return await _answer(context, self._report(request, context))

    async def GetObservationLog(  # noqa: N802
        self, request: api_pb2.GetObservationLogRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.GetObservationLogReply:
        return await _answer(context, self._get(request, context))

    async def DeleteObservationLog(  # noqa: N802
        self, request: api_pb2.DeleteObservationLogRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.DeleteObservationLogReply:
        return await _answer(context, self._delete(request, context))

    async def _report(
        self, request: api_pb2.ReportObservationLogRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.ReportObservationLogReply:
        # Authentication first: an unauthenticated caller learns nothing about its request.
        claims = None if self._auth is None else self._auth.claims(context.invocation_metadata() or ())
        if claims is not None:
            # Bound to the namespace the trial's first authenticated report recorded: a token for
            # ns2/trial-a cannot write into ns1/trial-a (docs/dbmanager.md).
            namespace = None if claims.is_admin else await self._namespace_of(request.trial_name)
            push_auth.authorize(claims, Action.REPORT, request.trial_name, trial_namespace=namespace)
        report = convert.report_from_request(request, key=_report_key(context))
        if claims is not None and not claims.is_admin:  # the token vouches for the trial's namespace
            report = dataclasses.replace(report, namespace=claims.namespace)
        if report.points:
            await asyncio.wait_for(self._committer.submit(report), _deadline(context))
        return api_pb2.ReportObservationLogReply()

    async def _get(
        self, request: api_pb2.GetObservationLogRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.GetObservationLogReply:
        query = convert.query_from_request(request)
        await self._authorize(context, Action.READ, query.trial_name)
        if not query.trial_name:
            return convert.reply_from_points([])
        points = await asyncio.get_running_loop().run_in_executor(self._readers, self._store.get, query)
        return convert.reply_from_points(points)

    async def _delete(
        self, request: api_pb2.DeleteObservationLogRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.DeleteObservationLogReply:
        await self._authorize(context, Action.DELETE, request.trial_name)
        if request.trial_name:
            loop = asyncio.get_running_loop()
            deleted = await loop.run_in_executor(self._readers, self._store.delete, request.trial_name)
            _log.info("deleted %d metric logs of trial %s", deleted, request.trial_name)
        return api_pb2.DeleteObservationLogReply()

    async def _authorize(self, context: grpc.aio.ServicerContext, action: Action, trial: str) -> None:
        if self._auth is None:
            return
        claims = self._auth.claims(context.invocation_metadata() or ())  # no token: UNAUTHENTICATED, always
        if not trial:
            return  # nothing is read or deleted for an empty name
        namespace = None if claims.is_admin else await self._namespace_of(trial)
        push_auth.authorize(claims, action, trial, trial_namespace=namespace)

    async def _namespace_of(self, trial: str) -> str | None:
        if not trial:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._store.trial_namespace, trial)


async def _answer(context: grpc.aio.ServicerContext, work: Awaitable[T]) -> T:
    try:
        return await work
    except UnauthenticatedError as exc:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
    except PermissionDeniedError as exc:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
    except ValidationError as exc:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except StorageUnavailableError as exc:
        await context.abort(grpc.StatusCode.UNAVAILABLE, f"database unavailable: {exc}")
    except StorageError as exc:
        await context.abort(grpc.StatusCode.INTERNAL, f"database error: {exc}")
    except TimeoutError:
        await context.abort(
            grpc.StatusCode.DEADLINE_EXCEEDED, "not committed before the deadline; it will be, retry with the same key"
        )
    raise AssertionError("context.abort returned")


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    """Seconds until the caller's deadline, or None when it set none."""
    remaining = context.time_remaining()
    return None if remaining is None or remaining > _NO_DEADLINE else max(remaining, 0.0)


def _report_key(context: grpc.aio.ServicerContext) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == REPORT_KEY_HEADER:
            return str(value)
    return None
