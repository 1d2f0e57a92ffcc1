"""The kubelet's container-log endpoint, for the node agent: what ``kubectl logs`` reaches.

kube-apiserver answers ``GET /api/v1/namespaces/{ns}/pods/{pod}/log`` by calling the Pod's node at
``https://<InternalIP>:<status.daemonEndpoints.kubeletEndpoint.Port>/containerLogs/{ns}/{pod}/{container}``
(the container already resolved and checked against the Pod's spec), verifying the node's
certificate with ``--kubelet-certificate-authority``. Honoured query parameters: ``follow`` (stream
until the container has exited), ``tailLines`` and ``limitBytes``; others are ignored.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

#: ``(namespace, pod, container)`` → the log file and whether the container may still write to it;
#: KeyError when the agent never ran that container.
Resolve = Callable[[str, str, str], tuple[Path, Callable[[], bool]]]
_FOLLOW_POLL_SECONDS = 0.1


def tail(data: bytes, lines: int | None, limit: int | None) -> bytes:
    """The last ``lines`` lines of ``data``, then at most ``limit`` bytes of them (the kubelet's order)."""
    if lines is not None:
        kept = data.splitlines(keepends=True)
        data = b"".join(kept[-lines:]) if lines > 0 else b""
    return data[:limit] if limit is not None else data


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        if len(parts) != 4 or parts[0] != "containerLogs":
            self.send_error(404, "only /containerLogs/{namespace}/{pod}/{container} is served")
            return
        try:
            path, running = self.server.resolve(parts[1], parts[2], parts[3])
        except KeyError as exc:
            self.send_error(404, str(exc))
            return
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        try:
            lines = int(query["tailLines"]) if "tailLines" in query else None
            limit = int(query["limitBytes"]) if "limitBytes" in query else None
        except ValueError:
            self.send_error(400, "tailLines and limitBytes must be integers")
            return
        data = tail(path.read_bytes() if path.exists() else b"", lines, limit)
        offset = path.stat().st_size if path.exists() else 0
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if query.get("follow") != "true":
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.end_headers()  # HTTP/1.0: the body ends when the connection closes
        self._write(data)
        while not self.server.stopping.is_set():
            alive = running()  # read after this check is all the container wrote
            more = _read_from(path, offset)
            offset += len(more)
            self._write(more)
            if not alive:
                break
            time.sleep(_FOLLOW_POLL_SECONDS)

    def _write(self, data: bytes) -> None:
        if data:
            self.wfile.write(data)
            self.wfile.flush()

    def log_message(self, *_: object) -> None:
        pass


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read()
    except FileNotFoundError:
        return b""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, resolve: Resolve) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.resolve = resolve
        self.stopping = threading.Event()


class KubeletLogServer:
    """HTTPS on a free loopback port with ``cert``/``key`` (signed by the apiserver's kubelet CA)."""

    def __init__(self, resolve: Resolve, *, cert: Path, key: Path) -> None:
        self._server = _Server(resolve)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="kubelet-logs", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> KubeletLogServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


__all__ = ["KubeletLogServer", "Resolve", "tail"]
