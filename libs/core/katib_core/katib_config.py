"""Katib's ``katib-config``: which service runs each suggestion and early-stopping algorithm.

Katib v0.19 reads the ``katib-config.yaml`` key of the ``katib-config`` ConfigMap (``kind:
KatibConfig``). Its ``runtime.suggestions`` entries map an ``algorithmName`` to an ``image`` that
Katib deploys once per Experiment (a Deployment and a Service ``<experiment>-<algorithm>`` on port
6789) and calls over the ``api.v1.beta1.Suggestion`` gRPC API. We read the same file and add one
field of our own, ``endpoint`` (``host:port`` of a Suggestion service that is already running: our
``katib-suggestion`` Deployment, or one of Katib's images deployed by hand).

What we do with an entry (``route``; docs/suggestion.md#katib-config):

- ``endpoint`` given: the algorithm is driven over gRPC at that address (ours or anyone's);
- otherwise, an algorithm pykatib implements runs in-process, whatever ``image`` says (Katib's
  default entries name Katib's images for every algorithm; running ours in-process is the point);
- otherwise the entry's ``image`` is a Suggestion service to deploy per Experiment, as Katib does.

Pure: the shells read the file (``katib_suggest.routing.read_katib_config``, the webhook's settings).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from katib_core.errors import ValidationError

KIND: Final = "KatibConfig"
#: The ConfigMap key Katib v0.19 reads.
CONFIG_MAP_KEY: Final = "katib-config.yaml"
#: Port of a per-Experiment Suggestion Service (Katib's ``katib-api`` port).
SUGGESTION_PORT: Final = 6789
#: Port of the early-stopping container of that Pod (``earlystop-api``).
EARLY_STOPPING_PORT: Final = 6788


@dataclass(frozen=True)
class AlgorithmService:
    """One ``runtime.suggestions`` or ``runtime.earlyStoppings`` entry."""

    algorithm_name: str
    image: str = ""
    #: pykatib's extension: a running service's ``host:port``.
    endpoint: str = ""
    #: The rest of the entry (container fields, volume settings) as written.
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KatibConfig:
    """The parts of a katib-config pykatib uses (``metrics_collectors`` as written)."""

    suggestions: Mapping[str, AlgorithmService] = field(default_factory=dict)
    early_stoppings: Mapping[str, AlgorithmService] = field(default_factory=dict)
    metrics_collectors: tuple[Mapping[str, Any], ...] = ()


class Route(enum.Enum):
    IN_PROCESS = "in-process"
    ENDPOINT = "endpoint"
    DEPLOY = "deploy"
    UNKNOWN = "unknown"


def loads(text: str, *, source: str = "katib-config") -> KatibConfig:
    """``parse`` of a YAML text (a katib-config document, or a ConfigMap manifest holding one).

    Raises:
        ValidationError: not YAML, or a wrong entry (named).
    """
    return parse(_load_yaml(text, source), source=source)


def parse(document: Any, *, source: str = "katib-config") -> KatibConfig:
    """A KatibConfig from its YAML document, or from a whole ``katib-config`` ConfigMap holding it.

    Args:
        document: the parsed YAML (a mapping).
        source: how the document is named in errors (a path).

    Raises:
        ValidationError: naming the field of the entry that is wrong.
    """
    if isinstance(document, Mapping) and document.get("kind") == "ConfigMap":
        text = (document.get("data") or {}).get(CONFIG_MAP_KEY)
        if not isinstance(text, str):
            raise ValidationError(f"{source}: data.{CONFIG_MAP_KEY}", "the ConfigMap has no katib-config document")
        document = _load_yaml(text, f"{source}: data.{CONFIG_MAP_KEY}")
    if document is None:
        return KatibConfig()
    if not isinstance(document, Mapping):
        raise ValidationError(source, "must be a KatibConfig mapping")
    kind = document.get("kind")
    if kind not in (None, KIND):
        raise ValidationError(f"{source}: kind", f"{kind!r} is not {KIND}")
    runtime = document.get("runtime") or {}
    if not isinstance(runtime, Mapping):
        raise ValidationError(f"{source}: runtime", "must be a mapping")
    collectors = runtime.get("metricsCollectors") or []
    if not isinstance(collectors, list) or not all(isinstance(c, Mapping) for c in collectors):
        raise ValidationError(f"{source}: runtime.metricsCollectors", "must be a list of entries")
    return KatibConfig(
        suggestions=_entries(runtime.get("suggestions"), f"{source}: runtime.suggestions"),
        early_stoppings=_entries(runtime.get("earlyStoppings"), f"{source}: runtime.earlyStoppings"),
        metrics_collectors=tuple(collectors),
    )


def _load_yaml(text: str, where: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationError(where, f"is not YAML: {exc}") from None


def _entries(raw: Any, where: str) -> dict[str, AlgorithmService]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ValidationError(where, "must be a list of {algorithmName, image | endpoint} entries")
    found: dict[str, AlgorithmService] = {}
    for index, entry in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(entry, Mapping):
            raise ValidationError(at, "must be a mapping")
        name = entry.get("algorithmName")
        if not isinstance(name, str) or not name:
            raise ValidationError(f"{at}.algorithmName", "is required")
        if name in found:
            raise ValidationError(f"{at}.algorithmName", f"{name!r} is configured twice")
        image, endpoint = entry.get("image") or "", entry.get("endpoint") or ""
        if not isinstance(image, str) or not isinstance(endpoint, str):
            raise ValidationError(at, "image and endpoint must be strings")
        if not image and not endpoint:
            raise ValidationError(f"{at}.image", f"algorithm {name!r} needs an image (or a pykatib endpoint)")
        if endpoint:
            _check_endpoint(endpoint, f"{at}.endpoint")
        extra = {k: v for k, v in entry.items() if k not in ("algorithmName", "image", "endpoint")}
        found[name] = AlgorithmService(name, image=image, endpoint=endpoint, extra=extra)
    return found


def _check_endpoint(endpoint: str, where: str) -> None:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValidationError(where, f"{endpoint!r} must be HOST:PORT")


def route(name: str, config: KatibConfig, in_process: Sequence[str] | frozenset[str]) -> Route:
    """How suggestion algorithm ``name`` is run (the module docstring's rule)."""
    entry = config.suggestions.get(name)
    if entry is not None and entry.endpoint:
        return Route.ENDPOINT
    if name in in_process:
        return Route.IN_PROCESS
    if entry is not None:
        return Route.DEPLOY
    return Route.UNKNOWN


def endpoints(config: KatibConfig) -> dict[str, str]:
    """Algorithm name → ``host:port`` of the suggestion entries that give an ``endpoint``."""
    return {name: entry.endpoint for name, entry in config.suggestions.items() if entry.endpoint}


def deployed_name(experiment: str, algorithm: str) -> str:
    """The Deployment and Service Katib names for an Experiment's suggestion service."""
    return f"{experiment}-{algorithm}"


__all__ = [
    "CONFIG_MAP_KEY",
    "EARLY_STOPPING_PORT",
    "SUGGESTION_PORT",
    "AlgorithmService",
    "KatibConfig",
    "Route",
    "deployed_name",
    "endpoints",
    "loads",
    "parse",
    "route",
]
