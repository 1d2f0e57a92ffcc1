"""Types shared by Experiments, Trials and Suggestions (Katib's ``common/v1beta1``)."""

from __future__ import annotations

from typing import Any

from katib_core.models._base import KatibModel, NamedValue


class AlgorithmSetting(NamedValue):
    """One setting of a suggestion algorithm, e.g. ``{name: random_state, value: "10"}``."""


class AlgorithmSpec(KatibModel):
    algorithm_name: str | None = None
    algorithm_settings: list[AlgorithmSetting] | None = None


class EarlyStoppingSetting(NamedValue):
    """One setting of an early-stopping algorithm."""


class EarlyStoppingSpec(KatibModel):
    algorithm_name: str | None = None
    algorithm_settings: list[EarlyStoppingSetting] | None = None


class EarlyStoppingRule(KatibModel):
    """Stop a trial when metric ``name`` compares (``comparison``) to ``value``, after ``start_step`` reports."""

    name: str | None = None
    value: str | None = None
    comparison: str | None = None
    start_step: int | None = None


class MetricStrategy(NamedValue):
    """How a metric's value is extracted from its logs: ``min``, ``max`` or ``latest``."""


class ObjectiveSpec(KatibModel):
    type: str | None = None
    goal: float | None = None
    objective_metric_name: str | None = None
    additional_metric_names: list[str] | None = None
    metric_strategies: list[MetricStrategy] | None = None


class ParameterAssignment(NamedValue):
    """The value a trial got for one parameter (always a string)."""


class Metric(KatibModel):
    """A metric of an observation; every value is a string, possibly ``unavailable``."""

    name: str | None = None
    min: str | None = None
    max: str | None = None
    latest: str | None = None


class Observation(KatibModel):
    metrics: list[Metric] | None = None


class FileSystemPath(KatibModel):
    path: str | None = None
    kind: str | None = None
    format: str | None = None


class FilterSpec(KatibModel):
    metrics_format: list[str] | None = None


class SourceSpec(KatibModel):
    #: A Kubernetes ``HTTPGetAction``, kept as JSON.
    http_get: dict[str, Any] | None = None
    file_system_path: FileSystemPath | None = None
    filter: FilterSpec | None = None


class CollectorSpec(KatibModel):
    kind: str | None = None
    #: A Kubernetes ``Container``, kept as JSON.
    custom_collector: dict[str, Any] | None = None


class MetricsCollectorSpec(KatibModel):
    source: SourceSpec | None = None
    collector: CollectorSpec | None = None
