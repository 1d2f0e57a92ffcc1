"""Certificates, keys and static tokens for a loopback test control plane.

`create()` writes a CA, the apiserver's serving cert, the service-account signing key and
`tokens.csv`; `Pki.issue_serving_cert()` signs more serving certs (e.g. for webhook servers).
Used by `controlplane.ControlPlane`; tests reach it as `k8s_cluster.pki`.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ADMIN_USER = "admin"
# A static-token identity named like Katib's controller ServiceAccount, to test its real RBAC.
CONTROLLER_USER = "system:serviceaccount:kubeflow:katib-controller"
CONTROLLER_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:kubeflow")

_VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class KeyPair:
    """PEM files of a certificate and its private key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """The files of one control plane's PKI; see `create()`."""

    dir: Path
    ca: KeyPair
    apiserver: KeyPair
    sa_key: Path
    tokens_csv: Path
    admin_token: str
    controller_token: str

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate (PEM), e.g. for a webhook's `caBundle` (base64 it)."""
        return self.ca.cert.read_bytes()

    def issue_serving_cert(
        self,
        name: str,
        *,
        ips: Sequence[str] = ("127.0.0.1",),
        dns_names: Sequence[str] = ("localhost",),
    ) -> KeyPair:
        """Sign a TLS serving cert for the given SANs with this CA; files `<name>.crt/.key`.

        The apiserver (Go 1.19) ignores the CN, so a webhook on loopback needs `IP:127.0.0.1`.
        """
        ca_key = serialization.load_pem_private_key(self.ca.key.read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"unexpected CA key type {type(ca_key).__name__}")
        ca_cert = x509.load_pem_x509_certificate(self.ca.cert.read_bytes())
        return _write_serving_cert(self.dir, name, ca_cert, ca_key, ips=ips, dns_names=dns_names)


def create(directory: Path) -> Pki:
    """Write a fresh CA, apiserver cert, SA key and tokens.csv into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pykatib-test-ca")])
    now = _now()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
    ca = KeyPair(cert=directory / "ca.crt", key=directory / "ca.key")
    _write_private(ca.key, _pem_key(ca_key))
    ca.cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    apiserver = _write_serving_cert(
        directory,
        "apiserver",
        ca_cert,
        ca_key,
        ips=("127.0.0.1",),
        # The in-cluster names make the cert usable for clients that dial the Service name too.
        dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
    )

    sa_key = directory / "sa.key"  # RSA: the path verified with this apiserver
    _write_private(sa_key, _pem_key(rsa.generate_private_key(public_exponent=65537, key_size=2048)))

    admin_token, controller_token = secrets.token_hex(16), secrets.token_hex(16)
    tokens_csv = directory / "tokens.csv"
    groups = ",".join(CONTROLLER_GROUPS)
    _write_private(
        tokens_csv,
        (
            f'{admin_token},{ADMIN_USER},admin-uid,"system:masters"\n'
            f'{controller_token},{CONTROLLER_USER},katib-controller-uid,"{groups}"\n'
        ).encode(),
    )
    return Pki(
        dir=directory,
        ca=ca,
        apiserver=apiserver,
        sa_key=sa_key,
        tokens_csv=tokens_csv,
        admin_token=admin_token,
        controller_token=controller_token,
    )


def _write_serving_cert(
    directory: Path,
    name: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    ips: Sequence[str],
    dns_names: Sequence[str],
) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    sans += [x509.DNSName(dns) for dns in dns_names]
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pair = KeyPair(cert=directory / f"{name}.crt", key=directory / f"{name}.key")
    _write_private(pair.key, _pem_key(key))
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pair


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.write_bytes(data)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
