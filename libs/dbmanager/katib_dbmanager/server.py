"""Assembles the gRPC server: DBManager, health and reflection on one port.

The server is ``grpc.aio`` on an event loop of its own thread: RPCs wait for group commits
without holding a thread each (measured ~1.3x the throughput of the threaded server for small
reports). ``DBManagerServer`` is a plain blocking object for its callers — ``main`` (the
``katib-db-manager`` process), tests, and the SDK's local mode, which runs a DB manager
in-process on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent import futures
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from katib_api.v1beta1 import api_pb2
from katib_dbmanager.auth import Authenticator
from katib_dbmanager.batching import GroupCommitter
from katib_dbmanager.health import DBMANAGER_SERVICE, HealthProbe
from katib_dbmanager.servicer import DBManagerServicer
from katib_dbmanager.storage import ObservationStore
from katib_dbmanager.tls import ServerTLS

_log = logging.getLogger(__name__)

#: Requests larger than this are refused (RESOURCE_EXHAUSTED) before they are buffered: an
#: unauthenticated 256 MB request once raised the process to ~1 GB for good. Replies (reads of
#: big trials) are not limited. ``--max-message-size`` changes it (docs/dbmanager.md).
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20

#: A call whose request message has not fully arrived after this many seconds is answered
#: DEADLINE_EXCEEDED and its buffers freed (a 64 MiB request needs ~0.6 MB/s to make it).
DEFAULT_READ_TIMEOUT = 120.0


class DBManagerServer:
    """A DB manager over ``store``; ``port``/``address`` are known once ``start`` returns.

    The server owns the store from then on: ``stop`` closes it. ``reuse_port`` lets several
    worker processes share one port (``katib-db-manager --workers``); otherwise binding a
    taken port fails instead of silently sharing it.
    """

    def __init__(
        self,
        store: ObservationStore,
        *,
        listen_address: str = "127.0.0.1:0",
        writers: int = 1,
        readers: int = 8,
        health_interval: float = 2.0,
        report_key_ttl: timedelta = timedelta(hours=24),
        reuse_port: bool = False,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        authenticator: Authenticator | None = None,
        tls: ServerTLS | None = None,
    ) -> None:
        self.store = store
        self._authenticator = authenticator
        self._tls = tls
        self.listen_address = listen_address
        self.port = 0
        self.address = ""
        self._writers = writers
        self._read_timeout = read_timeout
        self._options = [
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
        self._readers = futures.ThreadPoolExecutor(max_workers=readers, thread_name_prefix="db-read")
        self._health_interval = health_interval
        self._report_key_ttl = report_key_ttl
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dbmanager-loop", daemon=True)
        self._server: grpc.aio.Server | None = None
        self.committer: GroupCommitter | None = None
        self.health: HealthProbe | None = None
        self._stopped = False

    def start(self) -> DBManagerServer:
        """Bind, probe the database, and start serving. Raises OSError if the address is taken."""
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()
        except BaseException:
            self._shutdown_loop()
            self._readers.shutdown(wait=False)
            raise
        _log.info("DB manager serving on %s", self.address)
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Finish in-flight RPCs (up to ``grace`` seconds), commit queued reports, close the store."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(grace), self._loop).result()
            if self.committer is not None:
                # From this thread: the writers settle their last futures through the loop, which
                # still runs (and an executor may refuse work during interpreter shutdown).
                self.committer.close()
            self._shutdown_loop()
        self._readers.shutdown(wait=True)
        self.store.close()

    def wait(self) -> None:
        """Block until the server stops."""
        self._thread.join()

    def __enter__(self) -> DBManagerServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    async def _start(self) -> None:
        self.health = HealthProbe(
            self.store, executor=self._readers, interval=self._health_interval, report_key_ttl=self._report_key_ttl
        )
        self.committer = GroupCommitter(
            self.store, self._loop, writers=self._writers, on_unavailable=self.health.mark_unavailable
        )
        server = grpc.aio.server(options=self._options)
        servicer = DBManagerServicer(
            store=self.store, committer=self.committer, readers=self._readers, authenticator=self._authenticator
        )
        _add_dbmanager(servicer, server, self._read_timeout)
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, server)
        service_names = (
            api_pb2.DESCRIPTOR.services_by_name["DBManager"].full_name,
            health.SERVICE_NAME,
            reflection.SERVICE_NAME,
        )
        assert service_names[0] == DBMANAGER_SERVICE
        reflection.enable_server_reflection(service_names, server)
        try:
            if self._tls is None:
                self.port = server.add_insecure_port(self.listen_address)
            else:
                self.port = server.add_secure_port(self.listen_address, self._tls.credentials())
        except RuntimeError as exc:
            reason = str(exc)
        else:
            reason = "the address is in use or not local"
        if not self.port:
            self.committer.close()
            raise OSError(f"cannot listen on {self.listen_address}: {reason}")
        host = self.listen_address.rsplit(":", 1)[0]
        self.address = f"{'127.0.0.1' if host in ('0.0.0.0', '[::]', '') else host}:{self.port}"
        await self.health.start()
        await server.start()
        self._server = server

    async def _stop(self, grace: float) -> None:
        if self.health is not None:
            await self.health.stop()
        if self._server is not None:
            await self._server.stop(grace)

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def _add_dbmanager(servicer: DBManagerServicer, server: grpc.aio.Server, read_timeout: float) -> None:
    """Register the DBManager RPCs as request-streaming handlers that parse requests themselves.

    The wire is the same as a unary call's, but grpcio's own unary path never answers a call
    whose request message is missing or cut short (no DATA, a short length prefix, a body
    shorter than its prefix): it drops the call unanswered and its memory stays held until the
    client goes away. Reading the request ourselves lets every such call end with
    INVALID_ARGUMENT, and a request that has not arrived after ``read_timeout`` seconds with
    DEADLINE_EXCEEDED. Parsing here also turns an undecodable request into INVALID_ARGUMENT
    naming the expected message (grpc's deserializer answers INTERNAL).
    """
    methods: dict[str, tuple[Callable[..., Awaitable[Message]], type[Message]]] = {
        "ReportObservationLog": (servicer.ReportObservationLog, api_pb2.ReportObservationLogRequest),
        "GetObservationLog": (servicer.GetObservationLog, api_pb2.GetObservationLogRequest),
        "DeleteObservationLog": (servicer.DeleteObservationLog, api_pb2.DeleteObservationLogRequest),
    }
    handlers = {
        name: grpc.stream_unary_rpc_method_handler(
            _parsing(method, request_type, read_timeout), response_serializer=_serialize
        )
        for name, (method, request_type) in methods.items()
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(DBMANAGER_SERVICE, handlers),))


def _parsing(method: Callable[..., Awaitable[Message]], request_type: type[Message], read_timeout: float) -> Any:
    name = request_type.DESCRIPTOR.full_name

    async def handle(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> Message:
        try:
            raw = await asyncio.wait_for(_one_message(requests), read_timeout)
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"no complete {name} arrived within {read_timeout:g} s"
            )
        if raw is None:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the call carried no complete {name} (missing, or cut short: a length prefix of fewer than"
                " 5 bytes or a body shorter than its prefix)",
            )
            raise AssertionError("abort raises")
        try:
            request = request_type.FromString(raw)
        except DecodeError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {name}: {exc}")
        return await method(request, context)

    return handle


async def _one_message(requests: AsyncIterator[bytes]) -> bytes | None:
    """The call's only message; None if none arrived complete (a second one is read and dropped)."""
    async for raw in requests:
        return raw
    return None


def _serialize(reply: Message) -> bytes:
    return reply.SerializeToString()
