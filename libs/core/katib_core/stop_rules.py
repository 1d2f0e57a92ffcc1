"""Early-stopping rules as the pull-mode collector applies them (docs/katib-compat.md#collectors).

A rule reads "stop once metric ``name`` compares (``less``/``greater``/``equal``) to ``value``,
from its ``start_step``-th report on"; a trial stops when **all** its rules have been met. The pod
webhook writes each rule as a ``-stop-rule name;value;comparison;startStep`` flag
(``format_flag``); the collector parses it back (``parse_flag``) and feeds every parsed metric to
a ``StopRuleTracker``.

Two Katib defects are not copied: Katib means to compare the objective's *best value so far*
(not the latest), but its Go code loses that value between lines; and it applies a rule with a
start step only at exactly that report, never after. Here the best value so far is used for the
objective, and a rule applies from its start step on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from katib_core import constants
from katib_core.errors import ValidationError
from katib_core.observations import MetricPoint


class RuleFields(Protocol):
    """What ``from_model`` reads of a ``models.EarlyStoppingRule``: trial images (Python 3.8,
    no pydantic) import this module, so it does not import the models."""

    @property
    def name(self) -> str | None: ...
    @property
    def value(self) -> str | None: ...
    @property
    def comparison(self) -> str | None: ...
    @property
    def start_step(self) -> int | None: ...


_COMPARISONS = frozenset(constants.ComparisonType)


@dataclass(frozen=True)
class StopRule:
    """One parsed rule; ``threshold`` is ``value`` as a number."""

    name: str
    value: str
    comparison: str
    start_step: int = 0

    @property
    def threshold(self) -> float:
        return float(self.value)

    def holds(self, metric: float) -> bool:
        """Whether ``metric`` meets the comparison."""
        if self.comparison == constants.ComparisonType.LESS:
            return metric < self.threshold
        if self.comparison == constants.ComparisonType.GREATER:
            return metric > self.threshold
        return metric == self.threshold


def from_model(rule: RuleFields, *, field: str = "earlyStoppingRules") -> StopRule:
    """A ``StopRule`` from a Trial's ``spec.earlyStoppingRules`` entry (checked like a flag)."""
    return check(StopRule(rule.name or "", rule.value or "", rule.comparison or "", rule.start_step or 0), field=field)


def check(rule: StopRule, *, field: str = "stop rule") -> StopRule:
    """Return ``rule`` if it is usable: a name, a finite number, a known comparison, start step ≥ 0.

    Raises:
        ValidationError: naming ``field``.
    """
    if not rule.name:
        raise ValidationError(field, "the metric name is empty")
    try:
        threshold = float(rule.value)
    except ValueError:
        raise ValidationError(field, f"value {rule.value!r} is not a number") from None
    if not math.isfinite(threshold):
        raise ValidationError(field, f"value {rule.value!r} must be finite")
    if rule.comparison not in _COMPARISONS:
        raise ValidationError(field, f"comparison {rule.comparison!r} must be one of equal, less, greater")
    if rule.start_step < 0:
        raise ValidationError(field, f"start step {rule.start_step} must not be negative")
    return rule


def format_flag(rule: StopRule) -> str:
    """The ``-stop-rule`` value: ``name;value;comparison;startStep``."""
    return f"{rule.name};{rule.value};{rule.comparison};{rule.start_step}"


def parse_flag(text: str, *, field: str = "-stop-rule") -> StopRule:
    """Parse ``name;value;comparison;startStep`` (an empty start step means 0).

    Raises:
        ValidationError: not four ``;``-separated parts, or a part is invalid.
    """
    parts = text.split(";")
    if len(parts) != 4:
        raise ValidationError(field, f"{text!r} must be name;value;comparison;startStep")
    name, value, comparison, step = parts
    try:
        start_step = int(step) if step else 0
    except ValueError:
        raise ValidationError(field, f"start step {step!r} of {text!r} is not an integer") from None
    return check(StopRule(name, value, comparison, start_step), field=field)


class StopRuleTracker:
    """Feeds metric rows to rules; ``met`` once every rule has held at least once.

    ``objective`` and ``objective_type`` (minimize/maximize) make rules on the objective compare
    its best value so far.
    """

    def __init__(self, rules: Sequence[StopRule], *, objective: str = "", objective_type: str = "") -> None:
        self.rules = tuple(rules)
        self._pending = set(range(len(self.rules)))
        self._objective = objective
        self._maximize = objective_type == constants.ObjectiveType.MAXIMIZE
        self._minimize = objective_type == constants.ObjectiveType.MINIMIZE
        self._best: float | None = None
        self._reports: dict[str, int] = {}
        self._names = frozenset(rule.name for rule in self.rules)

    @property
    def met(self) -> bool:
        """Whether every rule has held (False when there are no rules)."""
        return bool(self.rules) and not self._pending

    def feed(self, rows: Iterable[MetricPoint]) -> bool:
        """Account for ``rows`` (non-numeric values are ignored); return ``met``."""
        for row in rows:
            if row.name not in self._names:
                continue
            try:
                value = float(row.value)
            except ValueError:
                continue
            if math.isnan(value):
                continue
            self._reports[row.name] = count = self._reports.get(row.name, 0) + 1
            if row.name == self._objective:
                value = self._best_so_far(value)
            for index in list(self._pending):
                rule = self.rules[index]
                if rule.name == row.name and count >= rule.start_step and rule.holds(value):
                    self._pending.discard(index)
        return self.met

    def _best_so_far(self, value: float) -> float:
        if self._best is None or (self._maximize and value > self._best) or (self._minimize and value < self._best):
            self._best = value
        return self._best if (self._maximize or self._minimize) else value
