"""Katib's rules for reading metrics out of training output (docs/katib-compat.md#metric-parsing).

The pull-mode collector parses a trial's StdOut log or metrics file with these functions, and
local mode reuses them for StdOut trials: lines in, ``MetricPoint(time, name, value)`` rows out.

- **TEXT**: a line counts only if it contains one of the metric names; every filter (default
  ``name=value``) is applied to it and matches of a wanted name become rows. A first token that
  is an RFC 3339 time stamps the line's rows, else they get Katib's ``0001-01-01T00:00:00Z``.
  Values are kept as written (an empty match, e.g. ``loss=nan``, is dropped).
- **JSON**: one object per line; ``timestamp`` is RFC 3339 text or epoch seconds; only metric
  values that are JSON *strings* count (as in Katib); a line that is not an object fails all.
- ``observation_rows``: when the objective never appears, Katib reports only one
  ``unavailable`` row for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Final

from katib_core import constants, timestamps
from katib_core.errors import ValidationError
from katib_core.observations import MetricPoint

#: Katib's default filter: ``name=value`` with an optional sign, fraction and exponent.
DEFAULT_FILTER: Final = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
#: The key of a JSON line's time stamp.
TIMESTAMP_KEY: Final = "timestamp"
#: A filter needs two top-level groups: metric name, then value (Katib's check).
_TWO_GROUPS = re.compile(r".*\(.*\).*\(.*\).*", re.DOTALL)


def compile_filter(pattern: str, *, field: str = "filter") -> re.Pattern[str]:
    """Compile a metrics filter as Katib accepts it (Go RE2 syntax is mostly Python's).

    Raises:
        ValidationError: the pattern does not compile or lacks two groups (name, value).
    """
    try:
        compiled = re.compile(pattern, re.ASCII)
    except re.error as exc:
        raise ValidationError(field, f"{pattern!r} is not a valid regular expression: {exc}") from None
    if _TWO_GROUPS.fullmatch(pattern) is None or compiled.groups < 2:
        raise ValidationError(field, f"{pattern!r}: two top subexpressions are required (metric name, value)")
    return compiled


class TextParser:
    """Parses TEXT lines for ``metric_names`` with ``filters`` (Katib's default when empty)."""

    def __init__(self, metric_names: Sequence[str], filters: Sequence[str] = ()) -> None:
        self.metric_names = tuple(name for name in metric_names if name)
        self._wanted = frozenset(self.metric_names)
        self._filters = [compile_filter(f, field=f"filters[{i}]") for i, f in enumerate(filters or (DEFAULT_FILTER,))]

    def parse_line(self, line: str, *, number: int = 0) -> list[MetricPoint]:
        """The rows one line holds (often none); ``number`` is for errors (TEXT has none)."""
        if not any(name in line for name in self.metric_names):
            return []
        moment = _line_time(line)
        rows: list[MetricPoint] = []
        for pattern in self._filters:
            for match in pattern.finditer(line):
                name, value = (match.group(1) or "").strip(), (match.group(2) or "").strip()
                if name in self._wanted and value:
                    rows.append(MetricPoint(moment, name, value))
        return rows

    def parse(self, lines: Iterable[str]) -> list[MetricPoint]:
        """Rows of all ``lines``, in order."""
        return [row for line in lines for row in self.parse_line(line)]


def _line_time(line: str) -> datetime:
    first, sep, _ = line.partition(" ")
    if sep:
        moment = timestamps.try_parse(first)
        if moment is not None:
            return moment
    return timestamps.ZERO_TIME


class JsonParser:
    """Parses JSON lines (one object per line) for ``metric_names``."""

    def __init__(self, metric_names: Sequence[str]) -> None:
        self.metric_names = tuple(name for name in metric_names if name)

    def parse_line(self, line: str, *, number: int = 0) -> list[MetricPoint]:
        """The rows of one line; blank lines hold none.

        Raises:
            ValidationError: the line is not a JSON object (``field`` names the line number).
        """
        if not line.strip():
            return []
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ValidationError(f"line {number}", f"is not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise ValidationError(f"line {number}", f"is JSON but not an object: {line[:80]!r}")
        moment = _json_time(record.get(TIMESTAMP_KEY))
        return [
            MetricPoint(moment, name, value) for name in self.metric_names if isinstance(value := record.get(name), str)
        ]

    def parse(self, lines: Iterable[str]) -> list[MetricPoint]:
        """Rows of all ``lines``; one bad line fails them all, as in Katib."""
        return [row for number, line in enumerate(lines, 1) for row in self.parse_line(line, number=number)]


def _json_time(value: object) -> datetime:
    if isinstance(value, str):
        return timestamps.try_parse(value) or timestamps.ZERO_TIME
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, timezone.utc).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            return timestamps.ZERO_TIME
    return timestamps.ZERO_TIME


def parser_for(file_format: str, metric_names: Sequence[str], filters: Sequence[str] = ()) -> TextParser | JsonParser:
    """The parser of ``file_format`` (``TEXT`` or ``JSON``; filters apply to TEXT only).

    Raises:
        ValidationError: unknown format, filters given for JSON, or a bad filter.
    """
    if file_format == constants.FileFormat.TEXT:
        return TextParser(metric_names, filters)
    if file_format == constants.FileFormat.JSON:
        if filters:
            raise ValidationError("filters", "must be empty when the format is JSON")
        return JsonParser(metric_names)
    raise ValidationError("format", f"{file_format!r} must be TEXT or JSON")


def parse(
    text: str | Iterable[str], *, metric_names: Sequence[str], file_format: str = "TEXT", filters: Sequence[str] = ()
) -> list[MetricPoint]:
    """Rows of ``text`` (a whole log, or its lines) in ``file_format``."""
    lines = text.splitlines() if isinstance(text, str) else text
    return parser_for(file_format, metric_names, filters).parse(lines)


def observation_rows(rows: Sequence[MetricPoint], objective: str) -> list[MetricPoint]:
    """What Katib reports: ``rows``, or only ``unavailable`` for ``objective`` when it never appears."""
    if any(row.name == objective for row in rows):
        return list(rows)
    return [MetricPoint(timestamps.ZERO_TIME, objective, constants.UNAVAILABLE)]
