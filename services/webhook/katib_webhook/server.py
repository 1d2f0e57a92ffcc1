"""HTTPS for the admission webhooks (aiohttp): routes, TLS, certificate reloads.

``POST /mutate-experiment``, ``/validate-experiment``, ``/mutate-pod`` hand the body to
``admission.Admission`` and return its AdmissionReview (HTTP 200 even for a denial or a malformed
body); ``GET /healthz`` says the server answers; ``GET /metrics`` is Prometheus' text format.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time

from aiohttp import web

from katib_webhook import admission as admission_module
from katib_webhook.admission import Admission
from katib_webhook.certificates import CertificateReloader
from katib_webhook.monitoring import Monitor

_log = logging.getLogger(__name__)
#: Kubernetes objects are at most ~1.5 MiB in etcd; an AdmissionReview holds two of them.
MAX_BODY = 8 * 1024 * 1024


def build_app(admission: Admission, monitor: Monitor) -> web.Application:
    """The aiohttp application serving ``admission`` and ``monitor``."""

    async def review(request: web.Request) -> web.Response:
        began = time.perf_counter()
        try:
            body: bytes | None = await request.read()
        except web.HTTPRequestEntityTooLarge:
            body = None
        answer = await admission.review(request.path, body)
        verdict = answer["response"]
        monitor.observe(
            request.path,
            time.perf_counter() - began,
            allowed=bool(verdict.get("allowed")),
            patched="patch" in verdict,
        )
        return web.Response(body=json.dumps(answer, separators=(",", ":")).encode(), content_type="application/json")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=monitor.exposition(), headers={"Content-Type": monitor.content_type})

    app = web.Application(client_max_size=MAX_BODY)
    for path in admission_module.PATHS:
        app.router.add_post(path, review)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


class WebhookServer:
    """Serves ``build_app(...)`` over TLS on ``host:port`` (0: any free port, read ``port`` after ``start``)."""

    def __init__(
        self,
        admission: Admission,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        monitor: Monitor,
        reloader: CertificateReloader | None = None,
        reload_interval: float = 10.0,
        shutdown_grace: float = 5.0,
    ) -> None:
        self.port = port
        self._host = host
        self._ssl = ssl_context
        self._monitor = monitor
        self._runner = web.AppRunner(build_app(admission, monitor), access_log=None, shutdown_timeout=shutdown_grace)
        self._reloader = reloader
        self._reload_interval = reload_interval
        self._reload_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind and serve. Raises OSError if the address is taken."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self.port, ssl_context=self._ssl, backlog=1024)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]
        if self._reloader is not None:
            self._reload_task = asyncio.create_task(self._watch_certificate(self._reloader))

    async def stop(self) -> None:
        """Stop accepting; let requests in flight finish (up to ``shutdown_grace`` seconds)."""
        if self._reload_task is not None:
            self._reload_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reload_task
        await self._runner.cleanup()

    async def _watch_certificate(self, reloader: CertificateReloader) -> None:
        while True:
            await asyncio.sleep(self._reload_interval)
            result = reloader.check()
            if result is not None:
                self._monitor.certificate_reloads.labels("loaded" if result else "failed").inc()
