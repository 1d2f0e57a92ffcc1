"""Health that means "can serve": the standard gRPC health service, fed by database probes.

A probe task pings the store every few seconds; while the ping fails, ``Check`` answers
NOT_SERVING for the empty service name (what kubelet probes) and for DBManager. A write that
finds the database unreachable flips the status at once instead of waiting for the next probe.
The same task forgets idempotency keys older than their time to live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Executor
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
    """Keeps ``servicer`` in step with the store's reachability (runs in the server's loop)."""

    def __init__(
        self,
        store: ObservationStore,
        *,
        executor: Executor,
        interval: float = 2.0,
        report_key_ttl: timedelta = timedelta(hours=24),
        purge_every: timedelta = timedelta(minutes=10),
    ) -> None:
        self.servicer = health.aio.HealthServicer()
        self._store = store
        self._executor = executor
        self._interval = interval
        self._ttl = report_key_ttl
        self._purge_every = purge_every.total_seconds()
        self._serving: bool | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Probe once now (so the first Check is truthful), then keep probing in the background."""
        self._loop = asyncio.get_running_loop()
        await self._probe()
        self._task = asyncio.create_task(self._run(), name="health-probe")

    async def stop(self) -> None:
        """Stop probing and report NOT_SERVING to every watcher."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.servicer.enter_graceful_shutdown()

    def mark_unavailable(self, error: Exception) -> None:
        """Called from any thread when a write found the database unreachable."""
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(self._set(False, error), self._loop)

    async def _run(self) -> None:
        last_purge = time.monotonic()
        while True:
            await asyncio.sleep(self._interval)
            await self._probe()
            if self._serving and time.monotonic() - last_purge >= self._purge_every:
                last_purge = time.monotonic()
                await self._purge()

    async def _probe(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._store.ping)
        except StorageError as exc:
            await self._set(False, exc)
        else:
            await self._set(True, None)

    async def _purge(self) -> None:
        older_than = timestamps.utc_now() - self._ttl
        try:
            loop = asyncio.get_running_loop()
            purged = await loop.run_in_executor(self._executor, self._store.purge_report_keys, older_than)
        except StorageError as exc:
            _log.warning("could not purge old report keys: %s", exc)
        else:
            if purged:
                _log.info("forgot %d report keys older than %s", purged, self._ttl)

    async def _set(self, serving: bool, error: Exception | None) -> None:
        if serving != self._serving:
            if serving:
                _log.info("database reachable: SERVING")
            else:
                _log.warning("database unreachable, NOT_SERVING: %s", error)
        self._serving = serving
        status = _SERVING if serving else _NOT_SERVING
        for service in ("", DBMANAGER_SERVICE):
            await self.servicer.set(service, status)
