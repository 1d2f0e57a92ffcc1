"""One reconcile pass of a Trial as two pure steps around the metric read (docs/katib-compat.md#trial-reconcile).

``plan_trial(trial, job)`` says what to do before reading metrics: finalizer, Created, create or
delete the job, the job's phase, and whether the observation must be read. The shell reads the
metric logs when ``plan.read_observation`` and calls ``conclude(trial, plan, rows)``, which returns
the status to write, the sentinel row to report first (Push), Events, and whether to requeue
(pull mode waiting for its collector). Used by the trial controller and local mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from katib_core import aggregation, constants, early_stopping, job_conditions, trial_conditions
from katib_core.constants import CollectorKind, TrialConditionType
from katib_core.enums import StrEnum
from katib_core.events import NORMAL, WARNING, Event
from katib_core.job_conditions import JobState
from katib_core.models import Trial, TrialStatus
from katib_core.trial_conditions import JobPhase

#: Pull mode re-checks a succeeded job for its collector's metrics this often (Katib: 1 s).
PULL_REQUEUE_SECONDS: Final = 1.0
#: The time stamp of the sentinel row a Push trial gets when it never reported its objective.
SENTINEL_TIME: Final = "0001-01-01T00:00:00Z"


class JobAction(StrEnum):
    NONE = "none"
    CREATE = "create"
    DELETE = "delete"


class FinalizerAction(StrEnum):
    NONE = "none"
    ADD = "add"
    #: Delete the trial's metric logs, then remove the finalizer.
    CLEAN_AND_REMOVE = "clean-and-remove"


@dataclass(frozen=True)
class TrialPlan:
    """Before the metric read: what to do with the finalizer and the job, and the job's phase."""

    finalizer: FinalizerAction
    job_action: JobAction
    #: Status after Created (if it was not); the rest comes from ``conclude``.
    status: TrialStatus
    #: None when the job is not (or no longer) looked at.
    job: JobState | None
    read_observation: bool
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class TrialUpdate:
    """After the metric read: the status to write and what must happen first."""

    status: TrialStatus
    #: Push: report this ``(time_stamp, metric, value)`` row before writing ``status`` (MetricsUnavailable).
    sentinel: tuple[str, str, str] | None = None
    requeue_after: float | None = None
    events: tuple[Event, ...] = ()


def collector_kind(trial: Trial) -> str:
    collector = trial.spec.metrics_collector.collector if trial.spec and trial.spec.metrics_collector else None
    return (collector.kind if collector else None) or CollectorKind.STDOUT


def job_name(trial: Trial) -> str:
    run_spec = (trial.spec.run_spec if trial.spec else None) or {}
    return str((run_spec.get("metadata") or {}).get("name") or (trial.metadata.name if trial.metadata else ""))


def plan_trial(trial: Trial, job: Mapping[str, Any] | None, *, now: str) -> TrialPlan:
    """Plan the part of a pass that comes before reading metrics.

    Args:
        trial: the Trial as stored.
        job: the trial's job object (its API JSON), None if it does not exist.
        now: the current time, RFC 3339.

    Raises:
        ValidationError: a success/failure condition uses gjson syntax we do not support.
    """
    meta = trial.metadata
    status = trial.status.model_copy(deep=True) if trial.status else TrialStatus()
    finalizers = (meta.finalizers if meta else None) or []
    if meta is not None and meta.deletion_timestamp:
        action = (
            FinalizerAction.CLEAN_AND_REMOVE
            if constants.CLEAN_METRICS_FINALIZER in finalizers
            else FinalizerAction.NONE
        )
        return TrialPlan(action, JobAction.NONE, status, None, False)
    finalizer = FinalizerAction.NONE if constants.CLEAN_METRICS_FINALIZER in finalizers else FinalizerAction.ADD
    if not trial_conditions.is_created(status):
        status = trial_conditions.mark_created(status, now=now)
    completed = trial_conditions.is_completed(status)
    events: list[Event] = []
    if job is None:
        if completed:
            return TrialPlan(finalizer, JobAction.NONE, status, None, False)
        # Katib treats the job it just created as deployed: the same pass marks it Running.
        events.append(Event(NORMAL, "JobCreated", f"Job {job_name(trial)} has been created"))
        state: JobState | None = JobState(JobPhase.RUNNING)
        return TrialPlan(finalizer, JobAction.CREATE, status, state, False, tuple(events))
    if completed and not (trial.spec and trial.spec.retain_run):
        events.append(Event(NORMAL, "JobDeleted", f"Job {job_name(trial)} has been deleted"))
        return TrialPlan(finalizer, JobAction.DELETE, status, None, False, tuple(events))
    early_stopped = trial_conditions.holds(status, TrialConditionType.EARLY_STOPPED)
    if completed and not early_stopped:
        return TrialPlan(finalizer, JobAction.NONE, status, None, False)
    spec = trial.spec
    state = job_conditions.job_state(
        job,
        success_condition=(spec.success_condition if spec else None) or "",
        failure_condition=(spec.failure_condition if spec else None) or "",
    )
    # A Push trial with stop rules may end either way after its verdict: its logs say which it was.
    stoppable = bool(spec and spec.early_stopping_rules) and collector_kind(trial) == CollectorKind.PUSH
    read = state.phase == JobPhase.SUCCEEDED or early_stopped or (stoppable and state.phase == JobPhase.FAILED)
    return TrialPlan(finalizer, JobAction.NONE, status, state, read, tuple(events))


def conclude(  # noqa: PLR0911, PLR0912 - one return per outcome of the conditions rules reads best
    trial: Trial, plan: TrialPlan, rows: Sequence[aggregation.Row] | None, *, now: str
) -> TrialUpdate:
    """Finish the pass: observation from ``rows`` (read when ``plan.read_observation``), then conditions
    (docs/katib-compat.md#trial-conditions).

    Push never waits: a succeeded job without its objective becomes MetricsUnavailable once the
    sentinel row is stored. Pull kinds requeue after 1 s until their collector has reported.

    Raises:
        ValidationError: a metric log has a malformed timestamp.
    """
    status = plan.status.model_copy(deep=True)
    state = plan.job
    if state is None:
        return TrialUpdate(status, events=plan.events)
    events = list(plan.events)
    spec = trial.spec
    objective = spec.objective if spec else None
    if plan.read_observation and rows is not None:
        observation = aggregation.aggregate(rows, (objective.metric_strategies if objective else None) or [])
        if observation is not None:
            status.observation = observation
    early_stopped = trial_conditions.holds(status, TrialConditionType.EARLY_STOPPED)
    name = job_name(trial)
    push = collector_kind(trial) == CollectorKind.PUSH
    stopped = None if early_stopped or not push else _early_stopped(status, state, rows, name, now=now)
    if stopped is not None:
        return TrialUpdate(stopped[0], events=(*events, stopped[1]))
    if state.phase == JobPhase.SUCCEEDED and status.observation is None and not push:
        return TrialUpdate(plan.status, requeue_after=PULL_REQUEUE_SECONDS, events=plan.events)
    with_observation = trial.model_copy(update={"status": status})
    if state.phase == JobPhase.SUCCEEDED:
        if trial_conditions.is_observation_available(with_observation):
            if not trial_conditions.holds(status, TrialConditionType.SUCCEEDED) and not early_stopped:
                status = trial_conditions.mark_succeeded(
                    status, job_reason=state.reason, job_message=state.message, now=now
                )
                events.append(Event(NORMAL, "JobSucceeded", f"Job {name} has succeeded"))
            return TrialUpdate(status, events=tuple(events))
        if trial_conditions.holds(status, TrialConditionType.METRICS_UNAVAILABLE):
            return TrialUpdate(status, events=tuple(events))
        sentinel = None
        if push and objective is not None and objective.objective_metric_name:
            sentinel = (SENTINEL_TIME, objective.objective_metric_name, constants.UNAVAILABLE)
        status = trial_conditions.mark_metrics_unavailable(
            status, job_reason=state.reason, job_message=state.message, now=now
        )
        events.append(Event(WARNING, "MetricsUnavailable", f"Metrics are not available for Job {name}"))
        return TrialUpdate(status, sentinel=sentinel, events=tuple(events))
    if state.phase == JobPhase.FAILED:
        if not trial_conditions.holds(status, TrialConditionType.FAILED) and not early_stopped:
            status = trial_conditions.mark_failed(status, job_reason=state.reason, job_message=state.message, now=now)
            events.append(
                Event(
                    NORMAL, "JobFailed", f"Job {name} has failed. Job message: {state.message}, reason: {state.reason}"
                )
            )
        return TrialUpdate(status, events=tuple(events))
    if not trial_conditions.holds(status, TrialConditionType.RUNNING) and not early_stopped:
        status = trial_conditions.mark_running(status, now=now)
        events.append(Event(NORMAL, "JobRunning", f"Job {name} is running"))
    return TrialUpdate(status, events=tuple(events))


def _early_stopped(
    status: TrialStatus, state: JobState, rows: Sequence[aggregation.Row] | None, name: str, *, now: str
) -> tuple[TrialStatus, Event] | None:
    """A finished Push job whose logs hold the SDK's early-stop marker: EarlyStopped (Katib's
    SetTrialStatus, for Push). None otherwise."""
    finished = state.phase in (JobPhase.SUCCEEDED, JobPhase.FAILED)
    if not finished or rows is None or not early_stopping.is_marked(rows):
        return None
    event = Event(NORMAL, "TrialEarlyStopped", f"Trial {name} has been early stopped")
    return trial_conditions.mark_early_stopped(status, now=now), event
