"""Observation aggregation (docs/katib-compat.md#aggregation): metric logs → ``status.observation``.

``aggregate`` turns the rows ``GetObservationLog`` returned into one ``Metric`` per metric
strategy with Katib's min/max/latest rules; ``strategy_value`` picks the value a metric stands
for (its strategy's, falling back to ``latest``). Called by the trial controller and local mode.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime

from katib_core import constants, timestamps
from katib_core.models import Metric, MetricStrategy, Observation

#: One metric log as the DB manager returns it: ``(time_stamp, metric name, value)``.
Row = tuple[str, str, str]


def parse_number(text: str) -> float | None:
    """``text`` as Go's ``strconv.ParseFloat`` reads it (incl. ``inf``/``nan``), else None."""
    if not text or text != text.strip() or "_" in text:  # Python's float() accepts these, Go's does not
        return None
    try:
        return float(text)
    except ValueError:
        return None


def aggregate(rows: Iterable[Row], strategies: Sequence[MetricStrategy]) -> Observation | None:
    """Min/max/latest of each strategy's metric over ``rows`` (in the order they were returned).

    Metrics are emitted in ``strategies`` order, each starting at ``unavailable``; rows of other
    metrics are ignored. Returns None when no row belongs to a strategy's metric (Katib then
    leaves ``status.observation`` unset).

    Raises:
        ValidationError: a row's timestamp is not RFC 3339 (the whole aggregation fails, as in Katib).
    """
    order = [s.name for s in strategies if s.name]
    metrics = {name: Metric(name=name, min=_NA, max=_NA, latest=_NA) for name in order}
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    latest_at: dict[str, datetime] = {}
    seen = False
    for stamp, name, value in rows:
        metric = metrics.get(name)
        if metric is None:
            continue
        seen = True
        number = parse_number(value)
        if number is not None:
            if name not in lows:
                lows[name] = highs[name] = number
                metric.min = metric.max = value
            elif number < lows[name]:
                lows[name] = number
                metric.min = value
            elif number > highs[name]:
                highs[name] = number
                metric.max = value
        moment = timestamps.parse(stamp, field=f"metric log of {name!r}")
        previous = latest_at.get(name)
        if previous is None or moment >= previous:  # ties go to the later row
            latest_at[name] = moment
            metric.latest = value
    if not seen:
        return None
    return Observation(metrics=[metrics[name] for name in order])


_NA = constants.UNAVAILABLE


def strategy_value(metric: Metric, strategy: str | None) -> str:
    """The value ``metric`` stands for under ``strategy`` (min/max/latest), ``latest`` if that is unavailable."""
    if strategy == constants.MetricStrategyType.MIN:
        chosen = metric.min
    elif strategy == constants.MetricStrategyType.MAX:
        chosen = metric.max
    else:
        chosen = metric.latest
    if chosen is None or chosen == _NA:
        chosen = metric.latest
    return chosen if chosen is not None else _NA


def strategy_of(strategies: Sequence[MetricStrategy] | None, name: str | None) -> str | None:
    """The strategy (``min``/``max``/``latest``) configured for metric ``name``."""
    return next((s.value for s in strategies or () if s.name == name), None)


def is_finite_number(text: str) -> bool:
    """Whether ``text`` parses as a finite float."""
    number = parse_number(text)
    return number is not None and math.isfinite(number)
