"""What a Trial's conditions are (docs/katib-compat.md#trial-conditions): predicates and the marking rules.

Pure functions over ``TrialStatus``/``Trial`` that return new objects. The trial controller and
local mode decide with them; ``trial_reconcile`` strings them into one reconcile pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from katib_core import conditions, constants
from katib_core.constants import TrialConditionType, TrialReason
from katib_core.enums import StrEnum
from katib_core.models import Trial, TrialStatus

MSG_CREATED: Final = "Trial is created"
MSG_RUNNING: Final = "Trial is running"
MSG_SUCCEEDED: Final = "Trial has succeeded"
MSG_METRICS_UNAVAILABLE: Final = "Metrics are not available"
MSG_FAILED: Final = "Trial has failed"
MSG_EARLY_STOPPED: Final = "Trial is early stopped"

#: Conditions after which a trial never runs again.
COMPLETED_TYPES: Final = (
    TrialConditionType.SUCCEEDED,
    TrialConditionType.FAILED,
    TrialConditionType.KILLED,
    TrialConditionType.EARLY_STOPPED,
    TrialConditionType.METRICS_UNAVAILABLE,
)


class JobPhase(StrEnum):
    """What the trial's job is doing, as its success/failure conditions say."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


def is_created(status: TrialStatus | None) -> bool:
    return status is not None and conditions.holds(status.conditions, TrialConditionType.CREATED)


def is_completed(status: TrialStatus | None) -> bool:
    """Succeeded, Failed, Killed, EarlyStopped or MetricsUnavailable holds."""
    return status is not None and any(conditions.holds(status.conditions, t) for t in COMPLETED_TYPES)


def holds(status: TrialStatus | None, condition_type: str) -> bool:
    return status is not None and conditions.holds(status.conditions, condition_type)


def held(status: TrialStatus | None) -> frozenset[str]:
    """The types of the conditions that hold (one pass, for callers that test several)."""
    if status is None or not status.conditions:
        return frozenset()
    return frozenset(c.type for c in status.conditions if c.status == constants.CONDITION_TRUE)


def is_observation_available(trial: Trial) -> bool:
    """The objective has an observed ``latest`` that is not ``unavailable`` (Katib's IsObservationAvailable)."""
    objective = trial.spec.objective if trial.spec else None
    observation = trial.status.observation if trial.status else None
    if objective is None or observation is None:
        return False
    return any(
        m.name == objective.objective_metric_name and m.latest != constants.UNAVAILABLE
        for m in observation.metrics or ()
    )


def _with_job(text: str, label: str, job_text: str) -> str:
    return f"{text}. Job {label}: {job_text}" if job_text else text


def mark_created(status: TrialStatus, *, now: str) -> TrialStatus:
    """Created (``TrialCreated``) and ``startTime`` if unset."""
    result = status.model_copy(deep=True)
    result.start_time = result.start_time or now
    result.conditions = conditions.put(
        result.conditions, TrialConditionType.CREATED, reason=TrialReason.CREATED, message=MSG_CREATED, now=now
    )
    return result


def mark_running(status: TrialStatus, *, now: str) -> TrialStatus:
    result = status.model_copy(deep=True)
    result.conditions = conditions.put(
        result.conditions, TrialConditionType.RUNNING, reason=TrialReason.RUNNING, message=MSG_RUNNING, now=now
    )
    return result


def _complete(
    status: TrialStatus, condition_type: str, reason: str, message: str, *, job_reason: str, job_message: str, now: str
) -> TrialStatus:
    result = status.model_copy(deep=True)
    result.conditions = conditions.put(
        conditions.stop_running(result.conditions, now=now),
        condition_type,
        reason=_with_job(reason, "reason", job_reason),
        message=_with_job(message, "message", job_message),
        now=now,
    )
    result.completion_time = now
    return result


def mark_succeeded(status: TrialStatus, *, job_reason: str = "", job_message: str = "", now: str) -> TrialStatus:
    return _complete(
        status,
        TrialConditionType.SUCCEEDED,
        TrialReason.SUCCEEDED,
        MSG_SUCCEEDED,
        job_reason=job_reason,
        job_message=job_message,
        now=now,
    )


def mark_failed(status: TrialStatus, *, job_reason: str = "", job_message: str = "", now: str) -> TrialStatus:
    return _complete(
        status,
        TrialConditionType.FAILED,
        TrialReason.FAILED,
        MSG_FAILED,
        job_reason=job_reason,
        job_message=job_message,
        now=now,
    )


def mark_metrics_unavailable(
    status: TrialStatus, *, job_reason: str = "", job_message: str = "", now: str
) -> TrialStatus:
    return _complete(
        status,
        TrialConditionType.METRICS_UNAVAILABLE,
        TrialReason.METRICS_UNAVAILABLE,
        MSG_METRICS_UNAVAILABLE,
        job_reason=job_reason,
        job_message=job_message,
        now=now,
    )


def last_condition_type(status: TrialStatus | None) -> str | None:
    """The type of the newest condition (what Katib sends to suggestion services)."""
    if status is None or not status.conditions:
        return None
    return status.conditions[-1].type


def mark_early_stopped(status: TrialStatus, *, now: str) -> TrialStatus:
    """EarlyStopped (reason ``TrialEarlyStopped``), as Katib's early-stopping service sets it."""
    return _complete(
        status,
        TrialConditionType.EARLY_STOPPED,
        TrialReason.EARLY_STOPPED,
        MSG_EARLY_STOPPED,
        job_reason="",
        job_message="",
        now=now,
    )


_FAILURES = frozenset({TrialConditionType.FAILED, TrialConditionType.METRICS_UNAVAILABLE})


def first_failure(trials: Sequence[Trial]) -> tuple[str, str] | None:
    """The earliest-created trial that failed (or was MetricsUnavailable) and why, in one line.

    Why: the last line of the job's output when the message carries it (a Python traceback ends
    with the error), else the condition's message.
    """
    failed = [t for t in trials if last_condition_type(t.status) in _FAILURES]
    if not failed:
        return None
    trial = min(failed, key=lambda t: ((t.metadata.creation_timestamp if t.metadata else None) or "", _name(t)))
    return _name(trial), failure_reason(trial) or ""


def failure_reason(trial: Trial) -> str | None:
    """Why ``trial`` failed (or was MetricsUnavailable), in one line; None if it did not."""
    if last_condition_type(trial.status) not in _FAILURES:
        return None
    condition = trial.status.conditions[-1] if trial.status and trial.status.conditions else None
    message = (condition.message if condition else None) or (condition.reason if condition else None) or ""
    return _headline(message)


def _headline(message: str) -> str:
    head, marker, output = message.partition("last output:")
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if marker and lines:
        how = head.rsplit("Job message:", 1)[-1].strip().rstrip(";")
        return f"{lines[-1]} ({how})" if how else lines[-1]
    return message.strip()


def _name(trial: Trial) -> str:
    return (trial.metadata.name if trial.metadata else None) or ""
