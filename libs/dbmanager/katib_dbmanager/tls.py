"""Optional TLS on the DB manager's port, with certificates re-read when they are rotated.

Off by default: Katib's clients (the official SDK, its sidecars) speak plaintext to port 6789.
With ``--tls-cert-file``/``--tls-key-file`` the port serves TLS only; pykatib clients trust it
through env ``KATIB_DB_MANAGER_CA_FILE``. gRPC asks for the certificate on each new handshake,
so a renewed cert-manager Secret takes effect without a restart.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import grpc

_log = logging.getLogger(__name__)


class ServerTLS:
    """A serving certificate and key on disk, reloaded when either file changes."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self._cert_file, self._key_file = cert_file, key_file
        self._stamp = self._current_stamp()
        self._initial = self._load()

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials that pick up a rotated certificate on the next handshake."""
        return grpc.dynamic_ssl_server_credentials(self._initial, self._fetch, require_client_authentication=False)

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        stamp = self._current_stamp()
        if stamp == self._stamp:
            return None  # keep the current certificate
        try:
            config = self._load()
        except (OSError, ValueError) as exc:
            _log.error("cannot load the rotated TLS certificate (keeping the current one): %s", exc)
            return None
        self._stamp = stamp
        _log.info("TLS certificate reloaded from %s", self._cert_file)
        return config

    def _load(self) -> grpc.ServerCertificateConfiguration:
        cert, key = self._cert_file.read_bytes(), self._key_file.read_bytes()
        if b"BEGIN" not in cert or b"PRIVATE KEY" not in key:
            raise ValueError(f"{self._cert_file} / {self._key_file} are not a PEM certificate and key")
        return grpc.ssl_server_certificate_configuration([(key, cert)])

    def _current_stamp(self) -> tuple[float, float]:
        return os.stat(self._cert_file).st_mtime, os.stat(self._key_file).st_mtime
