"""The Suggestion CRD (``kubeflow.org/v1beta1``, kind ``Suggestion``)."""

from __future__ import annotations

from katib_core import constants
from katib_core.models._base import Condition, KatibModel, ObjectMeta
from katib_core.models.common import (
    AlgorithmSetting,
    AlgorithmSpec,
    EarlyStoppingRule,
    EarlyStoppingSpec,
    ParameterAssignment,
)


class SuggestionSpec(KatibModel):
    algorithm: AlgorithmSpec | None = None
    early_stopping: EarlyStoppingSpec | None = None
    requests: int | None = None
    resume_policy: str | None = None


class TrialAssignment(KatibModel):
    """One suggested trial: its name, parameter values, early-stopping rules and labels."""

    parameter_assignments: list[ParameterAssignment] | None = None
    name: str | None = None
    early_stopping_rules: list[EarlyStoppingRule] | None = None
    labels: dict[str, str] | None = None


class SuggestionStatus(KatibModel):
    algorithm_settings: list[AlgorithmSetting] | None = None
    suggestion_count: int | None = None
    suggestions: list[TrialAssignment] | None = None
    start_time: str | None = None
    completion_time: str | None = None
    last_reconcile_time: str | None = None
    conditions: list[Condition] | None = None


class Suggestion(KatibModel):
    api_version: str | None = constants.API_VERSION
    kind: str | None = constants.SUGGESTION_KIND
    metadata: ObjectMeta | None = None
    spec: SuggestionSpec | None = None
    status: SuggestionStatus | None = None
