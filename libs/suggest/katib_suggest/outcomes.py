"""What hyperband and pbt need to know about issued trials, derived from the request alone.

Both algorithms rebuild their whole state from ``request.issued`` (oldest first) and the trials'
newest conditions on every call, so a lost, stale or replayed state in the Suggestion's
``algorithmSettings`` can never issue a trial twice. Also: the per-Experiment seed (``random_state``,
else a hash of the Experiment's key, so a rebuilt plan is the plan already issued) and random
assignments drawn one per position.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import optuna
from optuna.distributions import BaseDistribution

from katib_core import aggregation, constants
from katib_core.constants import TrialConditionType
from katib_core.models import ParameterAssignment
from katib_core.suggestions import SuggestionRequest
from katib_suggest import spaces

State = Literal["active", "done", "failed"]
#: Conditions whose objective value an algorithm learns from, and those it learns nothing from
#: (Katib's services tell the first to their optimizer, the second as failed).
OBSERVED: Final = frozenset({TrialConditionType.SUCCEEDED, TrialConditionType.EARLY_STOPPED})
FAILED: Final = frozenset({TrialConditionType.FAILED, TrialConditionType.KILLED})


@dataclass(frozen=True)
class Outcome:
    """``done`` trials may have a ``score``: the objective value, negated when minimizing (higher is better)."""

    state: State
    score: float | None = None


def outcomes(request: SuggestionRequest) -> dict[str, Outcome]:
    """The outcome of every issued trial name.

    A name with no Trial yet is ``active``. A Trial the history leaves out (MetricsUnavailable, or
    EarlyStopped without an observation) and Katib's unnamed placeholders are ``done`` without a
    score: they are over, and nothing can be learnt from them.
    """
    spec = request.experiment.spec
    objective = spec.objective if spec else None
    metric = objective.objective_metric_name if objective else None
    sign = 1.0 if objective is not None and objective.type == constants.ObjectiveType.MAXIMIZE else -1.0
    seen = {t.name: t for t in request.history}
    created = {t.metadata.name for t in request.source if t.metadata}
    result: dict[str, Outcome] = {}
    for assignment in request.issued:
        name = assignment.name or ""
        trial = seen.get(name)
        if trial is None:
            result[name] = Outcome("done") if not name or name in created else Outcome("active")
        elif trial.condition in FAILED:
            result[name] = Outcome("failed")
        elif trial.condition in OBSERVED or trial.condition == TrialConditionType.METRICS_UNAVAILABLE:
            value = aggregation.parse_number(trial.metric(metric) or "")
            finite = value is not None and math.isfinite(value)
            result[name] = Outcome("done", sign * value if finite and value is not None else None)
        else:
            result[name] = Outcome("active")
    return result


def seed(request: SuggestionRequest, random_state: int | None) -> int:
    """``random_state``, else a stable hash of the Experiment (namespace/name/uid)."""
    if random_state is not None:
        return random_state
    return int.from_bytes(hashlib.sha256(request.key.encode()).digest()[:4], "big")


def derived_seed(root: int, *path: int) -> int:
    """A seed for one draw, from the Experiment's seed and where the draw is (a batch, a position).

    Not ``root + position``: with that, seed s and s + 1 give the same points shifted by one, so
    two Experiments with neighbouring ``random_state``s would share nearly all their draws.
    """
    text = ":".join(str(n) for n in (root, *path))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def random_assignment(
    distributions: Mapping[str, BaseDistribution], seed: int, *, fixed: Mapping[str, str] | None = None
) -> tuple[ParameterAssignment, ...]:
    """One random point (optuna's RandomSampler seeded with ``seed``), ``fixed`` values overriding."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask(fixed_distributions=dict(distributions))
    fixed = fixed or {}
    return tuple(
        ParameterAssignment(name=n, value=fixed[n]) if n in fixed else spaces.encode(n, trial.params[n], d)
        for n, d in distributions.items()
    )


def values_of(assignments: Sequence[ParameterAssignment] | None) -> dict[str, str]:
    return {a.name or "": a.value or "" for a in assignments or ()}
