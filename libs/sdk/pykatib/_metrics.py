"""What ``report_metrics`` sends for a dict of metrics: checked names, value text, timestamps, step.

Values follow docs/katib-compat.md#value-formatting: ``str(v)`` for ``int``/``float``/``str`` (the same bytes as the
official SDK) and ``str(float(v))`` for anything else ``float()`` accepts (numpy scalars, 0-d
tensors), so ``tensor(0.1)`` is never stored. Timestamps are UTC with microseconds and strictly
increase within a process, so time order is call order on any DB manager.
"""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Mapping

from katib_core.constants import STEP_METRIC
from katib_core.errors import ValidationError

_MAX_NAME = 255
_PLAIN = (int, float, str)


def value_text(value: object) -> str:
    """The stored text of one metric value; ValueError (upstream's message) if ``float()`` refuses it."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except Exception:
        raise ValueError(
            f"Invalid value {value} for metrics value. "
            "The metrics value should have or can be converted to type `float`. "
        ) from None
    # float() already refused NUL characters and over-long text, so the value fits Katib's column.
    return str(value) if type(value) in _PLAIN else str(number)


def check_name(name: object) -> str:
    """A metric name Katib can store: a non-empty string of at most 255 characters without NUL."""
    if not isinstance(name, str):
        raise ValidationError(f"metrics[{name!r}]", f"metric names must be strings, not {type(name).__name__}")
    if not name or len(name) > _MAX_NAME or "\x00" in name:
        raise ValidationError(f"metrics[{name[:40]!r}]", "a metric name must be 1-255 characters without NUL")
    return name


def pairs(metrics: Mapping[str, object], step: object = None) -> tuple[tuple[str, str], ...]:
    """``(name, value text)`` for each metric in dict order, after the step row when ``step`` is given."""
    out = [(check_name(name), value_text(value)) for name, value in metrics.items()]
    if step is not None:
        out.insert(0, (STEP_METRIC, str(step_number(step))))
    return tuple(out)


def step_number(step: object) -> int:
    """A step is a non-negative integer (``int``, numpy integer, …; not bool, not float)."""
    if isinstance(step, bool):
        raise ValidationError("step", "must be an integer, not a bool")
    try:
        number = operator.index(step)  # type: ignore[arg-type]
    except TypeError:
        raise ValidationError("step", f"{step!r} must be an integer") from None
    if number < 0:
        raise ValidationError("step", f"{number} must not be negative")
    return number


class StampSource:
    """Microsecond UTC timestamps that strictly increase across calls (thread-safe)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next_micros(self) -> int:
        now = time.time_ns() // 1000
        with self._lock:
            if now <= self._last:
                now = self._last + 1
            self._last = now
        return now


def format_micros(micros: int) -> str:
    """RFC 3339 UTC with microseconds, Go's RFC3339Nano style (``…:08.5Z``; no fraction when zero)."""
    seconds, fraction = divmod(micros, 1_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{fraction:06d}".rstrip("0") + "Z" if fraction else text + "Z"
