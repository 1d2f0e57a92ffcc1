"""A small JSON client for the Kubernetes API: credentials from a kubeconfig or the pod's service account.

Why not the ``kubernetes`` package: its v37 models are pydantic classes, and loading its API
classes costs a controller ~90 MB of RSS before the first object is watched. Controllers only
need JSON in and out over a pooled HTTPS connection, which urllib3 does. Kubeconfigs with a
token, client certificates or basic auth are read here; ``exec``/``auth-provider`` users are
resolved once through the ``kubernetes`` package's loader (imported only then).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
import yaml

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ApiError(Exception):
    """A non-2xx answer (``status`` 0: no answer at all)."""

    def __init__(self, status: int, reason: str, body: str = "") -> None:
        super().__init__(f"{status} {reason}: {body[:300]}" if body else f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body


@dataclass(frozen=True)
class KubeConfig:
    """Where the API server is and who we are to it."""

    server: str
    ca_file: str | None = None
    insecure: bool = False
    token: str | None = None
    token_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = None
    namespace: str | None = None

    def bearer(self) -> str | None:
        """The current token (a service account's projected token is re-read: it rotates)."""
        if self.token_file:
            return Path(self.token_file).read_text().strip()
        return self.token


def load(kubeconfig: str | None = None, *, context: str | None = None) -> KubeConfig:
    """From ``kubeconfig`` (or ``$KUBECONFIG``), else the pod's service account."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        return _from_kubeconfig(Path(path).expanduser(), context)
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise FileNotFoundError("no kubeconfig given and not running in a pod (KUBERNETES_SERVICE_HOST unset)")
    namespace_file = SERVICE_ACCOUNT / "namespace"
    return KubeConfig(
        server=f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}",
        ca_file=str(SERVICE_ACCOUNT / "ca.crt"),
        token_file=str(SERVICE_ACCOUNT / "token"),
        namespace=namespace_file.read_text().strip() if namespace_file.exists() else None,
    )


def _from_kubeconfig(path: Path, context_name: str | None) -> KubeConfig:
    document = yaml.safe_load(path.read_text()) or {}
    wanted = context_name or document.get("current-context")
    context = _named(document.get("contexts"), wanted, "context")
    cluster = _named(document.get("clusters"), context.get("cluster"), "cluster")
    user = _named(document.get("users"), context.get("user"), "user") if context.get("user") else {}
    if user.get("exec") or user.get("auth-provider"):
        return _via_kubernetes_package(path, wanted, context.get("namespace"))
    base = path.parent
    return KubeConfig(
        server=str(cluster["server"]).rstrip("/"),
        ca_file=_file(cluster, "certificate-authority", base),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=user.get("token") or (Path(user["tokenFile"]).read_text().strip() if user.get("tokenFile") else None),
        cert_file=_file(user, "client-certificate", base),
        key_file=_file(user, "client-key", base),
        username=user.get("username"),
        password=user.get("password"),
        namespace=context.get("namespace"),
    )


def _named(items: Any, name: Any, what: str) -> dict[str, Any]:
    for item in items or ():
        if item.get("name") == name:
            return dict(item.get(what) or {})
    raise ValueError(f"kubeconfig: no {what} named {name!r}")


def _file(section: Mapping[str, Any], key: str, base: Path) -> str | None:
    if section.get(key):
        return str(base / section[key])
    data = section.get(f"{key}-data")
    if not data:
        return None
    handle = tempfile.NamedTemporaryFile(prefix="kubeapi-", delete=False)  # - must outlive this call
    handle.write(base64.b64decode(data))
    handle.close()
    return handle.name


def _via_kubernetes_package(path: Path, context: str | None, namespace: str | None) -> KubeConfig:
    from kubernetes import client, config  # heavy; only for exec/auth-provider users

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), context=context, client_configuration=configuration)  # type: ignore[no-untyped-call]
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    return KubeConfig(
        server=str(configuration.host).rstrip("/"),
        ca_file=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        token=header.split(" ", 1)[-1] if header else None,
        cert_file=configuration.cert_file,
        key_file=configuration.key_file,
        namespace=namespace,
    )


class KubeApi:
    """JSON requests to the API server over one connection pool (thread-safe)."""

    def __init__(self, config: KubeConfig, *, pool_size: int = 16, timeout: float = 30.0) -> None:
        self.config = config
        context = (
            ssl.create_default_context(cafile=config.ca_file)
            if not config.insecure
            else ssl._create_unverified_context()
        )
        if config.cert_file:
            context.load_cert_chain(config.cert_file, config.key_file)
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=pool_size, ssl_context=context, retries=False)
        self._timeout = urllib3.Timeout(connect=10.0, read=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """``method path`` with a JSON body; the JSON answer, or ApiError."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        token = self.config.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif self.config.username:
            credentials = f"{self.config.username}:{self.config.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        url = self.config.server + path + (f"?{urlencode(query)}" if query else "")
        payload = None if body is None else json.dumps(body).encode()
        try:
            answer = self._pool.request(method, url, body=payload, headers=headers, timeout=self._timeout)
        except urllib3.exceptions.HTTPError as exc:
            raise ApiError(0, f"{method} {path}: {exc}") from None
        text = answer.data.decode("utf-8", "replace")
        if answer.status >= 300:
            reason = answer.reason or ""
            with contextlib.suppress(ValueError, AttributeError):
                reason = json.loads(text).get("reason") or reason
            raise ApiError(answer.status, str(reason), text)
        return dict(json.loads(text)) if text else {}

    def close(self) -> None:
        self._pool.clear()


def path(
    group: str,
    version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The REST path of a resource, collection or subresource (``group`` ``""`` is the core API)."""
    parts = ["/api/" + version] if not group else [f"/apis/{group}/{version}"]
    if namespace is not None:
        parts.append(f"namespaces/{quote(namespace, safe='')}")
    parts.append(plural)
    if name is not None:
        parts.append(quote(name, safe=""))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)
