"""Katib's ``hyperband``: brackets of successive halving over a resource parameter (docs/algorithms.md#hyperband).

Bracket ``s`` (``s_max`` down to 0) starts ``n = ceil((s_max + 1) * eta**s / (s + 1))`` random
configurations at resource ``r_l * eta**-s`` (its master rung); each child rung ``i`` promotes the
best ``ceil(size / eta)`` of the rung before it, by the objective's direction, at resource
``r_l * eta**(i - s)``, once every trial of that rung is over. The resource parameter is assigned
as an integer, as in Katib.

The schedule is a pure function of the settings, so the state is derived on every call: the
issued assignments, oldest first, fill the rungs in order, and the trials' outcomes decide each
promotion. The settings Katib v0.19 keeps its state in (``current_s``, ``current_i``, ``n``, ``r``,
``evaluating_trials``, …) are returned for the record, never trusted: a lost or stale state cannot
issue a trial twice.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from katib_core import search_algorithms
from katib_core.errors import ValidationError
from katib_core.models import AlgorithmSetting, ParameterAssignment, TrialAssignment
from katib_core.suggestions import SuggestionReply, SuggestionRequest
from katib_suggest import outcomes, spaces


@dataclass(frozen=True)
class Rung:
    """Rung ``i`` of bracket ``s``: at most ``size`` trials at ``resource``."""

    s: int
    i: int
    size: int
    resource: str


def schedule(eta: int, r_l: float) -> list[Rung]:
    """Every rung in the order Katib runs them, with the planned sizes (promotions may find fewer)."""
    s_max = search_algorithms.hyperband_s_max(eta, r_l)
    rungs = []
    for s in range(s_max, -1, -1):
        size = math.ceil((s_max + 1) * eta**s / (s + 1))
        for i in range(s + 1):
            if i > 0:
                size = math.ceil(size / eta)
            rungs.append(Rung(s, i, size, resource(r_l, eta, s - i)))
    return rungs


def resource(r_l: float, eta: int, power: int) -> str:
    """``r_l * eta**-power`` as the integer Katib assigns (rounding error forgiven)."""
    return str(math.floor(r_l / eta**power + 1e-9))


def suggest(request: SuggestionRequest, parsed: search_algorithms.Settings) -> SuggestionReply:
    """The next trials of the rung in progress; none (not exhausted) while a promotion waits for a rung."""
    spec = request.experiment.spec
    if parsed.r_l is None or not parsed.resource_name:
        raise ValidationError("spec.algorithm.algorithmSettings", "hyperband needs resource_name and r_l")
    eta, r_l, name = parsed.eta or 3, parsed.r_l, parsed.resource_name
    distributions = spaces.distributions(spec.parameters if spec else None)
    if name not in distributions:
        raise ValidationError("spec.algorithm.algorithmSettings.resource_name", f"{name!r} is not a parameter")
    issued = request.issued
    known = outcomes.outcomes(request)
    rungs = schedule(eta, r_l)
    cursor = 0
    previous: Sequence[TrialAssignment] = ()
    for index, rung in enumerate(rungs):
        if rung.i == 0:
            wanted: list[dict[str, str]] | None = None
            size = rung.size
        else:
            if any(known[a.name or ""].state == "active" for a in previous):
                # Katib's state while it waits: the rung before, its trials under evaluation
                return _reply((), parsed, (rung.s, rung.i - 1, len(previous)))
            wanted = _top(previous, known, rung.size)
            size = len(wanted)
        members = issued[cursor : cursor + size]
        if len(members) == size:
            previous, cursor = members, cursor + size
            continue
        room = min(request.count, size - len(members))
        if wanted is None:
            root = outcomes.seed(request, parsed.random_state)
            new = [
                outcomes.random_assignment(
                    distributions, outcomes.derived_seed(root, len(issued) + k), fixed={name: rung.resource}
                )
                for k in range(room)
            ]
        else:
            new = _promote(wanted, members, name, rung.resource, list(distributions))[:room]
        if len(members) + len(new) < size:
            return _reply(tuple(new), parsed, (rung.s, rung.i, len(members) + len(new)))
        if rung.i < rung.s:  # complete: the next call promotes from it
            return _reply(tuple(new), parsed, (rung.s, rung.i, size))
        last = index == len(rungs) - 1
        return _reply(tuple(new), parsed, (rung.s - 1, 0, 0), exhausted=last)
    return _reply((), parsed, (-1, 0, 0), exhausted=True)


def _top(rung: Sequence[TrialAssignment], known: dict[str, outcomes.Outcome], count: int) -> list[dict[str, str]]:
    """The best ``count`` of ``rung`` with an objective value, best first (ties: the earlier issued)."""
    scored = [
        (score, order, outcomes.values_of(a.parameter_assignments))
        for order, a in enumerate(rung)
        if (score := known[a.name or ""].score) is not None
    ]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [values for _, _, values in scored[:count]]


def _promote(
    wanted: list[dict[str, str]], members: Sequence[TrialAssignment], name: str, value: str, order: list[str]
) -> list[tuple[ParameterAssignment, ...]]:
    """``wanted`` configurations not yet issued in this rung, at the rung's resource."""
    issued = Counter(_config(outcomes.values_of(a.parameter_assignments), name) for a in members)
    result = []
    for values in wanted:
        key = _config(values, name)
        if issued[key] > 0:
            issued[key] -= 1
            continue
        result.append(
            tuple(ParameterAssignment(name=n, value=value if n == name else values.get(n, "")) for n in order)
        )
    return result


def _config(values: dict[str, str], resource_name: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in values.items() if k != resource_name))


def _reply(
    new: tuple[tuple[ParameterAssignment, ...], ...],
    parsed: search_algorithms.Settings,
    where: tuple[int, int, int],
    *,
    exhausted: bool = False,
) -> SuggestionReply:
    return SuggestionReply(assignments=new, exhausted=exhausted, algorithm_settings=_state(parsed, *where))


def _state(parsed: search_algorithms.Settings, s: int, i: int, evaluating: int) -> tuple[AlgorithmSetting, ...]:
    """Katib v0.19's state settings: bracket ``s`` (-1: finished), rung ``i``, the trials under evaluation."""
    eta, r_l = parsed.eta or 3, parsed.r_l or 1.0
    s_max = search_algorithms.hyperband_s_max(eta, r_l)
    values = {
        "eta": str(eta),
        "s_max": str(s_max),
        "r_l": str(r_l),
        "b_l": str((s_max + 1) * r_l),
        "r": str(r_l / eta**s) if s >= 0 else "-1",
        "n": str(math.ceil((s_max + 1) * eta**s / (s + 1))) if s >= 0 else "-1",
        "current_s": str(s),
        "current_i": str(i),
        "resource_name": parsed.resource_name or "",
        "evaluating_trials": str(evaluating),
    }
    return tuple(AlgorithmSetting(name=k, value=v) for k, v in values.items())
