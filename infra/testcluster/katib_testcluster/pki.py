"""Certificates, keys and static tokens for a loopback test control plane.

`create()` writes a CA, the apiserver's serving cert, the service-account signing key and
`tokens.csv`; `Pki.issue_serving_cert()` signs more serving certs (e.g. for webhook servers).
Used by `controlplane.ControlPlane`; tests reach it as `k8s_cluster.pki`. Certificates come from
trustme (test PKIs are its job; docs/design.md); the service-account key is a plain RSA key.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ADMIN_USER = "admin"
# A static-token identity named like Katib's controller ServiceAccount, to test its real RBAC.
CONTROLLER_USER = "system:serviceaccount:kubeflow:katib-controller"
CONTROLLER_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:kubeflow")


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
        ca = trustme.CA.from_pem(self.ca.cert.read_bytes(), self.ca.key.read_bytes())
        return _write_serving_cert(self.dir, name, ca, ips=ips, dns_names=dns_names)


def create(directory: Path) -> Pki:
    """Write a fresh CA, apiserver cert, SA key and tokens.csv into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="pykatib", organization_unit_name="pykatib-test-ca")
    ca = KeyPair(cert=directory / "ca.crt", key=directory / "ca.key")
    _write_private(ca.key, authority.private_key_pem.bytes())
    ca.cert.write_bytes(authority.cert_pem.bytes())

    apiserver = _write_serving_cert(
        directory,
        "apiserver",
        authority,
        ips=("127.0.0.1",),
        # The in-cluster names make the cert usable for clients that dial the Service name too.
        dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
    )

    sa_key = directory / "sa.key"  # RSA: the path verified with this apiserver
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(
        sa_key,
        rsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ),
    )

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
    directory: Path, name: str, ca: trustme.CA, *, ips: Sequence[str], dns_names: Sequence[str]
) -> KeyPair:
    leaf = ca.issue_cert(*ips, *dns_names, common_name=name)
    pair = KeyPair(cert=directory / f"{name}.crt", key=directory / f"{name}.key")
    _write_private(pair.key, leaf.private_key_pem.bytes())
    pair.cert.write_bytes(leaf.cert_chain_pems[0].bytes())
    return pair


def _write_private(path: Path, data: bytes) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.write_bytes(data)
