"""A webhook server in a background thread, for tests and benchmarks: ``with serving(...) as server:``."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from katib_webhook import certificates
from katib_webhook.admission import Admission
from katib_webhook.monitoring import Monitor
from katib_webhook.server import WebhookServer
from katib_webhook.settings import TlsSettings


@contextlib.contextmanager
def serving(admission: Admission, tls: TlsSettings, *, monitor: Monitor | None = None) -> Iterator[WebhookServer]:
    """Serve ``admission`` on 127.0.0.1 (a free port: ``server.port``) with the certificate of ``tls``."""
    context = certificates.server_context(tls)
    server = WebhookServer(
        admission,
        host="127.0.0.1",
        port=0,
        ssl_context=context,
        monitor=monitor or Monitor(),
        reloader=certificates.CertificateReloader(context, tls),
        reload_interval=tls.reload_interval,
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="webhook-loop", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
