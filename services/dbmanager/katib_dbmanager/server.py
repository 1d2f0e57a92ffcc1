"""Assembles the gRPC server: DBManager, health and reflection on one port.

Used by ``main`` (the ``katib-db-manager`` process), by tests, and by the SDK's local mode,
which runs a DB manager in-process on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import logging
from concurrent import futures
from datetime import timedelta

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from katib_api.v1beta1 import api_pb2, api_pb2_grpc
from katib_dbmanager.batching import GroupCommitter
from katib_dbmanager.health import DBMANAGER_SERVICE, HealthProbe
from katib_dbmanager.servicer import DBManagerServicer
from katib_dbmanager.storage import ObservationStore

_log = logging.getLogger(__name__)

#: Katib allows messages up to 2^31-1 bytes; -1 lifts gRPC's 4 MiB default the same way.
#: SO_REUSEPORT is off so that a second server on a taken port fails instead of sharing it.
_OPTIONS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1), ("grpc.so_reuseport", 0)]


class DBManagerServer:
    """A running DB manager over ``store``; ``port`` is the bound port (useful with port 0).

    The server owns the store from then on: ``stop`` closes it.
    """

    def __init__(
        self,
        store: ObservationStore,
        *,
        listen_address: str = "127.0.0.1:0",
        max_workers: int = 128,
        writers: int = 1,
        health_interval: float = 2.0,
        report_key_ttl: timedelta = timedelta(hours=24),
    ) -> None:
        self.store = store
        self.health = HealthProbe(store, interval=health_interval, report_key_ttl=report_key_ttl)
        self.committer = GroupCommitter(store, writers=writers, on_unavailable=self.health.mark_unavailable)
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"), options=_OPTIONS
        )
        api_pb2_grpc.add_DBManagerServicer_to_server(
            DBManagerServicer(store=store, committer=self.committer), self._server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, self._server)
        reflection.enable_server_reflection(
            (
                api_pb2.DESCRIPTOR.services_by_name["DBManager"].full_name,
                health.SERVICE_NAME,
                reflection.SERVICE_NAME,
            ),
            self._server,
        )
        assert api_pb2.DESCRIPTOR.services_by_name["DBManager"].full_name == DBMANAGER_SERVICE
        try:
            self.port = self._server.add_insecure_port(listen_address)
        except RuntimeError as exc:
            self.port = 0
            reason = str(exc)
        else:
            reason = "the address is in use or not local"
        if not self.port:
            self.committer.close()
            raise OSError(f"cannot listen on {listen_address}: {reason}")
        host = listen_address.rsplit(":", 1)[0]
        self.address = f"{'127.0.0.1' if host in ('0.0.0.0', '[::]', '') else host}:{self.port}"

    def start(self) -> DBManagerServer:
        """Probe the database, then start serving."""
        self.health.start()
        self._server.start()
        _log.info("DB manager serving on %s", self.address)
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Finish in-flight RPCs (up to ``grace`` seconds), commit queued reports, close the store."""
        self.health.stop()
        self._server.stop(grace).wait()
        self.committer.close()
        self.store.close()

    def wait(self) -> None:
        """Block until the server stops."""
        self._server.wait_for_termination()

    def __enter__(self) -> DBManagerServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
