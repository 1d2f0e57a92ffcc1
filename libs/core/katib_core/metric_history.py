"""A trial's metric logs as numbers over steps: what a user plots or compares.

The DB manager stores text values and no step (Katib's proto has no step field); pykatib's
``report_metrics(..., step=N)`` sends one more log, metric ``pykatib.step``, with the same
timestamp as the values it belongs to (docs/sdk.md, "step= without changing the wire protocol").
Here the two are joined back: each value gets the step reported at its timestamp, and values that
are not numbers (Katib's ``unavailable`` sentinel of a trial without its objective) are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from katib_core.constants import STEP_METRIC


@dataclass(frozen=True)
class MetricPoint:
    """One reported value: its step (None when the report had none) and the DB manager's timestamp."""

    value: float
    step: int | None
    time: str


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def history(rows: Iterable[tuple[str, str, str]]) -> dict[str, list[MetricPoint]]:
    """``(time, name, value)`` rows, in the DB manager's order, as numeric series per metric name."""
    rows = list(rows)
    steps: dict[str, int] = {}
    for time, name, value in rows:
        if name == STEP_METRIC:
            number = _number(value)
            if number is not None and number.is_integer():
                steps[time] = int(number)
    series: dict[str, list[MetricPoint]] = {}
    for time, name, value in rows:
        number = _number(value)
        if name == STEP_METRIC or number is None:
            continue
        series.setdefault(name, []).append(MetricPoint(number, steps.get(time), time))
    return series


__all__ = ["MetricPoint", "history"]
