"""Plain-text views of experiments and trials for the CLI (pure functions over the models)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from katib_core import aggregation, constants, trial_conditions
from katib_core.models import Experiment, Trial
from katib_core.trial_results import objective_metric, trial_condition


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


def for_people(value: str) -> str:
    """A number rounded to 6 significant digits (integers as they are); anything else unchanged."""
    number = aggregation.parse_number(value)
    if number is None or not math.isfinite(number) or value.lstrip("+-").isdigit():
        return value
    return f"{number:.6g}"
