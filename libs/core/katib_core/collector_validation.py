"""Katib's metrics-collector rules (docs/katib-compat.md#validation-rules), part of ``validation.validate_experiment``.

``Push`` and ``StdOut`` need nothing more; File, TensorFlowEvent, PrometheusMetric and Custom
need their source; the legacy ``None`` and unknown kinds are refused; custom filters must
compile with two groups. Auto-injected kinds need a sidecar configured in the installation.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Collection
from typing import Final

from katib_core import metric_parsing
from katib_core.constants import CollectorKind, FileFormat, FileSystemKind
from katib_core.errors import ValidationError
from katib_core.models.common import MetricsCollectorSpec

#: Kinds Katib injects a configured sidecar for: each needs an image in the configuration.
AUTO_INJECTED_KINDS: Final = frozenset(
    {CollectorKind.STDOUT, CollectorKind.FILE, CollectorKind.TENSORFLOW_EVENT, CollectorKind.PROMETHEUS_METRIC}
)
_COLLECTOR = "spec.metricsCollectorSpec"
_SOURCE = f"{_COLLECTOR}.source"


def metrics_collector_problems(
    collector: MetricsCollectorSpec | None, configured_kinds: Collection[str]
) -> list[ValidationError]:
    """Katib's collector rules: Push and StdOut need nothing more; ``None`` and unknown kinds are refused."""
    kind = (collector.collector.kind if collector and collector.collector else None) or ""
    spec = collector or MetricsCollectorSpec()
    problems: list[ValidationError] = []
    if kind in AUTO_INJECTED_KINDS and kind not in configured_kinds:
        problems.append(
            ValidationError(f"{_COLLECTOR}.collector.kind", f"no metrics collector is configured for kind {kind}")
        )
    if kind in (CollectorKind.PUSH, CollectorKind.STDOUT):
        return problems
    check = _KIND_CHECKS.get(kind)
    if check is None:
        hint = " (kind None was renamed Push in Katib 0.18)" if kind == "None" else ""
        return [
            *problems,
            ValidationError(f"{_COLLECTOR}.collector.kind", f"invalid metrics collector kind: {kind!r}{hint}"),
        ]
    problems += check(spec)
    filters = spec.source.filter.metrics_format if spec.source and spec.source.filter else None
    for index, pattern in enumerate(filters or ()):
        try:
            metric_parsing.compile_filter(pattern, field=f"{_SOURCE}.filter.metricsFormat[{index}]")
        except ValidationError as exc:
            problems.append(exc)
    return problems


def _file_problems(spec: MetricsCollectorSpec) -> list[ValidationError]:
    path = spec.source.file_system_path if spec.source else None
    problems: list[ValidationError] = []
    if path is None or path.kind != FileSystemKind.FILE or not posixpath.isabs(path.path or ""):
        problems.append(ValidationError(f"{_SOURCE}.fileSystemPath.path", "an absolute path of kind File is required"))
    file_format = path.format if path else None
    if file_format not in (FileFormat.TEXT, FileFormat.JSON):
        problems.append(ValidationError(f"{_SOURCE}.fileSystemPath.format", f"{file_format!r} must be TEXT or JSON"))
    if file_format == FileFormat.JSON and spec.source is not None and spec.source.filter is not None:
        problems.append(ValidationError(f"{_SOURCE}.filter", "must be empty when the format is JSON"))
    return problems


def _tfevent_problems(spec: MetricsCollectorSpec) -> list[ValidationError]:
    path = spec.source.file_system_path if spec.source else None
    problems: list[ValidationError] = []
    if path is None or path.kind != FileSystemKind.DIRECTORY or not posixpath.isabs(path.path or ""):
        problems.append(
            ValidationError(f"{_SOURCE}.fileSystemPath.path", "an absolute path of kind Directory is required")
        )
    if path is not None and path.format:
        problems.append(ValidationError(f"{_SOURCE}.fileSystemPath.format", "must be empty"))
    return problems


def _prometheus_problems(spec: MetricsCollectorSpec) -> list[ValidationError]:
    http_get = (spec.source.http_get if spec.source else None) or {}
    problems: list[ValidationError] = []
    port = http_get.get("port")
    try:
        number = int(port) if not isinstance(port, bool) else 0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = 0
    if number <= 0:
        problems.append(ValidationError(f"{_SOURCE}.httpGet.port", f"{port!r} must be a positive integer"))
    path = http_get.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        problems.append(ValidationError(f"{_SOURCE}.httpGet.path", f"{path!r} must start with '/'"))
    return problems


def _custom_problems(spec: MetricsCollectorSpec) -> list[ValidationError]:
    problems: list[ValidationError] = []
    if not (spec.collector and spec.collector.custom_collector):
        problems.append(ValidationError(f"{_COLLECTOR}.collector.customCollector", "is required for kind Custom"))
    path = spec.source.file_system_path if spec.source else None
    if path is not None and (
        not posixpath.isabs(path.path or "") or path.kind not in (FileSystemKind.FILE, FileSystemKind.DIRECTORY)
    ):
        problems.append(
            ValidationError(f"{_SOURCE}.fileSystemPath", "must be an absolute path of kind File or Directory")
        )
    return problems


_KIND_CHECKS: Final[dict[str, Callable[[MetricsCollectorSpec], list[ValidationError]]]] = {
    CollectorKind.FILE: _file_problems,
    CollectorKind.TENSORFLOW_EVENT: _tfevent_problems,
    CollectorKind.PROMETHEUS_METRIC: _prometheus_problems,
    CollectorKind.CUSTOM: _custom_problems,
}
