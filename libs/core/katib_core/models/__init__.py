"""Typed models of Katib's v1beta1 CRDs (Experiment, Trial, Suggestion and their common types).

Attributes are snake_case, JSON is camelCase (``Experiment.from_api(d)``, ``exp.to_api()``);
unknown fields are kept, so a round trip never loses what a user wrote. Field names follow
Katib's Go types. Pure data: no I/O.
"""

from katib_core.models._base import Condition, KatibModel, NamedValue, ObjectMeta, first_error, unknown_fields
from katib_core.models.common import (
    AlgorithmSetting,
    AlgorithmSpec,
    CollectorSpec,
    EarlyStoppingRule,
    EarlyStoppingSetting,
    EarlyStoppingSpec,
    FileSystemPath,
    FilterSpec,
    Metric,
    MetricsCollectorSpec,
    MetricStrategy,
    ObjectiveSpec,
    Observation,
    ParameterAssignment,
    SourceSpec,
)
from katib_core.models.experiments import (
    ConfigMapSource,
    Experiment,
    ExperimentSpec,
    ExperimentStatus,
    FeasibleSpace,
    GraphConfig,
    NasConfig,
    Operation,
    OptimalTrial,
    ParameterSpec,
    TrialParameterSpec,
    TrialTemplate,
)
from katib_core.models.suggestions import Suggestion, SuggestionSpec, SuggestionStatus, TrialAssignment
from katib_core.models.trials import Trial, TrialSpec, TrialStatus

__all__ = [
    "AlgorithmSetting",
    "AlgorithmSpec",
    "CollectorSpec",
    "Condition",
    "ConfigMapSource",
    "EarlyStoppingRule",
    "EarlyStoppingSetting",
    "EarlyStoppingSpec",
    "Experiment",
    "ExperimentSpec",
    "ExperimentStatus",
    "FeasibleSpace",
    "FileSystemPath",
    "FilterSpec",
    "GraphConfig",
    "KatibModel",
    "Metric",
    "MetricStrategy",
    "MetricsCollectorSpec",
    "NamedValue",
    "NasConfig",
    "ObjectMeta",
    "ObjectiveSpec",
    "Observation",
    "Operation",
    "OptimalTrial",
    "ParameterAssignment",
    "ParameterSpec",
    "SourceSpec",
    "Suggestion",
    "SuggestionSpec",
    "SuggestionStatus",
    "Trial",
    "TrialAssignment",
    "TrialParameterSpec",
    "TrialSpec",
    "TrialStatus",
    "TrialTemplate",
    "first_error",
    "unknown_fields",
]
