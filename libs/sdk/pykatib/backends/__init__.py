"""KatibClient backends: ``kubernetes`` (an API server) and ``local`` (this machine).

``create(config)`` builds the backend for a config object; backend modules are imported only
when chosen, so ``kubernetes`` is imported only by the Kubernetes backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pykatib.backends._base import Backend


@dataclass(frozen=True)
class KubernetesBackendConfig:
    """Talk to a Kubernetes API server (kubeconfig, in-cluster config, or a given configuration)."""

    config_file: str | None = None
    context: str | None = None
    #: A ``kubernetes.client.Configuration``.
    client_configuration: Any = None
    namespace: str | None = None


@dataclass(frozen=True)
class LocalBackendConfig:
    """Run Experiments on this machine, without Kubernetes (local mode, ``pip install pykatib[local]``).

    ``workdir`` holds the state (default env ``PYKATIB_WORKDIR``, else ``./.pykatib``); metrics go to
    SQLite there unless ``db_url`` names MariaDB/MySQL or PostgreSQL. ``push_auth`` makes the DB
    manager accept a trial's reports only with that trial's token (given to each trial process in
    env ``KATIB_TRIAL_TOKEN``; trials pushing with the official kubeflow-katib SDK send none).
    """

    namespace: str | None = None
    workdir: Path | None = None
    db_url: str | None = None
    push_auth: bool = False


BackendConfig = KubernetesBackendConfig | LocalBackendConfig
NAMES = ("kubernetes", "local")


def config_for(
    name: str, *, config_file: str | None, context: str | None, client_configuration: Any, namespace: str | None
) -> BackendConfig:
    """The config of backend ``name`` from KatibClient's upstream-style arguments."""
    if name == "kubernetes":
        return KubernetesBackendConfig(config_file, context, client_configuration, namespace)
    if name == "local":
        if config_file or context or client_configuration is not None:
            raise ValueError(
                "backend='local' takes no Kubernetes configuration (config_file, context, client_configuration)"
            )
        return LocalBackendConfig(namespace)
    raise ValueError(f"backend={name!r}: expected one of {', '.join(map(repr, NAMES))} or a backend config object")


def create(config: BackendConfig) -> Backend:
    """The backend for ``config``."""
    if isinstance(config, KubernetesBackendConfig):
        from pykatib.backends.kubernetes.backend import KubernetesBackend

        return KubernetesBackend(config)
    if isinstance(config, LocalBackendConfig):
        try:
            from pykatib_local.backend import LocalBackend  # pants: no-infer-dep (the optional pykatib[local])
        except ImportError as exc:
            raise ImportError(
                f"KatibClient(backend='local') needs local mode: pip install 'pykatib[local]' ({exc})"
            ) from exc
        local: Backend = LocalBackend(config)
        return local
    raise TypeError(f"not a backend config: {config!r}")


__all__ = ["NAMES", "Backend", "BackendConfig", "KubernetesBackendConfig", "LocalBackendConfig", "config_for", "create"]
