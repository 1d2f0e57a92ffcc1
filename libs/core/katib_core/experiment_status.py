"""An Experiment's status from its Trials (docs/katib-compat.md#experiment-status): buckets, optimal trial, completion.

``summarize`` sorts trials into Katib's buckets and finds the best one; ``completion`` says
whether (and why) the Experiment is done; ``with_summary`` writes the counts, lists and
``currentOptimalTrial`` into a status. Called by ``planning`` (controllers and local mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from katib_core import aggregation, conditions, constants, trial_conditions
from katib_core.constants import ExperimentConditionType, ExperimentReason, TrialConditionType
from katib_core.enums import StrEnum
from katib_core.models import Experiment, ExperimentStatus, Observation, OptimalTrial, Trial

MSG_CREATED: Final = "Experiment is created"
MSG_RUNNING: Final = "Experiment is running"
MSG_RESTARTING: Final = "Experiment is restarted"
MSG_GOAL_REACHED: Final = "Experiment has succeeded because Objective goal has reached"
MSG_MAX_FAILED: Final = "Experiment has failed because max failed count has reached"
MSG_MAX_TRIALS: Final = "Experiment has succeeded because max trial count has reached"
MSG_SUGGESTION_END: Final = "Experiment has succeeded because suggestion service has reached the end"
MSG_SUGGESTION_FAILED: Final = "Suggestion has failed"


class Bucket(StrEnum):
    """Where a trial counts; checked in this order (a trial is in exactly one)."""

    KILLED = "Killed"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"
    EARLY_STOPPED = "EarlyStopped"
    RUNNING = "Running"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    PENDING = "Pending"


_ORDER: Final = (
    (TrialConditionType.KILLED, Bucket.KILLED),
    (TrialConditionType.FAILED, Bucket.FAILED),
    (TrialConditionType.SUCCEEDED, Bucket.SUCCEEDED),
    (TrialConditionType.EARLY_STOPPED, Bucket.EARLY_STOPPED),
    (TrialConditionType.RUNNING, Bucket.RUNNING),
    (TrialConditionType.METRICS_UNAVAILABLE, Bucket.METRICS_UNAVAILABLE),
)
ACTIVE: Final = frozenset({Bucket.RUNNING, Bucket.PENDING})


def bucket_of(trial: Trial) -> Bucket:
    """The bucket of ``trial``."""
    holding = trial_conditions.held(trial.status)
    for condition_type, bucket in _ORDER:
        if condition_type in holding:
            return bucket
    return Bucket.PENDING


def objective_value(trial: Trial) -> str:
    """The trial's objective value: its strategy's, falling back to ``latest``; ``unavailable`` if none."""
    observation = trial.status.observation if trial.status else None
    objective = trial.spec.objective if trial.spec else None
    if observation is None or objective is None:
        return constants.UNAVAILABLE
    name = objective.objective_metric_name
    strategy = aggregation.strategy_of(objective.metric_strategies, name)
    for metric in observation.metrics or ():
        if metric.name == name:
            return aggregation.strategy_value(metric, strategy)
    return constants.UNAVAILABLE


@dataclass(frozen=True)
class Summary:
    """Trials by bucket (names in the given order), the best trial and whether the goal is reached."""

    names: dict[Bucket, list[str]] = field(default_factory=dict)
    best: Trial | None = None
    goal_reached: bool = False

    def count(self, *buckets: Bucket) -> int:
        return sum(len(self.names.get(b, ())) for b in buckets)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.names.values())

    @property
    def active(self) -> int:
        return self.count(*ACTIVE)

    @property
    def completed(self) -> int:
        """Succeeded + Failed + Killed + EarlyStopped + MetricsUnavailable (MU counts as completed)."""
        return self.total - self.active

    @property
    def failed(self) -> int:
        """Failed + MetricsUnavailable (MU counts as failed, Katib PR #1877)."""
        return self.count(Bucket.FAILED, Bucket.METRICS_UNAVAILABLE)


def summarize(experiment: Experiment, trials: Sequence[Trial]) -> Summary:
    """Bucket ``trials`` (sorted by name, as the API lists them) and find the best one."""
    objective = experiment.spec.objective if experiment.spec else None
    kind = objective.type if objective else None
    goal = objective.goal if objective else None
    names: dict[Bucket, list[str]] = {b: [] for b in Bucket}
    best: Trial | None = None
    best_value: float | None = None
    goal_reached = False
    for trial in sorted(trials, key=lambda t: (t.metadata.name or "") if t.metadata else ""):
        names[bucket_of(trial)].append(trial.metadata.name or "" if trial.metadata else "")
        text = objective_value(trial)
        if text == constants.UNAVAILABLE:
            continue
        value = aggregation.parse_number(text)
        if value is None:  # Katib's quirk: a non-numeric objective makes that trial the best
            best = trial
            continue
        if best_value is None or _better(value, best_value, kind):
            best, best_value = trial, value
        if goal is not None and best_value is not None and _reached(best_value, goal, kind):
            goal_reached = True
    return Summary(names=names, best=best, goal_reached=goal_reached)


def _better(value: float, than: float, kind: str | None) -> bool:
    if kind == constants.ObjectiveType.MINIMIZE:
        return value < than
    if kind == constants.ObjectiveType.MAXIMIZE:
        return value > than
    return False


def _reached(value: float, goal: float, kind: str | None) -> bool:
    if kind == constants.ObjectiveType.MINIMIZE:
        return value <= goal
    if kind == constants.ObjectiveType.MAXIMIZE:
        return value >= goal
    return False


@dataclass(frozen=True, slots=True)
class Completion:
    """Why an Experiment is complete: condition ``Succeeded``/``Failed``, its reason and message."""

    condition: ExperimentConditionType
    reason: ExperimentReason
    message: str


def completion(experiment: Experiment, summary: Summary, *, suggestions_exhausted: bool) -> Completion | None:
    """Katib's completion rules, in order: goal, max failed (MU counts), max trials (MU counts), suggestion end."""
    spec = experiment.spec
    if summary.goal_reached:
        return Completion(ExperimentConditionType.SUCCEEDED, ExperimentReason.GOAL_REACHED, MSG_GOAL_REACHED)
    max_failed = spec.max_failed_trial_count if spec else None
    if max_failed is not None and summary.failed != 0 and summary.failed >= max_failed:
        return Completion(ExperimentConditionType.FAILED, ExperimentReason.FAILED, MSG_MAX_FAILED)
    max_trials = spec.max_trial_count if spec else None
    if max_trials is not None and summary.completed >= max_trials:
        return Completion(ExperimentConditionType.SUCCEEDED, ExperimentReason.MAX_TRIALS_REACHED, MSG_MAX_TRIALS)
    if suggestions_exhausted and summary.active == 0:
        return Completion(
            ExperimentConditionType.SUCCEEDED, ExperimentReason.SUGGESTION_END_REACHED, MSG_SUGGESTION_END
        )
    return None


def is_completed(status: ExperimentStatus | None) -> bool:
    return status is not None and (
        conditions.holds(status.conditions, ExperimentConditionType.SUCCEEDED)
        or conditions.holds(status.conditions, ExperimentConditionType.FAILED)
    )


def completed_reason(status: ExperimentStatus | None) -> str | None:
    """The reason of the holding Succeeded/Failed condition."""
    if status is None:
        return None
    for condition_type in (ExperimentConditionType.SUCCEEDED, ExperimentConditionType.FAILED):
        found = conditions.find(status.conditions, condition_type)
        if found is not None and found.status == constants.CONDITION_TRUE:
            return found.reason
    return None


def with_summary(status: ExperimentStatus, summary: Summary) -> ExperimentStatus:
    """``status`` with the bucket lists, counts and ``currentOptimalTrial`` of ``summary``."""
    result = status.model_copy()  # every field below is replaced, not mutated
    lists = summary.names

    def names(bucket: Bucket) -> list[str] | None:
        return list(lists.get(bucket, ())) or None

    result.running_trial_list = names(Bucket.RUNNING)
    result.pending_trial_list = names(Bucket.PENDING)
    result.failed_trial_list = names(Bucket.FAILED)
    result.succeeded_trial_list = names(Bucket.SUCCEEDED)
    result.killed_trial_list = names(Bucket.KILLED)
    result.early_stopped_trial_list = names(Bucket.EARLY_STOPPED)
    result.metrics_unavailable_trial_list = names(Bucket.METRICS_UNAVAILABLE)
    result.trials = summary.total
    result.trials_succeeded = summary.count(Bucket.SUCCEEDED)
    result.trials_failed = summary.count(Bucket.FAILED)
    result.trials_killed = summary.count(Bucket.KILLED)
    result.trials_pending = summary.count(Bucket.PENDING)
    result.trials_running = summary.count(Bucket.RUNNING)
    result.trials_early_stopped = summary.count(Bucket.EARLY_STOPPED)
    result.trial_metrics_unavailable = summary.count(Bucket.METRICS_UNAVAILABLE)
    best = summary.best
    if best is not None:
        result.current_optimal_trial = OptimalTrial(
            best_trial_name=best.metadata.name if best.metadata else None,
            parameter_assignments=[
                a.model_copy() for a in (best.spec.parameter_assignments if best.spec else None) or []
            ],
            observation=(
                best.status.observation.model_copy(deep=True)
                if best.status and best.status.observation
                else Observation(metrics=[])
            ),
        )
    return result


def mark(
    status: ExperimentStatus, condition_type: ExperimentConditionType, reason: str, message: str, *, now: str
) -> ExperimentStatus:
    """Set an Experiment condition; completing (Succeeded/Failed) flips Running to False and sets ``completionTime``."""
    result = status.model_copy()  # conditions are rebuilt by conditions.put, never mutated
    current = result.conditions
    if condition_type in (ExperimentConditionType.SUCCEEDED, ExperimentConditionType.FAILED):
        current = conditions.stop_running(current, now=now)
        result.completion_time = now
    result.conditions = conditions.put(current, condition_type, reason=reason, message=message, now=now)
    return result
