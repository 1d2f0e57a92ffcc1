"""The serving certificate: generated when absent, reloaded when rotated.

``ensure`` leaves a certificate found in the cert dir alone; otherwise it writes a new CA
(``ca.crt``) and a serving certificate signed by it (``tls.crt``/``tls.key``) for the Service's
DNS names and any IPs, and returns the CA so ``main`` can patch it into the webhook
configurations. ``CertificateReloader`` watches the files (a Secret volume swaps them
atomically) and loads a changed pair into the live ``SSLContext``: connections that are open keep
their session, new handshakes get the new certificate, so no request is dropped.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from katib_webhook.settings import TlsSettings

_log = logging.getLogger(__name__)
CA_VALIDITY = datetime.timedelta(days=3650)
CERT_VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class Generated:
    """PEM bytes of a serving certificate and of its CA; ``ca_key`` lets a caller sign more (not written)."""

    ca_cert: bytes
    cert: bytes
    key: bytes
    ca_key: ec.EllipticCurvePrivateKey


def ensure(tls: TlsSettings) -> bytes | None:
    """Generate and write a CA and serving certificate unless both cert and key exist.

    Returns the new CA's PEM, or None when the files were there already.
    """
    if tls.cert_path.exists() and tls.key_path.exists():
        return None
    made = generate(dns_names=tls.dns_names, ip_addresses=tls.ip_addresses)
    tls.cert_dir.mkdir(parents=True, exist_ok=True)
    _write(tls.key_path, made.key, private=True)
    _write(tls.cert_path, made.cert)
    _write(tls.ca_path, made.ca_cert)
    _log.info(
        "generated a CA and a serving certificate in %s for %s",
        tls.cert_dir,
        ", ".join(tls.dns_names + tls.ip_addresses),
    )
    return made.ca_cert


def generate(
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
) -> Generated:
    """A serving certificate for the SANs, signed by ``ca`` or by a new self-signed CA."""
    now = datetime.datetime.now(datetime.UTC)
    if ca is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "katib-webhook-ca")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
    else:
        ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    common_name = (list(dns_names) + list(ip_addresses) + ["katib-webhook"])[0]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = serialization.Encoding.PEM
    return Generated(ca_cert=ca_cert.public_bytes(pem), cert=cert.public_bytes(pem), key=key_pem, ca_key=ca_key)


def write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` atomically (a reader sees the old or the new file, never half of one)."""
    _write(path, data, private=private)


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    # Write-then-rename: a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2+, HTTP/1.1) with the cert dir's certificate loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(tls.cert_path, tls.key_path)
    return context


def expiry(cert_path: Path) -> float:
    """The ``notAfter`` of the certificate at ``cert_path`` (Unix time)."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.not_valid_after_utc.timestamp()


class CertificateReloader:
    """Loads the cert dir's pair into ``context`` whenever the files change (``check()``)."""

    def __init__(self, context: ssl.SSLContext, tls: TlsSettings) -> None:
        self._context = context
        self._tls = tls
        self._seen = self._stamp()

    def _stamp(self) -> tuple[tuple[int, int, int], ...] | None:
        try:
            stats = [os.stat(path) for path in (self._tls.cert_path, self._tls.key_path)]
        except OSError:
            return None
        return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)

    def check(self) -> bool | None:
        """Reload if the files changed: True if loaded, False if the new pair is unusable, None if unchanged."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return None
        try:
            # Try the pair on a scratch context first: a failed load leaves a context half-changed.
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self._tls.cert_path, self._tls.key_path)
            self._context.load_cert_chain(self._tls.cert_path, self._tls.key_path)
        except (OSError, ssl.SSLError) as exc:
            # Mid-rotation (cert and key from different pairs): keep serving the old one, retry next time.
            _log.warning(
                "the certificate in %s changed but does not load (%s); still serving the previous one",
                self._tls.cert_dir,
                exc,
            )
            return False
        self._seen = stamp
        _log.info("reloaded the serving certificate from %s", self._tls.cert_dir)
        return True
