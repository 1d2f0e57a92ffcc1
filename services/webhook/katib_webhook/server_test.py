"""The HTTPS server for real: TLS handshakes, routes, Prometheus text, certificate rotation under load."""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from katib_webhook import certificates
from katib_webhook.admission import Admission
from katib_webhook.monitoring import Monitor
from katib_webhook.server import WebhookServer
from katib_webhook.settings import AdmissionSettings, TlsSettings
from katib_webhook.testing import serving

POD_REVIEW = (Path(__file__).parent / "testdata" / "pod-review.json").read_bytes()


def tls_in(directory: Path, *, reload_interval: float) -> TlsSettings:
    names = ("katib-webhook.kubeflow.svc",)
    return TlsSettings(
        cert_dir=directory, dns_names=names, ip_addresses=("127.0.0.1",), reload_interval=reload_interval
    )


def client_context(tls: TlsSettings) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls.ca_path))


def request(
    server: WebhookServer, tls: TlsSettings, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes, int]:
    """One request on a new TLS connection: (status, body, serial number of the certificate served)."""
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=client_context(tls), timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        assert conn.sock is not None
        peer = conn.sock.getpeercert(binary_form=True)
        assert peer is not None
        return response.status, data, x509.load_der_x509_certificate(peer).serial_number
    finally:
        conn.close()


@pytest.fixture()
def tls(tmp_path: Path) -> TlsSettings:
    settings = tls_in(tmp_path, reload_interval=0.05)
    assert certificates.ensure(settings) is not None
    return settings


def test_routes_over_tls(tls: TlsSettings) -> None:
    with serving(Admission(AdmissionSettings(), reader=None), tls) as server:
        assert request(server, tls, "GET", "/healthz")[:2] == (200, b"ok")
        status, body, _ = request(server, tls, "POST", "/mutate-pod?timeout=5s", POD_REVIEW)
        assert status == 200
        assert json.loads(body)["response"] == {"uid": "082f2ae5-f98f-4990-921a-7c7598a328ba", "allowed": True}
        status, body, _ = request(server, tls, "POST", "/validate-experiment", b"\x00garbage")
        assert status == 200  # a malformed review is answered, never a 500
        assert json.loads(body)["response"]["allowed"] is False
        assert request(server, tls, "GET", "/mutate-pod")[0] == 405
        status, body, _ = request(server, tls, "GET", "/metrics")
        assert status == 200
        text = body.decode()
        assert (
            'katib_webhook_admission_requests_total{allowed="true",patched="false",webhook="/mutate-pod"} 1.0' in text
        )
        assert (
            'katib_webhook_admission_requests_total{allowed="false",patched="false",webhook="/validate-experiment"} 1.0'
            in text
        )
        assert 'katib_webhook_admission_duration_seconds_count{webhook="/mutate-pod"} 1.0' in text


def test_a_generated_certificate_covers_its_names_and_is_kept(tls: TlsSettings) -> None:
    cert = x509.load_pem_x509_certificate(tls.cert_path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["katib-webhook.kubeflow.svc"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert oct(tls.key_path.stat().st_mode & 0o777) == "0o600"
    before = tls.cert_path.read_bytes()
    assert certificates.ensure(tls) is None  # found: left alone
    assert tls.cert_path.read_bytes() == before


class Load:
    """Threads sending reviews on fresh connections (a handshake each) until stopped."""

    def __init__(self, server: WebhookServer, tls: TlsSettings, threads: int = 4) -> None:
        self.server, self.tls = server, tls
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.serials: list[int] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                status, body, serial = request(self.server, self.tls, "POST", "/mutate-pod", POD_REVIEW)
                ok = status == 200 and json.loads(body)["response"]["allowed"] is True
            except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
                ok, serial, body = False, 0, repr(exc).encode()
            with self._lock:
                self.serials.append(serial)
                if not ok:
                    self.failures.append(body.decode(errors="replace"))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(60)

    def wait_for(self, serial: int) -> None:
        """Block until a handshake served the certificate ``serial`` (the reloader polls every 50 ms)."""
        while True:
            with self._lock:
                if serial in self.serials or self.failures:
                    return
            threading.Event().wait(0.01)


def serial_of(pem: bytes) -> int:
    return x509.load_pem_x509_certificate(pem).serial_number


def test_a_rotated_certificate_is_served_without_dropping_a_request(tmp_path: Path) -> None:
    tls = tls_in(tmp_path, reload_interval=0.05)
    first = certificates.generate(dns_names=tls.dns_names, ip_addresses=tls.ip_addresses)
    ca = (x509.load_pem_x509_certificate(first.ca_cert), first.ca_key)
    for path, data in ((tls.ca_path, first.ca_cert), (tls.key_path, first.key), (tls.cert_path, first.cert)):
        certificates.write(path, data)
    monitor = Monitor()
    with (
        serving(Admission(AdmissionSettings(), reader=None), tls, monitor=monitor) as server,
        Load(server, tls) as load,
    ):
        load.wait_for(serial_of(first.cert))
        for _ in range(3):  # three renewals by the same CA, as cert-manager does
            renewed = certificates.generate(dns_names=tls.dns_names, ip_addresses=tls.ip_addresses, ca=ca)
            certificates.write(tls.key_path, renewed.key, private=True)
            certificates.write(tls.cert_path, renewed.cert)
            load.wait_for(serial_of(renewed.cert))
        # a half-written rotation (new certificate, old key) must not break the live context
        broken = certificates.generate(dns_names=tls.dns_names, ip_addresses=tls.ip_addresses, ca=ca)
        certificates.write(tls.cert_path, broken.cert)
        while not monitor.registry.get_sample_value("katib_webhook_certificate_reloads_total", {"result": "failed"}):
            threading.Event().wait(0.01)
        certificates.write(tls.key_path, broken.key, private=True)
        load.wait_for(serial_of(broken.cert))
    assert load.failures == []
    assert len(set(load.serials)) == 5
