"""``katib-webhook``: parse settings, make sure there is a certificate, serve until SIGTERM/SIGINT.

Without a certificate in ``--cert-dir`` it generates a CA and a serving certificate and (unless
``--no-patch-ca-bundle``) puts the CA into the webhook configurations, retrying until they exist.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from typing import Any

from katib_core.errors import ValidationError
from katib_webhook import certificates, kube
from katib_webhook.admission import Admission
from katib_webhook.monitoring import Monitor
from katib_webhook.server import WebhookServer
from katib_webhook.settings import Settings

_log = logging.getLogger("katib_webhook")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the webhook; return the process exit status."""
    try:
        settings = Settings.from_args(sys.argv[1:] if argv is None else argv, os.environ)
    except ValidationError as exc:
        print(f"katib-webhook: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api_client = None
    if not settings.standalone:
        try:
            api_client = kube.connect(settings.kubeconfig)
        except kube.ConfigError as exc:
            print(
                f"katib-webhook: error: no Kubernetes API ({exc}); pass --kubeconfig, or --standalone", file=sys.stderr
            )
            return 1
    try:
        ca = certificates.ensure(settings.tls)
        context = certificates.server_context(settings.tls)
    except (OSError, ssl.SSLError, ValueError) as exc:
        print(f"katib-webhook: error: certificate in {settings.tls.cert_dir}: {exc}", file=sys.stderr)
        return 1
    reader = kube.KubeReader(api_client, timeout=settings.admission.api_timeout) if api_client else None
    admission = Admission(
        settings.admission,
        reader=reader,
        convert_batch_job=kube.batch_job_round_trip(api_client or kube.offline_client()),
    )
    gc.freeze()  # what is loaded by now lives forever: keep it out of the collector's scans (tail latency)
    return asyncio.run(_serve(settings, admission, context, ca, api_client))


async def _serve(
    settings: Settings, admission: Admission, context: ssl.SSLContext, ca: bytes | None, api_client: Any
) -> int:
    monitor = Monitor()
    monitor.certificate_expiry.set(certificates.expiry(settings.tls.cert_path))
    server = WebhookServer(
        admission,
        host=settings.host,
        port=settings.port,
        ssl_context=context,
        monitor=monitor,
        reloader=certificates.CertificateReloader(context, settings.tls),
        reload_interval=settings.tls.reload_interval,
    )
    try:
        await server.start()
    except OSError as exc:
        print(f"katib-webhook: error: cannot listen on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    print(f"katib-webhook serving on https://{settings.host}:{server.port}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    patching = None
    if ca is not None and api_client is not None and settings.tls.patch_ca_bundle:
        patching = asyncio.create_task(_patch_ca_bundle(api_client, settings.tls.webhook_configurations, ca))
    await stopping.wait()
    if patching is not None:
        patching.cancel()
    await server.stop()
    return 0


async def _patch_ca_bundle(api_client: Any, names: Sequence[str], ca: bytes) -> None:
    """Put the generated CA into the configurations, retrying until all of them exist."""
    loop = asyncio.get_running_loop()
    delay = 0.5
    while True:
        try:
            missing = await loop.run_in_executor(None, kube.patch_ca_bundle, api_client, names, ca)
        except kube.API_ERRORS as exc:
            _log.warning("could not patch caBundle yet: %s", exc)
            missing = list(names)
        if not missing:
            return
        _log.info("waiting for %s to patch its caBundle", ", ".join(missing))
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)


if __name__ == "__main__":
    sys.exit(main())
