"""Test PKI: serving certs chain to the CA and carry the SANs the apiserver checks."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from pathlib import Path

from cryptography import x509

from katib_testcluster import pki


def test_serving_cert_for_webhook_has_sans_and_chains_to_ca(tmp_path: Path) -> None:
    created = pki.create(tmp_path)

    pair = created.issue_serving_cert("webhook", ips=("127.0.0.1",), dns_names=("katib-controller.kubeflow.svc",))

    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(created.ca_pem))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert sans.get_values_for_type(x509.DNSName) == ["katib-controller.kubeflow.svc"]
    assert pair.key.stat().st_mode & 0o077 == 0


def test_tokens_csv_has_admin_and_controller_identities(tmp_path: Path) -> None:
    created = pki.create(tmp_path)

    rows = created.tokens_csv.read_text().splitlines()

    assert rows[0].startswith(f"{created.admin_token},admin,")
    assert rows[0].endswith('"system:masters"')
    assert rows[1].startswith(f"{created.controller_token},{pki.CONTROLLER_USER},")
    assert created.admin_token != created.controller_token


def test_the_apiserver_cert_serves_a_tls_handshake_trusting_only_the_ca(tmp_path: Path) -> None:
    created = pki.create(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(created.apiserver.cert, created.apiserver.key)
    client = ssl.create_default_context(cafile=str(created.ca.cert))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        accepted: list[str] = []

        def serve() -> None:
            conn, _ = listener.accept()
            with server.wrap_socket(conn, server_side=True) as tls:
                accepted.append(tls.version() or "")

        thread = threading.Thread(target=serve)
        thread.start()
        with client.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="kubernetes.default"):
            pass
        thread.join(timeout=10)
    assert accepted
    assert created.ca.key.stat().st_mode & 0o077 == 0
