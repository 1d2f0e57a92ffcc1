"""Test PKI: serving certs chain to the CA and carry the SANs the apiserver checks."""

from __future__ import annotations

import ipaddress
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
