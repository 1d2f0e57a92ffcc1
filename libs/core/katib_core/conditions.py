"""Katib's rules for ``status.conditions`` (Experiments, Trials and Suggestions share them).

Setting a condition replaces the one of the same type and keeps its ``lastTransitionTime`` when
the status does not change; completing something first flips a holding ``Running`` to ``False``.
Every function returns a new list and never mutates its input. Callers: ``trial_conditions``,
``experiment_status``, ``planning``.
"""

from __future__ import annotations

from collections.abc import Sequence

from katib_core import constants
from katib_core.models import Condition


def find(conditions: Sequence[Condition] | None, condition_type: str) -> Condition | None:
    """The condition of ``condition_type``, if present."""
    return next((c for c in conditions or () if c.type == condition_type), None)


def holds(conditions: Sequence[Condition] | None, condition_type: str) -> bool:
    """Whether the condition of ``condition_type`` is present with status ``"True"``."""
    found = find(conditions, condition_type)
    return found is not None and found.status == constants.CONDITION_TRUE


def put(
    conditions: Sequence[Condition] | None,
    condition_type: str,
    *,
    status: str = constants.CONDITION_TRUE,
    reason: str,
    message: str,
    now: str,
) -> list[Condition]:
    """Set ``condition_type`` (replacing the old entry in place, else appending it)."""
    result = [c.model_copy() for c in conditions or ()]
    for index, old in enumerate(result):
        if old.type == condition_type:
            transition = old.last_transition_time if old.status == status else now
            result[index] = Condition(
                type=condition_type,
                status=status,
                reason=reason,
                message=message,
                last_update_time=now,
                last_transition_time=transition or now,
            )
            return result
    result.append(
        Condition(
            type=condition_type,
            status=status,
            reason=reason,
            message=message,
            last_update_time=now,
            last_transition_time=now,
        )
    )
    return result


def remove(conditions: Sequence[Condition] | None, condition_type: str) -> list[Condition]:
    """Drop the condition of ``condition_type``."""
    return [c.model_copy() for c in conditions or () if c.type != condition_type]


def stop_running(conditions: Sequence[Condition] | None, *, now: str) -> list[Condition]:
    """Flip a holding ``Running`` condition to ``False`` (reason and message kept), as completion does."""
    running = find(conditions, "Running")
    if running is None or running.status != constants.CONDITION_TRUE:
        return [c.model_copy() for c in conditions or ()]
    return put(
        conditions,
        "Running",
        status=constants.CONDITION_FALSE,
        reason=running.reason or "",
        message=running.message or "",
        now=now,
    )
