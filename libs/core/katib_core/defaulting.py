"""Katib's Experiment defaults (docs/katib-compat.md#defaults), applied by the mutating webhook and local mode.

``default_experiment`` returns a new, defaulted Experiment and leaves every value the user set
alone. ``repair_raw_experiment`` works on the raw JSON before it is parsed: it moves the
categorical values that the official SDK ≥ 0.18 wrongly puts into ``feasibleSpace.distribution``
(issues #2542/#2625) into ``feasibleSpace.list`` — the lenient choice, so experiments made by
the official ``tune()`` run instead of being rejected.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from katib_core import constants
from katib_core.constants import CollectorKind, FileFormat, FileSystemKind, MetricStrategyType, ObjectiveType
from katib_core.models import Experiment
from katib_core.models.common import (
    CollectorSpec,
    FileSystemPath,
    MetricsCollectorSpec,
    MetricStrategy,
    ObjectiveSpec,
    SourceSpec,
)
from katib_core.models.experiments import ExperimentSpec, TrialTemplate

DEFAULT_PARALLEL_TRIAL_COUNT: Final = 3
DEFAULT_METRICS_FILE: Final = "/var/log/katib/metrics.log"
DEFAULT_TFEVENT_DIR: Final = "/var/log/katib/tfevent/"
DEFAULT_PROMETHEUS_PATH: Final = "/metrics"
DEFAULT_PROMETHEUS_PORT: Final = 8080

# gjson expressions over the job object, as Katib writes them.
_JOB_SUCCESS: Final = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
_JOB_FAILURE: Final = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
_KUBEFLOW_SUCCESS: Final = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
_KUBEFLOW_FAILURE: Final = _JOB_FAILURE


def _job_defaults(success: str, failure: str, labels: dict[str, str] | None) -> dict[str, Any]:
    return {"success": success, "failure": failure, "labels": labels}


#: Success/failure conditions and primary-pod labels per trial job kind.
JOB_KIND_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "Job": _job_defaults(_JOB_SUCCESS, _JOB_FAILURE, None),
    **{
        kind: _job_defaults(_KUBEFLOW_SUCCESS, _KUBEFLOW_FAILURE, {"training.kubeflow.org/job-role": "master"})
        for kind in ("TFJob", "PyTorchJob", "XGBoostJob", "MPIJob")
    },
    "TrainJob": _job_defaults(
        _JOB_SUCCESS,
        _JOB_FAILURE,
        {"jobset.sigs.k8s.io/replicatedjob-name": "node", "batch.kubernetes.io/job-completion-index": "0"},
    ),
}


def default_experiment(experiment: Experiment) -> Experiment:
    """Return ``experiment`` with Katib's defaults filled in; set values are never changed."""
    result = experiment.model_copy(deep=True)
    spec = result.spec if result.spec is not None else ExperimentSpec()
    result.spec = spec
    if spec.parallel_trial_count is None:
        spec.parallel_trial_count = DEFAULT_PARALLEL_TRIAL_COUNT
    if not spec.resume_policy:
        spec.resume_policy = constants.ResumePolicy.NEVER
    if spec.objective is not None:
        spec.objective = _default_strategies(spec.objective)
    if spec.trial_template is not None:
        _default_trial_template(spec.trial_template)
    spec.metrics_collector_spec = _default_collector(spec.metrics_collector_spec)
    for parameter in spec.parameters or ():
        if parameter.feasible_space is not None and not parameter.feasible_space.distribution:
            parameter.feasible_space.distribution = constants.Distribution.UNIFORM
    return result


def _default_strategies(objective: ObjectiveSpec) -> ObjectiveSpec:
    # Katib gives additional metrics the objective's own min/max (its code, not its comment).
    if objective.type == ObjectiveType.MINIMIZE:
        strategy = MetricStrategyType.MIN
    elif objective.type == ObjectiveType.MAXIMIZE:
        strategy = MetricStrategyType.MAX
    else:
        strategy = MetricStrategyType.LATEST
    strategies = list(objective.metric_strategies or [])
    known = {s.name for s in strategies}
    for name in [objective.objective_metric_name, *(objective.additional_metric_names or [])]:
        if name and name not in known:
            strategies.append(MetricStrategy(name=name, value=str(strategy)))
            known.add(name)
    objective.metric_strategies = strategies or None
    return objective


def _default_trial_template(template: TrialTemplate) -> None:
    kind = (template.trial_spec or {}).get("kind")
    defaults = JOB_KIND_DEFAULTS.get(kind) if isinstance(kind, str) else None
    if defaults is None:
        return
    if not template.success_condition:
        template.success_condition = defaults["success"]
    if not template.failure_condition:
        template.failure_condition = defaults["failure"]
    if template.primary_pod_labels is None and defaults["labels"] is not None:
        template.primary_pod_labels = dict(defaults["labels"])


def _default_collector(spec: MetricsCollectorSpec | None) -> MetricsCollectorSpec:
    if spec is None:
        spec = MetricsCollectorSpec()
    if spec.collector is None:
        spec.collector = CollectorSpec(kind=CollectorKind.STDOUT)
    elif not spec.collector.kind:
        spec.collector.kind = CollectorKind.STDOUT
    kind = spec.collector.kind
    if kind == CollectorKind.FILE:
        source = spec.source or SourceSpec()
        if source.file_system_path is None:
            source.file_system_path = FileSystemPath(kind=FileSystemKind.FILE, path=DEFAULT_METRICS_FILE)
        if not source.file_system_path.format:
            source.file_system_path.format = FileFormat.TEXT
        spec.source = source
    elif kind == CollectorKind.TENSORFLOW_EVENT:
        source = spec.source or SourceSpec()
        if source.file_system_path is None:
            source.file_system_path = FileSystemPath(kind=FileSystemKind.DIRECTORY, path=DEFAULT_TFEVENT_DIR)
        spec.source = source
    elif kind == CollectorKind.PROMETHEUS_METRIC:
        source = spec.source or SourceSpec()
        http_get = dict(source.http_get or {})
        http_get.setdefault("path", DEFAULT_PROMETHEUS_PATH)
        http_get.setdefault("port", DEFAULT_PROMETHEUS_PORT)
        source.http_get = http_get
        spec.source = source
    return spec


def repair_raw_experiment(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Move list-valued ``feasibleSpace.distribution`` into ``feasibleSpace.list``.

    Works on the raw API JSON (the model types ``distribution`` as a string, so such input
    would not even parse). Returns the repaired copy and the paths of the fields moved.
    """
    repaired = copy.deepcopy(raw)
    moved: list[str] = []
    parameters = (repaired.get("spec") or {}).get("parameters")
    if not isinstance(parameters, list):
        return repaired, moved
    for index, parameter in enumerate(parameters):
        space = parameter.get("feasibleSpace") if isinstance(parameter, dict) else None
        if not isinstance(space, dict) or not isinstance(space.get("distribution"), list):
            continue
        values = space.pop("distribution")
        if not space.get("list"):
            space["list"] = [str(v) for v in values]
        moved.append(f"spec.parameters[{index}].feasibleSpace.distribution")
    return repaired, moved
