"""RFC 3339 timestamps as Katib exchanges them.

Katib parses timestamps with Go's ``time.RFC3339`` layout (optional fraction, ``Z`` or a numeric
offset, ``T`` separator required), stores UTC wall time truncated to microseconds, and prints
Go's RFC3339Nano form (fraction only when non-zero, trailing zeros dropped, ``Z``). Internally
every timestamp is a *naive* ``datetime`` holding UTC wall time.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone

from katib_core.errors import ValidationError

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:(Z)|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)

#: The sentinel time Katib writes for rows without a timestamp (year 1, UTC).
ZERO_TIME = datetime(1, 1, 1)


def parse(text: str, *, field: str = "time_stamp") -> datetime:
    """Parse an RFC 3339 timestamp into naive UTC wall time, truncated to microseconds.

    Raises:
        ValidationError: ``text`` is not RFC 3339 or lies outside years 1-9999 once in UTC;
            the error names ``field``.
    """
    try:
        return _parse_cached(text)
    except (ValueError, TypeError) as exc:
        raise ValidationError(field, f"{text!r} is not an RFC 3339 timestamp ({exc})") from None


def try_parse(text: str) -> datetime | None:
    """Like ``parse``, but None for text that is not RFC 3339 (cheap on the hot path)."""
    try:
        return _parse_cached(text)
    except (ValueError, TypeError):
        return None


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> datetime:
    # Reports share one timestamp across all their metrics; the cache makes big reports cheap.
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)")
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    micros = int((frac or "0")[:6].ljust(6, "0"))
    wall = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros)
    if zulu:
        return wall
    if int(off_h) > 23 or int(off_m) > 59:
        raise ValueError("offset out of range")
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    try:
        return wall - offset if sign == "+" else wall + offset
    except OverflowError:
        raise ValueError("outside years 1-9999 in UTC") from None


def format_nano(moment: datetime) -> str:
    """Format naive UTC wall time (or an aware datetime) as Go's RFC3339Nano with ``Z``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def utc_now() -> datetime:
    """The current UTC wall time as a naive datetime."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def condition_time() -> str:
    """Now, as Kubernetes writes a condition's times (RFC 3339, whole seconds)."""
    return format_nano(utc_now().replace(microsecond=0))
