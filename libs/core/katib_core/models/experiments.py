"""The Experiment CRD (``kubeflow.org/v1beta1``, kind ``Experiment``)."""

from __future__ import annotations

from typing import Any

from katib_core import constants
from katib_core.models._base import Condition, KatibModel, ObjectMeta
from katib_core.models.common import (
    AlgorithmSpec,
    EarlyStoppingSpec,
    MetricsCollectorSpec,
    ObjectiveSpec,
    Observation,
    ParameterAssignment,
)

#: ``list[str]`` under another name: FeasibleSpace has a field called ``list``.
_Strings = list[str]


class FeasibleSpace(KatibModel):
    """Where a parameter may range: ``min``/``max``(/``step``) for numbers, ``list`` otherwise."""

    max: str | None = None
    min: str | None = None
    list: _Strings | None = None  # - Katib's field name
    step: str | None = None
    distribution: str | None = None


class ParameterSpec(KatibModel):
    name: str | None = None
    parameter_type: str | None = None
    feasible_space: FeasibleSpace | None = None


class TrialParameterSpec(KatibModel):
    """A ``${trialParameters.<name>}`` placeholder of the trial template and the parameter it takes."""

    name: str | None = None
    description: str | None = None
    reference: str | None = None


class ConfigMapSource(KatibModel):
    config_map_name: str | None = None
    config_map_namespace: str | None = None
    template_path: str | None = None


class TrialTemplate(KatibModel):
    retain: bool | None = None
    #: The trial's job (any Kubernetes object), with ``${trialParameters.X}`` placeholders.
    trial_spec: dict[str, Any] | None = None
    config_map: ConfigMapSource | None = None
    trial_parameters: list[TrialParameterSpec] | None = None
    primary_pod_labels: dict[str, str] | None = None
    #: In the CRD's schema (infra/crds/experiment.yaml), so accepted; no controller reads it.
    labels: dict[str, str] | None = None
    primary_container_name: str | None = None
    success_condition: str | None = None
    failure_condition: str | None = None


class GraphConfig(KatibModel):
    num_layers: int | None = None
    input_sizes: list[int] | None = None
    output_sizes: list[int] | None = None


class Operation(KatibModel):
    operation_type: str | None = None
    parameters: list[ParameterSpec] | None = None


class NasConfig(KatibModel):
    graph_config: GraphConfig | None = None
    operations: list[Operation] | None = None


class ExperimentSpec(KatibModel):
    parameters: list[ParameterSpec] | None = None
    objective: ObjectiveSpec | None = None
    algorithm: AlgorithmSpec | None = None
    early_stopping: EarlyStoppingSpec | None = None
    trial_template: TrialTemplate | None = None
    parallel_trial_count: int | None = None
    max_trial_count: int | None = None
    max_failed_trial_count: int | None = None
    metrics_collector_spec: MetricsCollectorSpec | None = None
    nas_config: NasConfig | None = None
    resume_policy: str | None = None


class OptimalTrial(KatibModel):
    best_trial_name: str | None = None
    parameter_assignments: list[ParameterAssignment] | None = None
    observation: Observation | None = None


class ExperimentStatus(KatibModel):
    start_time: str | None = None
    completion_time: str | None = None
    last_reconcile_time: str | None = None
    conditions: list[Condition] | None = None
    current_optimal_trial: OptimalTrial | None = None
    running_trial_list: list[str] | None = None
    pending_trial_list: list[str] | None = None
    failed_trial_list: list[str] | None = None
    succeeded_trial_list: list[str] | None = None
    killed_trial_list: list[str] | None = None
    early_stopped_trial_list: list[str] | None = None
    metrics_unavailable_trial_list: list[str] | None = None
    trials: int | None = None
    trials_succeeded: int | None = None
    trials_failed: int | None = None
    trials_killed: int | None = None
    trials_pending: int | None = None
    trials_running: int | None = None
    trials_early_stopped: int | None = None
    trial_metrics_unavailable: int | None = None

    def has_condition(self, condition_type: str) -> bool:
        """Whether a condition of ``condition_type`` holds (status ``"True"``), as Katib's clients check."""
        return any(c.type == condition_type and c.status == constants.CONDITION_TRUE for c in self.conditions or ())


class Experiment(KatibModel):
    api_version: str | None = constants.API_VERSION
    kind: str | None = constants.EXPERIMENT_KIND
    metadata: ObjectMeta | None = None
    spec: ExperimentSpec | None = None
    status: ExperimentStatus | None = None
