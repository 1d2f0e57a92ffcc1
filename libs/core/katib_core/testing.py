"""Builders of Katib objects for tests (core, algorithms, controllers, local mode): small, valid, Push by default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from katib_core import constants
from katib_core.models import (
    Condition,
    Experiment,
    Metric,
    ObjectMeta,
    Observation,
    ParameterAssignment,
    Trial,
    TrialSpec,
    TrialStatus,
)
from katib_core.suggestions import SuggestionTrial

T0 = "2024-01-01T00:00:00Z"


def job_template(command: list[str] | None = None) -> dict[str, Any]:
    """A batch/v1 Job template whose container gets the trial name and ``lr`` through trial parameters."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "training-container",
                            "image": "python:3.11",
                            "command": command or ["python", "-c", "print('lr=${trialParameters.lr}')"],
                            "env": [{"name": constants.TRIAL_NAME_ENV, "value": "${trialParameters.trialName}"}],
                        }
                    ],
                }
            },
        },
    }


def experiment_dict(
    name: str = "exp",
    *,
    namespace: str = "ns",
    max_trials: int | None = 4,
    parallel: int | None = 2,
    max_failed: int | None = None,
    goal: float | None = None,
    kind: str = constants.CollectorKind.PUSH,
    algorithm: str = "random",
    settings: dict[str, str] | None = None,
    objective_type: str = "minimize",
    parameters: list[dict[str, Any]] | None = None,
    template: dict[str, Any] | None = None,
    resume_policy: str | None = None,
) -> dict[str, Any]:
    """An Experiment's API JSON: minimize ``loss`` over ``lr``; every trial parameter referenced."""
    spec: dict[str, Any] = {
        "objective": {"type": objective_type, "objectiveMetricName": "loss", "additionalMetricNames": ["acc"]},
        "algorithm": {
            "algorithmName": algorithm,
            **({"algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()]} if settings else {}),
        },
        "parameters": parameters
        or [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.1"}}],
        "metricsCollectorSpec": {"collector": {"kind": kind}},
        "trialTemplate": {
            "primaryContainerName": "training-container",
            "trialParameters": [
                {"name": "lr", "reference": "lr"},
                {"name": "trialName", "reference": "${trialSpec.Name}"},
            ],
            "trialSpec": template or job_template(),
        },
    }
    if goal is not None:
        spec["objective"]["goal"] = goal
    for key, value in (
        ("maxTrialCount", max_trials),
        ("parallelTrialCount", parallel),
        ("maxFailedTrialCount", max_failed),
    ):
        if value is not None:
            spec[key] = value
    if resume_policy:
        spec["resumePolicy"] = resume_policy
    return {
        "apiVersion": constants.API_VERSION,
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": spec,
    }


def experiment(name: str = "exp", **kwargs: Any) -> Experiment:
    return Experiment.from_api(experiment_dict(name, **kwargs))


def trial(
    name: str,
    *conditions: str,
    loss: str | None = None,
    lr: str = "0.05",
    experiment_name: str = "exp",
    strategy: str = "min",
    kind: str = constants.CollectorKind.PUSH,
) -> Trial:
    """A Trial with the given conditions holding (in order) and, if ``loss`` is given, its observation."""
    status = TrialStatus(
        conditions=[Condition(type=c, status=constants.CONDITION_TRUE, reason=c, message=c) for c in conditions] or None
    )
    if loss is not None:
        status.observation = Observation(metrics=[Metric(name="loss", min=loss, max=loss, latest=loss)])
    return Trial(
        metadata=ObjectMeta(name=name, namespace="ns", labels={constants.EXPERIMENT_LABEL: experiment_name}),
        spec=TrialSpec.from_api(
            {
                "objective": {
                    "type": "minimize" if strategy == "min" else "maximize",
                    "objectiveMetricName": "loss",
                    "metricStrategies": [{"name": "loss", "value": strategy}],
                },
                "metricsCollector": {"collector": {"kind": kind}},
                "successCondition": 'status.conditions.#(type=="Complete")#|#(status=="True")#',
                "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
            }
        ).model_copy(update={"parameter_assignments": [ParameterAssignment(name="lr", value=lr)]}),
        status=status,
    )


def finish_running(
    trials: dict[str, SuggestionTrial],
    value_of: Callable[[dict[str, str]], float],
    *,
    metric: str = "loss",
    failed: frozenset[str] = frozenset(),
) -> None:
    """Every Running trial of an algorithm test's history ends: Failed if named in ``failed``,
    else Succeeded with ``metric`` = ``value_of`` its assignments (in place)."""
    for name, trial in trials.items():
        if trial.condition != constants.TrialConditionType.RUNNING:
            continue
        if name in failed:
            trials[name] = SuggestionTrial(name, trial.assignments, constants.TrialConditionType.FAILED)
            continue
        value = str(value_of(dict(trial.assignments)))
        trials[name] = SuggestionTrial(
            name, trial.assignments, constants.TrialConditionType.SUCCEEDED, ((metric, value),)
        )
