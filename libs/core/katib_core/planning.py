"""The experiment reconcile planner: (Experiment, its Trials, its Suggestion) → what to do next.

One pure function, ``plan_experiment``, decides for the Kubernetes controller and for local
mode alike: the status to write, the Suggestion record to write, the Trials to create (every
issued assignment that has no Trial yet) and how many new assignments to ask the algorithm for.
A shell runs it in a loop::

    plan = plan_experiment(experiment, trials, suggestion, now=now)
    if plan.suggestion_changed: suggestion = persist(plan.suggestion)        # durable first
    if plan.request is not None:
        reply = algorithm.suggest(plan.request)                              # katib_suggest
        suggestion = persist(suggestions.record(plan.suggestion, plan.experiment, reply, ...))
        plan = with_recorded(plan, suggestion)                               # now has the trials
    create(plan.trials_to_create); write(plan.status)

Trials are only ever created from the Suggestion record, by name, so a restart between any two
steps repeats work (409 on create) but never duplicates it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from katib_core import conditions, constants, defaulting, experiment_status, rendering, suggestions
from katib_core.constants import ExperimentConditionType, ExperimentReason, ResumePolicy, SuggestionConditionType
from katib_core.errors import ValidationError
from katib_core.events import Event
from katib_core.experiment_status import Summary
from katib_core.models import Experiment, ExperimentStatus, Suggestion, Trial

_RESTARTABLE = (ResumePolicy.LONG_RUNNING, ResumePolicy.FROM_VOLUME)


@dataclass(frozen=True)
class ExperimentPlan:
    """What one reconcile pass should do.

    Attributes:
        experiment: the Experiment with Katib's defaults applied (in memory; the spec is not written).
        status: the Experiment status to write (unchanged objects compare equal to the old one).
        suggestion: the Suggestion record to create or update when ``suggestion_changed``.
        trials_to_create: Trials for issued assignments that have no Trial yet.
        request: ask the algorithm for ``request.count`` assignments, then ``suggestions.record`` and re-plan.
        finished: complete and no trial active: nothing will change until the spec does.
        events: Events to post on the Experiment.
    """

    experiment: Experiment
    status: ExperimentStatus
    suggestion: Suggestion
    suggestion_changed: bool
    trials_to_create: tuple[Trial, ...] = ()
    request: suggestions.SuggestionRequest | None = None
    finished: bool = False
    summary: Summary = field(default_factory=Summary)
    events: tuple[Event, ...] = ()


def plan_experiment(
    experiment: Experiment,
    trials: Sequence[Trial],
    suggestion: Suggestion | None,
    *,
    now: str,
    template: Mapping[str, Any] | None = None,
) -> ExperimentPlan:
    """Plan one reconcile pass of ``experiment`` (see the module docstring).

    Args:
        experiment: the Experiment as stored (defaults are applied here if the webhook did not).
        trials: every Trial of the Experiment (label ``katib.kubeflow.org/experiment``).
        suggestion: its Suggestion record, None if not created yet.
        now: the current time, RFC 3339.
        template: the trial job template when it comes from a ConfigMap (else the Experiment's).

    Raises:
        ValidationError: a Trial cannot be rendered from the template (a permanent error).
    """
    # Default a copy without the status: with 1,000s of trials the status is most of the object.
    stored_status = experiment.status
    experiment = defaulting.default_experiment(experiment.model_copy(update={"status": None}))
    experiment.status = stored_status
    spec = experiment.spec
    assert spec is not None  # default_experiment always sets it
    status = stored_status.model_copy() if stored_status else ExperimentStatus()
    events: list[Event] = []
    record = suggestion if suggestion is not None else suggestions.new_suggestion(experiment, now=now)
    changed = suggestion is None

    if not conditions.holds(status.conditions, ExperimentConditionType.CREATED):
        status.start_time = status.start_time or now
        status = experiment_status.mark(
            status, ExperimentConditionType.CREATED, ExperimentReason.CREATED, experiment_status.MSG_CREATED, now=now
        )
    summary = experiment_status.summarize(experiment, trials)
    status = experiment_status.with_summary(status, summary)

    if experiment_status.is_completed(status) and _restart_wanted(experiment, status, summary):
        status.conditions = conditions.put(
            conditions.remove(status.conditions, ExperimentConditionType.SUCCEEDED),
            ExperimentConditionType.RESTARTING,
            reason=ExperimentReason.RESTARTING,
            message=experiment_status.MSG_RESTARTING,
            now=now,
        )
        status.completion_time = None
        if suggestions.is_succeeded(record) and not suggestions.is_exhausted(record):
            record, changed = suggestions.restart(record, now=now), True

    if experiment_status.is_completed(status):
        return _completed(experiment, status, record, changed, summary, events, now=now)

    if suggestions.is_failed(record):
        status = experiment_status.mark(
            status,
            ExperimentConditionType.FAILED,
            ExperimentReason.FAILED,
            experiment_status.MSG_SUGGESTION_FAILED,
            now=now,
        )
        return _completed(experiment, status, record, changed, summary, events, now=now)

    existing = {t.metadata.name for t in trials if t.metadata and t.metadata.name}
    issued = suggestions.issued(record)
    unfulfilled = [a for a in issued if a.name not in existing]
    # Issued assignments still without a Trial are active work: the suggestion end waits for them.
    exhausted = suggestions.is_exhausted(record) and not unfulfilled
    done = experiment_status.completion(experiment, summary, suggestions_exhausted=exhausted)
    if done is not None:
        status = experiment_status.mark(status, done.condition, done.reason, done.message, now=now)
        return _completed(experiment, status, record, changed, summary, events, now=now)

    status = _mark_running(status, now=now)
    to_create = tuple(rendering.build_trial(experiment, a, template=template) for a in unfulfilled)
    request = None
    count = _new_count(experiment, summary, pending=len(unfulfilled), known=len(existing | {a.name for a in issued}))
    if count > 0 and not suggestions.is_exhausted(record):
        request = suggestions.SuggestionRequest(
            experiment=suggestions.request_experiment(experiment, record),
            trials=None,
            source=tuple(trials),
            issued=tuple(issued),
            count=count,
            key=suggestions.experiment_key(experiment),
        )
    return ExperimentPlan(
        experiment=experiment,
        status=status,
        suggestion=record,
        suggestion_changed=changed,
        trials_to_create=to_create,
        request=request,
        summary=summary,
        events=tuple(events),
    )


def with_recorded(
    plan: ExperimentPlan, suggestion: Suggestion, *, template: Mapping[str, Any] | None = None
) -> ExperimentPlan:
    """``plan`` once the algorithm's answer is recorded in ``suggestion``: its Trials added, the request done.

    The same as planning again with ``suggestion``, without recomputing the status over every
    trial; the one difference: an answer that exhausted the algorithm with nothing new is marked
    ``ExperimentSuggestionEndReached`` by the next pass, not this one.
    """
    known = {t.metadata.name for t in plan.trials_to_create if t.metadata}
    known |= {a.name for a in suggestions.issued(plan.suggestion)}
    fresh = [a for a in suggestions.issued(suggestion) if a.name not in known]
    added = tuple(rendering.build_trial(plan.experiment, a, template=template) for a in fresh)
    return replace(plan, suggestion=suggestion, trials_to_create=plan.trials_to_create + added, request=None)


def _new_count(experiment: Experiment, summary: Summary, *, pending: int, known: int) -> int:
    """How many new assignments keep ``parallelTrialCount`` trials active without passing ``maxTrialCount``.

    MetricsUnavailable trials count as completed here too (docs/katib-compat.md#experiment-status); issued
    assignments without a Trial yet count as active.
    """
    spec = experiment.spec
    parallel = (spec.parallel_trial_count if spec else None) or defaulting.DEFAULT_PARALLEL_TRIAL_COUNT
    maximum = spec.max_trial_count if spec else None
    wanted = parallel if maximum is None else min(parallel, maximum - summary.completed)
    count = wanted - summary.active - pending
    if maximum is not None:
        count = min(count, maximum - known)
    return max(0, count)


def _restart_wanted(experiment: Experiment, status: ExperimentStatus, summary: Summary) -> bool:
    """Succeeded by reaching maxTrialCount, resumable policy, and maxTrialCount raised since."""
    spec = experiment.spec
    if spec is None or spec.resume_policy not in _RESTARTABLE:
        return False
    if not conditions.holds(status.conditions, ExperimentConditionType.SUCCEEDED):
        return False
    if experiment_status.completed_reason(status) != ExperimentReason.MAX_TRIALS_REACHED:
        return False
    if spec.max_trial_count is None:
        return summary.total != 0
    return spec.max_trial_count > summary.total


def _mark_running(status: ExperimentStatus, *, now: str) -> ExperimentStatus:
    result = status
    if conditions.holds(result.conditions, ExperimentConditionType.RESTARTING):
        restarting = conditions.find(result.conditions, ExperimentConditionType.RESTARTING)
        assert restarting is not None
        result = result.model_copy(deep=True)
        result.conditions = conditions.put(
            result.conditions,
            ExperimentConditionType.RESTARTING,
            status=constants.CONDITION_FALSE,
            reason=restarting.reason or ExperimentReason.RESTARTING,
            message=restarting.message or experiment_status.MSG_RESTARTING,
            now=now,
        )
    running = conditions.find(result.conditions, ExperimentConditionType.RUNNING)
    if running is not None and running.status == constants.CONDITION_TRUE:
        return result
    return experiment_status.mark(
        result, ExperimentConditionType.RUNNING, ExperimentReason.RUNNING, experiment_status.MSG_RUNNING, now=now
    )


def _completed(
    experiment: Experiment,
    status: ExperimentStatus,
    record: Suggestion,
    changed: bool,
    summary: Summary,
    events: list[Event],
    *,
    now: str,
) -> ExperimentPlan:
    spec = experiment.spec
    keep_running = spec is not None and spec.resume_policy in _RESTARTABLE
    if not keep_running and not suggestions.is_succeeded(record) and not suggestions.is_failed(record):
        record = suggestions.mark(
            record, SuggestionConditionType.SUCCEEDED, suggestions.REASON_SUCCEEDED, "Suggestion is succeeded", now=now
        )
        changed = True
    return ExperimentPlan(
        experiment=experiment,
        status=status,
        suggestion=record,
        suggestion_changed=changed,
        finished=summary.active == 0,
        summary=summary,
        events=tuple(events),
    )


def status_changed(old: ExperimentStatus | None, new: ExperimentStatus) -> bool:
    """Whether ``new`` differs from ``old`` in anything but timestamps of unchanged conditions."""
    return (old.to_api() if old else {}) != new.to_api()


__all__ = ["ExperimentPlan", "ValidationError", "plan_experiment", "status_changed", "with_recorded"]
