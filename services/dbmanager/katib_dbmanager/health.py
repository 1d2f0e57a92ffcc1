"""Health that means "can serve": the standard gRPC health service, fed by database probes.

A probe thread pings the store every few seconds; while the ping fails, ``Check`` answers
NOT_SERVING for the empty service name (what kubelet probes) and for DBManager. A write that
finds the database unreachable flips the status at once instead of waiting for the next probe.
The same thread forgets idempotency keys older than their time to live.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from grpc_health.v1 import health, health_pb2

from katib_core import timestamps
from katib_core.errors import StorageError
from katib_dbmanager.storage import ObservationStore

_log = logging.getLogger(__name__)
DBMANAGER_SERVICE = "api.v1.beta1.DBManager"
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthProbe:
    """Keeps ``servicer`` in step with the store's reachability."""

    def __init__(
        self,
        store: ObservationStore,
        *,
        interval: float = 2.0,
        report_key_ttl: timedelta = timedelta(hours=24),
        purge_every: timedelta = timedelta(minutes=10),
    ) -> None:
        self.servicer = health.HealthServicer(experimental_non_blocking=True)
        self._store = store
        self._interval = interval
        self._ttl = report_key_ttl
        self._purge_every = purge_every.total_seconds()
        self._stop = threading.Event()
        self._serving: bool | None = None
        self._thread = threading.Thread(target=self._run, name="health-probe", daemon=True)

    def start(self) -> None:
        """Probe once now (so the first Check is truthful), then keep probing in the background."""
        self._probe()
        self._thread.start()

    def stop(self) -> None:
        """Stop probing and report NOT_SERVING to every watcher."""
        self._stop.set()
        self.servicer.enter_graceful_shutdown()
        if self._thread.is_alive():
            self._thread.join(5)

    def mark_unavailable(self, error: Exception) -> None:
        """Called when a write found the database unreachable."""
        self._set(False, error)

    def _run(self) -> None:
        since_purge = 0.0
        while not self._stop.wait(self._interval):
            self._probe()
            since_purge += self._interval
            if self._serving and since_purge >= self._purge_every:
                since_purge = 0.0
                self._purge()

    def _probe(self) -> None:
        try:
            self._store.ping()
        except StorageError as exc:
            self._set(False, exc)
        else:
            self._set(True, None)

    def _purge(self) -> None:
        try:
            purged = self._store.purge_report_keys(timestamps.utc_now() - self._ttl)
        except StorageError as exc:
            _log.warning("could not purge old report keys: %s", exc)
        else:
            if purged:
                _log.info("forgot %d report keys older than %s", purged, self._ttl)

    def _set(self, serving: bool, error: Exception | None) -> None:
        if serving != self._serving:
            if serving:
                _log.info("database reachable: SERVING")
            else:
                _log.warning("database unreachable, NOT_SERVING: %s", error)
        self._serving = serving
        status = _SERVING if serving else _NOT_SERVING
        for service in ("", DBMANAGER_SERVICE):
            self.servicer.set(service, status)
