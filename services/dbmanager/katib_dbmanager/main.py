"""``katib-db-manager``: parse settings, wait for the database, serve until SIGTERM/SIGINT.

With ``--workers N`` (N > 1) this process supervises N server processes that share the port
(SO_REUSEPORT): Python serves one core per process, so this is how the DB manager scales
across cores. A worker that dies is restarted; SIGTERM stops them all gracefully.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import resource
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from types import FrameType

from katib_core.errors import StorageError, StorageUnavailableError, ValidationError
from katib_dbmanager import _native
from katib_dbmanager.auth import Authenticator
from katib_dbmanager.server import DBManagerServer
from katib_dbmanager.settings import Settings
from katib_dbmanager.storage import ObservationStore, open_store
from katib_dbmanager.tls import ServerTLS

_log = logging.getLogger("katib_dbmanager")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the DB manager; return the process exit status."""
    if argv is None:
        _native.reexec_with_vendored_openssl()
    try:
        settings = Settings.from_args(sys.argv[1:] if argv is None else argv, os.environ)
    except ValidationError as exc:
        print(f"katib-db-manager: error: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level)
    _raise_open_file_limit()
    try:
        store = connect(settings)
    except StorageError as exc:
        print(f"katib-db-manager: error: {exc}", file=sys.stderr)
        return 1
    if settings.workers > 1:
        store.close()  # the schema is in place; each worker opens its own connections
        return _supervise(settings)
    stopping = _stop_on_signals()
    try:
        server = _server(store, settings, settings.listen_address, reuse_port=False).start()
    except OSError as exc:
        store.close()
        print(f"katib-db-manager: error: {exc}", file=sys.stderr)
        return 1
    extras = "".join(
        (", push tokens required" if settings.auth_secret_file else "", ", TLS" if settings.tls_cert_file else "")
    )
    print(
        f"katib-db-manager serving api.v1.beta1.DBManager on {server.address} ({settings.db_url}{extras})", flush=True
    )
    stopping.wait()
    server.stop()
    return 0


def connect(settings: Settings) -> ObservationStore:
    """Open the store, retrying while the database comes up (at once, then backing off).

    Raises:
        StorageUnavailableError: still unreachable after ``settings.connect_timeout``.
        StorageError: reachable, but the schema is missing or cannot be created.
    """
    deadline = time.monotonic() + settings.connect_timeout
    delay = 0.25
    while True:
        try:
            return open_store(settings.db_url, initialize=settings.initialize_schema)
        except StorageUnavailableError as exc:
            if time.monotonic() + delay > deadline:
                raise StorageUnavailableError(
                    f"the database at {settings.db_url} did not answer within {settings.connect_timeout:g}s: {exc}"
                ) from exc
            _log.warning("database not reachable yet (%s); retrying in %.2gs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _server(store: ObservationStore, settings: Settings, address: str, *, reuse_port: bool) -> DBManagerServer:
    """The server ``settings`` describe. Raises OSError for unusable secret or certificate files."""
    try:
        authenticator = None if settings.auth_secret_file is None else Authenticator(settings.auth_secret_file)
        tls = None
        if settings.tls_cert_file is not None and settings.tls_key_file is not None:
            tls = ServerTLS(settings.tls_cert_file, settings.tls_key_file)
    except ValueError as exc:
        raise OSError(str(exc)) from None
    return DBManagerServer(
        store,
        listen_address=address,
        writers=settings.writers,
        health_interval=settings.health_interval,
        report_key_ttl=settings.report_key_ttl,
        reuse_port=reuse_port,
        max_message_bytes=settings.max_message_bytes,
        authenticator=authenticator,
        tls=tls,
    )


def _raise_open_file_limit() -> None:
    """Raise the soft limit on open files to the hard one: every client connection holds a
    descriptor, and under the common soft limit of 1,024, 5,000 idle connections locked new
    clients out for minutes. The hard limit stays what the operator (or container runtime) set."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:  # a kernel cap below the hard limit: keep what we have
        _log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
    else:
        _log.info("open-file limit raised from %d to %d", soft, target)


def _supervise(settings: Settings) -> int:
    try:
        address = _claim_port(settings.listen_address)
    except OSError as exc:
        print(f"katib-db-manager: error: cannot listen on {settings.listen_address}: {exc}", file=sys.stderr)
        return 1
    worker_settings = dataclasses.replace(settings, initialize_schema=False)
    context = multiprocessing.get_context("spawn")
    stopping = _stop_on_signals()
    workers: dict[int, multiprocessing.process.BaseProcess] = {}

    def spawn(index: int) -> str | None:
        receive, send = context.Pipe(duplex=False)
        proc = context.Process(target=_worker, args=(worker_settings, address, send), name=f"worker-{index}")
        proc.start()
        send.close()
        workers[index] = proc
        message = receive.recv() if receive.poll(settings.connect_timeout + 30) else "no answer from the worker"
        receive.close()
        return None if message == "ready" else str(message)

    for index in range(settings.workers):
        error = spawn(index)
        if error is not None:
            print(f"katib-db-manager: error: worker {index}: {error}", file=sys.stderr)
            _terminate(workers.values())
            return 1
    host = address.rsplit(":", 1)[0]
    shown = address if host not in ("0.0.0.0", "[::]") else f"127.0.0.1:{address.rsplit(':', 1)[1]}"
    print(
        f"katib-db-manager serving api.v1.beta1.DBManager on {shown} ({settings.db_url}, {settings.workers} workers)",
        flush=True,
    )
    backoff = dict.fromkeys(workers, 0.0)
    next_try = dict.fromkeys(workers, 0.0)
    while not stopping.wait(0.5):
        for index, proc in list(workers.items()):
            if proc.is_alive() or time.monotonic() < next_try[index]:
                continue
            _log.error("worker %d exited with status %s; restarting it", index, proc.exitcode)
            error = spawn(index)
            if error is None:
                backoff[index] = 0.0
                continue
            # Keep trying (the database may come back), but back off up to a minute.
            backoff[index] = min(max(backoff[index] * 2, 1.0), 60.0)
            next_try[index] = time.monotonic() + backoff[index]
            _log.error("worker %d did not restart: %s; next attempt in %.0fs", index, error, backoff[index])
    _terminate(workers.values())
    return 0


def _worker(settings: Settings, address: str, ready: Connection) -> None:
    """A server process of ``--workers``: serve on the shared port until SIGTERM."""
    _configure_logging(settings.log_level)
    stopping = _stop_on_signals()
    try:
        server = _server(connect(settings), settings, address, reuse_port=True).start()
    except (StorageError, OSError) as exc:
        ready.send(str(exc))
        return
    ready.send("ready")
    ready.close()
    stopping.wait()
    server.stop()


def _claim_port(listen_address: str) -> str:
    """Check the address is free (resolving port 0 to a free port) before workers share it."""
    host, port = listen_address.rsplit(":", 1)
    bind_host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((bind_host, int(port)))
        return f"{host}:{probe.getsockname()[1]}"


def _terminate(procs: object) -> None:
    alive = [p for p in procs if isinstance(p, multiprocessing.process.BaseProcess) and p.is_alive()]  # type: ignore[attr-defined]
    for proc in alive:
        proc.terminate()
    for proc in alive:
        proc.join(30)
        if proc.is_alive():
            proc.kill()


def _stop_on_signals() -> threading.Event:
    stopping = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        _log.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stopping


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
