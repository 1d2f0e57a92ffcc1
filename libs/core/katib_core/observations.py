"""Metric logs of trials: the rows the DB manager stores, and the rules a report must follow.

A report is the unit ``ReportObservationLog`` stores atomically: one trial, any number of
``(time, metric name, value)`` points. The limits below are those of Katib's schema
(``VARCHAR(255)`` names, ``TEXT`` values), enforced up front so that every storage backend
accepts or rejects the same reports, and a bad report fails with the field that broke a rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from katib_core import timestamps
from katib_core.errors import ValidationError

#: The value Katib stores for a metric that was never reported.
UNAVAILABLE = "unavailable"
#: ``VARCHAR(255)`` in Katib's schema (characters).
MAX_NAME_LENGTH = 255
#: ``TEXT`` in MySQL holds 65,535 bytes.
MAX_VALUE_BYTES = 65_535
#: Idempotency keys: short, printable, safe in gRPC metadata.
_REPORT_KEY = re.compile(r"[A-Za-z0-9._:-]{8,64}", re.ASCII)


@dataclass(frozen=True)
class MetricPoint:
    """One metric log: naive UTC ``time``, metric ``name``, opaque ``value`` text."""

    __slots__ = ("time", "name", "value")  # dataclass(slots=True) needs 3.10; the trial path runs on 3.8

    time: datetime
    name: str
    value: str


@dataclass(frozen=True)
class Report:
    """What one ``ReportObservationLog`` call stores: all points, or none of them.

    ``key`` (optional) identifies the report across retries: a report whose key is already
    stored is acknowledged without writing anything again. ``namespace`` (optional) is the
    trial's namespace when an authenticated caller vouched for it.
    """

    trial_name: str
    points: tuple[MetricPoint, ...]
    key: str | None = None
    namespace: str | None = None


def check_trial_name(trial_name: str, *, field: str = "trial_name") -> str:
    """Return ``trial_name`` if it can be stored; raise ValidationError naming ``field``."""
    if not trial_name:
        raise ValidationError(field, "must not be empty")
    _check_text(trial_name, field)
    if len(trial_name) > MAX_NAME_LENGTH:
        raise ValidationError(field, f"is {len(trial_name)} characters long, the limit is {MAX_NAME_LENGTH}")
    return trial_name


def check_report_key(key: str) -> str:
    """Return an idempotency key if it is 8-64 characters of ``[A-Za-z0-9._:-]``."""
    if _REPORT_KEY.fullmatch(key) is None:
        raise ValidationError("report key", f"{key[:80]!r} must be 8-64 characters of [A-Za-z0-9._:-]")
    return key


def build_report(
    trial_name: str,
    entries: Iterable[tuple[str, str, str]],
    *,
    key: str | None = None,
    field_prefix: str = "observation_log.metric_logs",
) -> Report:
    """Validate ``(time_stamp, metric name, value)`` entries into a Report.

    Entries with an empty ``time_stamp`` are skipped, as Katib does. A bad timestamp, an empty
    or over-long metric name, an over-long value or a NUL character rejects the whole report
    with a ValidationError naming the entry, e.g. ``observation_log.metric_logs[3].metric.name``.
    """
    check_trial_name(trial_name)
    if key is not None:
        check_report_key(key)
    points: list[MetricPoint] = []
    append = points.append
    # The hot path of every report: plain checks inline; field paths are built only on error.
    for index, (stamp, name, value) in enumerate(entries):
        if not stamp:
            continue
        moment = timestamps.try_parse(stamp) or timestamps.parse(stamp, field=f"{field_prefix}[{index}].time_stamp")
        if not name or len(name) > MAX_NAME_LENGTH or "\x00" in name:
            _check_text(name, f"{field_prefix}[{index}].metric.name")
            raise ValidationError(
                f"{field_prefix}[{index}].metric.name",
                f"is {len(name)} characters long, the limit is {MAX_NAME_LENGTH}" if name else "must not be empty",
            )
        if "\x00" in value or (len(value) > MAX_VALUE_BYTES // 4 and len(value.encode()) > MAX_VALUE_BYTES):
            _check_text(value, f"{field_prefix}[{index}].metric.value")
            raise ValidationError(f"{field_prefix}[{index}].metric.value", f"is longer than {MAX_VALUE_BYTES} bytes")
        append(MetricPoint(moment, name, value))
    return Report(trial_name, tuple(points), key)


def _check_text(text: str, field: str) -> None:
    # PostgreSQL cannot store NUL in text; refusing it everywhere keeps backends identical.
    if "\x00" in text:
        raise ValidationError(field, "must not contain NUL characters")
