"""KatibClient backends: ``kubernetes`` (an API server) and ``local`` (this machine).

``create(config)`` builds the backend for a config object; backend modules are imported only
when chosen, so ``kubernetes`` is imported only by the Kubernetes backend. Backends of other
distributions register themselves: an installed one through the ``pykatib.backends`` entry-point
group (pykatib-local declares ``local`` there), or in-process with ``register_backend`` (what
``pykatib_local.backend`` does on import, for pexes and in-repo code, which carry no metadata).
The SDK never imports them by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from pykatib.backends._base import Backend

#: Entry points in this group name a backend and load its factory (a config → ``Backend`` callable).
ENTRY_POINT_GROUP = "pykatib.backends"
_FACTORIES: dict[str, Callable[[Any], Backend]] = {}


@dataclass(frozen=True)
class KubernetesBackendConfig:
    """Talk to a Kubernetes API server (kubeconfig, in-cluster config, or a given configuration)."""

    backend: ClassVar = "kubernetes"
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

    It stays here, beside the backend it configures, because it is public API that users build
    before anything is run (``KatibClient(backend=LocalBackendConfig(...))``): plain data, so the
    SDK needs nothing of pykatib-local to hold it.
    """

    backend: ClassVar = "local"

    namespace: str | None = None
    #: A path or a string (``"./runs"``), as users write it.
    workdir: Path | str | None = None
    db_url: str | None = None
    push_auth: bool = False

    def __post_init__(self) -> None:
        if self.workdir is not None and not isinstance(self.workdir, Path):
            object.__setattr__(self, "workdir", Path(self.workdir))


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


def register_backend(name: str, factory: Callable[[Any], Backend]) -> None:
    """Make ``factory`` build the backend of configs whose ``backend`` is ``name``."""
    _FACTORIES[name] = factory


def _factory(name: str) -> Callable[[Any], Backend] | None:
    if name not in _FACTORIES:
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if entry.name == name:
                register_backend(name, entry.load())
                break
    return _FACTORIES.get(name)


def create(config: BackendConfig) -> Backend:
    """The backend for ``config``."""
    if isinstance(config, KubernetesBackendConfig):
        from pykatib.backends.kubernetes.backend import KubernetesBackend

        return KubernetesBackend(config)
    if not isinstance(config, LocalBackendConfig):
        raise TypeError(f"not a backend config: {config!r}")
    try:
        factory = _factory(config.backend)
    except ImportError as exc:  # an installed backend whose own imports fail
        raise ImportError(
            f"KatibClient(backend='local') needs local mode: pip install 'pykatib[local]' ({exc})"
        ) from exc
    if factory is None:
        raise ImportError(
            "KatibClient(backend='local') needs local mode: pip install 'pykatib[local]'"
            f" (no {ENTRY_POINT_GROUP!r} entry point named 'local' is installed)"
        )
    return factory(config)


__all__ = [
    "ENTRY_POINT_GROUP",
    "NAMES",
    "Backend",
    "BackendConfig",
    "KubernetesBackendConfig",
    "LocalBackendConfig",
    "config_for",
    "create",
    "register_backend",
]
