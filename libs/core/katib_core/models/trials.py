"""The Trial CRD (``kubeflow.org/v1beta1``, kind ``Trial``)."""

from __future__ import annotations

from typing import Any

from katib_core import constants
from katib_core.models._base import Condition, KatibModel, ObjectMeta
from katib_core.models.common import (
    EarlyStoppingRule,
    MetricsCollectorSpec,
    ObjectiveSpec,
    Observation,
    ParameterAssignment,
)


class TrialSpec(KatibModel):
    objective: ObjectiveSpec | None = None
    parameter_assignments: list[ParameterAssignment] | None = None
    early_stopping_rules: list[EarlyStoppingRule] | None = None
    #: The rendered trial template: the job this trial runs.
    run_spec: dict[str, Any] | None = None
    retain_run: bool | None = None
    metrics_collector: MetricsCollectorSpec | None = None
    primary_pod_labels: dict[str, str] | None = None
    primary_container_name: str | None = None
    success_condition: str | None = None
    failure_condition: str | None = None
    labels: dict[str, str] | None = None


class TrialStatus(KatibModel):
    start_time: str | None = None
    completion_time: str | None = None
    last_reconcile_time: str | None = None
    conditions: list[Condition] | None = None
    observation: Observation | None = None

    def has_condition(self, condition_type: str) -> bool:
        """Whether a condition of ``condition_type`` holds (status ``"True"``)."""
        return any(c.type == condition_type and c.status == constants.CONDITION_TRUE for c in self.conditions or ())


class Trial(KatibModel):
    api_version: str | None = constants.API_VERSION
    kind: str | None = constants.TRIAL_KIND
    metadata: ObjectMeta | None = None
    spec: TrialSpec | None = None
    status: TrialStatus | None = None
