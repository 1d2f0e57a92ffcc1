"""What a user reads of an Experiment's trials: per metric the value its strategy picks, best first.

The CLI's tables and ``-o json|csv``, the progress lines of local mode and
``KatibClient.trials_dataframe`` all read trials through here, so they agree on which value
stands for a trial (the one the optimum is chosen by) and on the order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from katib_core import aggregation, constants, trial_conditions
from katib_core.models import Experiment, Trial


def trial_condition(trial: Trial) -> str:
    current = [
        c for c in (trial.status.conditions if trial.status else None) or () if c.status == constants.CONDITION_TRUE
    ]
    return current[-1].type if current else "Pending"


def objective_metric(experiment: Experiment) -> str:
    objective = experiment.spec.objective if experiment.spec else None
    return (objective.objective_metric_name if objective else None) or ""


def parameter_names(trials: Sequence[Trial]) -> list[str]:
    return sorted({a.name for t in trials for a in (t.spec.parameter_assignments if t.spec else None) or () if a.name})


def assignment(trial: Trial, name: str) -> str:
    for a in (trial.spec.parameter_assignments if trial.spec else None) or ():
        if a.name == name:
            return a.value or ""
    return ""


@dataclass(frozen=True)
class TrialRow:
    """One trial as a user reads it; values are the exact strings stored."""

    name: str
    status: str
    parameters: dict[str, str] = field(default_factory=dict)
    #: Per metric (the objective first), the value its strategy picks: what the optimum is chosen by.
    metrics: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    start: str = ""
    completion: str = ""


def metric_names(experiment: Experiment) -> list[str]:
    """The objective metric, then the additional metrics."""
    objective = experiment.spec.objective if experiment.spec else None
    names = [objective_metric(experiment), *((objective.additional_metric_names if objective else None) or [])]
    return [n for n in dict.fromkeys(names) if n]


def strategy(experiment: Experiment, metric: str) -> str:
    """The strategy a metric's value is read by: its ``metricStrategies`` entry, else Katib's
    default (the objective type's min/max for every metric)."""
    objective = experiment.spec.objective if experiment.spec else None
    found = aggregation.strategy_of(objective.metric_strategies if objective else None, metric)
    if found:
        return found
    kind = (objective.type if objective else None) or ""
    return constants.MetricStrategyType.MAX if kind == "maximize" else constants.MetricStrategyType.MIN


def trial_rows(experiment: Experiment, trials: Sequence[Trial]) -> list[TrialRow]:
    """Every trial, best first by the objective as its strategy reads it; trials without a value
    after, in creation order."""
    metrics = metric_names(experiment)
    names = parameter_names(trials)
    rows = []
    trials = sorted(trials, key=lambda t: ((t.metadata.creation_timestamp if t.metadata else None) or "", _name(t)))
    for trial in trials:
        observed = {
            m.name: m
            for m in ((trial.status.observation.metrics if trial.status and trial.status.observation else None) or ())
        }
        values = {
            name: aggregation.strategy_value(observed[name], strategy(experiment, name)) if name in observed else ""
            for name in metrics
        }
        status = trial.status
        rows.append(
            TrialRow(
                name=(trial.metadata.name if trial.metadata else None) or "",
                status=trial_condition(trial),
                parameters={n: assignment(trial, n) for n in names},
                metrics=values,
                reason=trial_conditions.failure_reason(trial) or "",
                start=(status.start_time if status else None) or "",
                completion=(status.completion_time if status else None) or "",
            )
        )
    created = {id(row): index for index, row in enumerate(rows)}
    objective = metrics[0] if metrics else ""
    maximize = (experiment.spec.objective.type if experiment.spec and experiment.spec.objective else "") == "maximize"

    def order(row: TrialRow) -> tuple[int, float, int]:
        number = aggregation.parse_number(row.metrics.get(objective, ""))
        if number is None or math.isnan(number):
            return (1, 0.0, created[id(row)])
        return (0, -number if maximize else number, created[id(row)])

    return sorted(rows, key=order)


def typed(value: str) -> Any:
    """A stored string as a program wants it: an int, a float, or the string itself."""
    if value.lstrip("+-").isdigit():
        return int(value)
    number = aggregation.parse_number(value)
    return value if number is None else number


def _name(trial: Trial) -> str:
    return (trial.metadata.name if trial.metadata else None) or ""
