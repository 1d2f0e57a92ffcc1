"""Early stopping for Push trials: Katib's ``medianstop`` rules, delivered with the trial.

Katib evaluates its stop rules in the pull collector's sidecar, which Push trials do not have.
Here the rules are computed as Katib's medianstop service computes them (``median_stop_rules``:
from the objective values the *succeeded* trials pushed), attached to each new Trial
(``spec.earlyStoppingRules``, as Katib does) and handed to the trial process in env
``KATIB_EARLY_STOPPING_RULES`` (``encode_rules``). The SDK evaluates them on every
``report_metrics`` with the same ``StopRuleTracker`` the pull collector uses, so the verdict is
known within the report that triggers it; it then stores the marker metric
``pykatib.early-stopped`` with the trial's metrics, and the trial controller turns a finished job
whose logs hold the marker into ``EarlyStopped`` (``is_marked``).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from katib_core import constants, stop_rules
from katib_core.errors import ValidationError
from katib_core.trial_stopping import (
    DEFAULT_GRACE_SECONDS,
    GRACE_ENV,
    MARKER_METRIC,
    MARKER_VALUE,
    OBJECTIVE_ENV,
    RULES_ENV,
    decode_objective,
    decode_rules,
    encode_objective,
    is_marked,
)

if TYPE_CHECKING:  # the SDK's report path imports this module and must not pay for pydantic
    from katib_core.models import EarlyStoppingRule, EarlyStoppingSpec, Experiment, Trial

MEDIANSTOP: Final = "medianstop"


@dataclass(frozen=True)
class MedianStopSettings:
    """Katib's medianstop settings: rules appear once ``min_trials_required`` trials succeeded,
    and apply from a trial's ``start_step``-th report of the objective."""

    min_trials_required: int = 3
    start_step: int = 4


def parse_settings(spec: EarlyStoppingSpec) -> MedianStopSettings:
    """The medianstop settings of ``spec.earlyStopping``.

    Raises:
        ValidationError: another algorithm, an unknown setting, or a value that is not an integer ≥ 1.
    """
    if spec.algorithm_name != MEDIANSTOP:
        raise ValidationError(
            "spec.earlyStopping.algorithmName", f"{spec.algorithm_name!r} is not supported (only {MEDIANSTOP!r})"
        )
    values = {"min_trials_required": 3, "start_step": 4}
    for index, setting in enumerate(spec.algorithm_settings or []):
        field = f"spec.earlyStopping.algorithmSettings[{index}]"
        if setting.name not in values:
            raise ValidationError(
                f"{field}.name", f"{setting.name!r} is not a medianstop setting (min_trials_required, start_step)"
            )
        try:
            number = int(setting.value or "")
        except ValueError:
            raise ValidationError(f"{field}.value", f"{setting.value!r} must be an integer") from None
        if number < 1:
            raise ValidationError(f"{field}.value", f"{setting.name} must be at least 1, not {number}")
        values[setting.name] = number
    return MedianStopSettings(**values)


def succeeded_trials(experiment: Experiment, trials: Iterable[Trial]) -> tuple[str, list[str]]:
    """What medianstop reads: the objective metric and the names of the succeeded trials, whose
    values of it the shell fetches (``("", [])`` when the Experiment has no ``earlyStopping``)."""
    from katib_core import trial_conditions

    spec = experiment.spec
    if spec is None or spec.early_stopping is None or spec.objective is None:
        return "", []
    names = [
        trial.metadata.name
        for trial in trials
        if trial.metadata
        and trial.metadata.name
        and trial_conditions.holds(trial.status, constants.TrialConditionType.SUCCEEDED)
    ]
    return spec.objective.objective_metric_name or "", names


def median_stop_rules(experiment: Experiment, succeeded: Sequence[Sequence[str]]) -> list[EarlyStoppingRule]:
    """Katib's medianstop rule for new trials, or none yet.

    ``succeeded`` holds, per succeeded trial, its objective values in report order. Each trial
    contributes the mean of its first ``start_step`` values; the rule says: stop a trial whose
    objective (best so far) is worse than the median of those means from its ``start_step``-th
    report on. Fewer than ``min_trials_required`` trials with values → no rule.
    """
    from katib_core.models import EarlyStoppingRule

    spec = experiment.spec
    if spec is None or spec.early_stopping is None or spec.objective is None:
        return []
    settings = parse_settings(spec.early_stopping)
    means = []
    for values in succeeded:
        numbers = [float(v) for v in values[: settings.start_step] if _is_number(v)]
        if numbers:
            means.append(statistics.fmean(numbers))
    if len(means) < settings.min_trials_required:
        return []
    maximize = spec.objective.type == constants.ObjectiveType.MAXIMIZE
    return [
        EarlyStoppingRule(
            name=spec.objective.objective_metric_name,
            value=repr(statistics.median(means)),
            comparison=constants.ComparisonType.LESS if maximize else constants.ComparisonType.GREATER,
            start_step=settings.start_step,
        )
    ]


def encode_rules(rules: Iterable[EarlyStoppingRule]) -> str:
    """The ``KATIB_EARLY_STOPPING_RULES`` value for a trial's rules."""
    return "\n".join(stop_rules.format_flag(stop_rules.from_model(rule)) for rule in rules)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "GRACE_ENV",
    "MARKER_METRIC",
    "MARKER_VALUE",
    "MEDIANSTOP",
    "OBJECTIVE_ENV",
    "RULES_ENV",
    "MedianStopSettings",
    "decode_objective",
    "decode_rules",
    "encode_objective",
    "encode_rules",
    "is_marked",
    "median_stop_rules",
    "parse_settings",
    "succeeded_trials",
]
