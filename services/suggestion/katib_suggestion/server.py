"""The gRPC server: Suggestion, EarlyStopping, health and reflection on one port.

A threaded server: the algorithms are CPU-bound and ``Suggester`` serialises its studies under one
lock, so threads only keep health checks and validations answering while a batch is sampled.
Health answers SERVING for the empty name (kubelet's gRPC probe), for Katib's readiness service
name ``manager.v1beta1.Suggestion`` (what Katib's suggestion Deployments probe) and for both
``api.v1.beta1`` services.
"""

from __future__ import annotations

import logging
from concurrent import futures
from typing import Final

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from katib_api.v1beta1 import api_pb2, api_pb2_grpc
from katib_suggest import Suggester
from katib_suggestion.servicer import EarlyStoppingServicer, SuggestionServicer
from katib_suggestion.trial_status import TrialStatusWriter

_log = logging.getLogger(__name__)
SUGGESTION_SERVICE: Final = api_pb2.DESCRIPTOR.services_by_name["Suggestion"].full_name
EARLY_STOPPING_SERVICE: Final = api_pb2.DESCRIPTOR.services_by_name["EarlyStopping"].full_name
#: The service name Katib's suggestion Deployments' gRPC probes ask for.
KATIB_PROBE_SERVICE: Final = "manager.v1beta1.Suggestion"
HEALTH_NAMES: Final = ("", KATIB_PROBE_SERVICE, SUGGESTION_SERVICE, EARLY_STOPPING_SERVICE)


class SuggestionServer:
    """Serves on ``listen_address``; ``port``/``address`` are known once ``start`` returns."""

    def __init__(
        self,
        *,
        listen_address: str = "127.0.0.1:0",
        suggester: Suggester | None = None,
        workers: int = 8,
        db_timeout: float = 10.0,
        max_message_bytes: int = 64 << 20,
        trial_status: TrialStatusWriter | None = None,
    ) -> None:
        self.listen_address = listen_address
        self.port = 0
        self.address = ""
        self.suggester = suggester or Suggester()
        self.health = health.HealthServicer()
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="suggest"),
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", -1),
            ],
        )
        api_pb2_grpc.add_SuggestionServicer_to_server(SuggestionServicer(self.suggester), self._server)
        api_pb2_grpc.add_EarlyStoppingServicer_to_server(
            EarlyStoppingServicer(db_timeout=db_timeout, trial_status=trial_status), self._server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (SUGGESTION_SERVICE, EARLY_STOPPING_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )

    def start(self) -> SuggestionServer:
        """Bind and serve. Raises OSError if the address is taken or not local."""
        try:
            self.port = self._server.add_insecure_port(self.listen_address)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {self.listen_address}: {exc}") from None
        if not self.port:
            raise OSError(f"cannot listen on {self.listen_address}: the address is in use or not local")
        host = self.listen_address.rsplit(":", 1)[0]
        self.address = f"{'127.0.0.1' if host in ('0.0.0.0', '[::]', '') else host}:{self.port}"
        self._server.start()
        for name in HEALTH_NAMES:
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        _log.info("suggestion service serving on %s", self.address)
        return self

    def stop(self, grace: float = 5.0) -> None:
        """NOT_SERVING to every watcher, then finish in-flight calls (up to ``grace`` seconds)."""
        self.health.enter_graceful_shutdown()
        self._server.stop(grace).wait()

    def __enter__(self) -> SuggestionServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
