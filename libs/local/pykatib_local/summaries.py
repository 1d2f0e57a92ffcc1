"""Plain-text views of experiments and trials for the CLI (pure functions over the models)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from katib_core import aggregation, constants, trial_conditions
from katib_core.models import Experiment, Trial


@dataclass(frozen=True)
class Counts:
    done: int
    budget: int | None
    line: str


def condition(experiment: Experiment) -> str:
    current = [
        c
        for c in (experiment.status.conditions if experiment.status else None) or ()
        if c.status == constants.CONDITION_TRUE
    ]
    return current[-1].type if current else "Pending"


def failed(experiment: Experiment) -> bool:
    return condition(experiment) == constants.ExperimentConditionType.FAILED


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


def trial_value(trial: Trial, metric: str) -> str:
    observation = trial.status.observation if trial.status else None
    for m in (observation.metrics if observation else None) or ():
        if m.name == metric:
            return m.latest or ""
    return ""


def best_trial(experiment: Experiment) -> str:
    optimal = experiment.status.current_optimal_trial if experiment.status else None
    return (optimal.best_trial_name if optimal else None) or ""


def counts(experiment: Experiment, trials: Sequence[Trial]) -> Counts:
    """Trials done against the budget, and a one-line summary with the best value so far."""
    states = [trial_condition(t) for t in trials]
    finished = {"Succeeded", "Failed", "MetricsUnavailable", "Killed", "EarlyStopped"}
    done = sum(1 for s in states if s in finished)
    running = sum(1 for s in states if s == "Running")
    bad = sum(1 for s in states if s in ("Failed", "MetricsUnavailable"))
    value = best_value(experiment)
    best = f"  best {objective_metric(experiment)}={value}" if value else ""
    budget = experiment.spec.max_trial_count if experiment.spec else None
    return Counts(done, budget, f"running {running}  failed {bad}{best}")


def best_value(experiment: Experiment) -> str:
    """The optimal trial's objective value as the objective reads it (min when minimizing, …)."""
    optimal = experiment.status.current_optimal_trial if experiment.status else None
    metric = objective_metric(experiment)
    kind = (experiment.spec.objective.type if experiment.spec and experiment.spec.objective else "") or ""
    for m in (optimal.observation.metrics if optimal and optimal.observation else None) or ():
        if m.name == metric:
            return {"minimize": m.min, "maximize": m.max}.get(kind, m.latest) or ""
    return ""


def optimal_text(experiment: Experiment, trials: Sequence[Trial] = ()) -> str:
    """The optimal trial and its hyperparameters, as the CLI prints them at the end — or, when
    no trial reported the objective, why: the first failed trial's error."""
    optimal = experiment.status.current_optimal_trial if experiment.status else None
    if optimal is None or not optimal.best_trial_name:
        failure = trial_conditions.first_failure(trials)
        if failure is not None:
            return (
                f"experiment {condition(experiment)}, but no trial reported the objective;"
                f" first failed trial {failure[0]}: {failure[1]}"
            )
        return f"experiment {condition(experiment)}: no trial reported the objective"
    params = "\n".join(f"  {a.name} = {a.value}" for a in optimal.parameter_assignments or ())
    metrics = ", ".join(
        f"{m.name}: min {m.min} max {m.max} latest {m.latest}"
        for m in (optimal.observation.metrics if optimal.observation else None) or ()
    )
    return f"experiment {condition(experiment)}; best trial {optimal.best_trial_name} ({metrics})\n{params}"


@dataclass(frozen=True)
class TrialRow:
    """One trial as ``pykatib get trials`` shows it; values are the exact strings stored."""

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


def for_people(value: str) -> str:
    """A number rounded to 6 significant digits (integers as they are); anything else unchanged."""
    number = aggregation.parse_number(value)
    if number is None or not math.isfinite(number) or value.lstrip("+-").isdigit():
        return value
    return f"{number:.6g}"


def _name(trial: Trial) -> str:
    return (trial.metadata.name if trial.metadata else None) or ""
