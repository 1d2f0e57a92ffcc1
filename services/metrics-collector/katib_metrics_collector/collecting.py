"""Following the metrics file and turning its lines into rows while the training runs.

``MetricsLog`` hands out the complete lines written since the last read (the last, unterminated
line only at the end); ``Collection`` echoes them (for StdOut the sidecar's log is the training's
output), parses them with ``katib_core.metric_parsing`` and feeds early-stopping rules.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from katib_core import metric_parsing
from katib_core.errors import ValidationError
from katib_core.observations import MetricPoint
from katib_core.stop_rules import StopRuleTracker
from katib_metrics_collector.settings import Settings


class MetricsLog:
    """A file another process appends to; tolerates it not existing yet or being truncated."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._rest = b""

    def read_lines(self, *, final: bool = False) -> list[str]:
        """Lines completed since the last call; with ``final`` also an unterminated last line."""
        try:
            with self.path.open("rb") as file:
                if os.fstat(file.fileno()).st_size < self._offset:  # truncated: start over
                    self._offset, self._rest = 0, b""
                file.seek(self._offset)
                data = file.read()
        except FileNotFoundError:
            data = b""
        self._offset += len(data)
        chunks = (self._rest + data).split(b"\n")
        self._rest = chunks.pop()
        if final and self._rest:
            chunks.append(self._rest)
            self._rest = b""
        return [chunk.decode("utf-8", "replace").rstrip("\r") for chunk in chunks]


class Collection:
    """Rows parsed so far, the first parse error, and the early-stopping verdict."""

    def __init__(self, settings: Settings, *, echo: TextIO | None) -> None:
        self._parser = metric_parsing.parser_for(settings.file_format, settings.metric_names, settings.filters)
        self._echo = echo
        self._lines = 0
        self.rows: list[MetricPoint] = []
        self.error: ValidationError | None = None
        self.tracker = (
            StopRuleTracker(settings.stop_rules, objective=settings.objective, objective_type=settings.objective_type)
            if settings.stop_rules
            else None
        )

    def feed(self, lines: list[str]) -> bool:
        """Take new lines; return whether every early-stopping rule has been met."""
        if self._echo is not None and lines:
            self._echo.write("".join(line + "\n" for line in lines))
            self._echo.flush()
        for line in lines:
            self._lines += 1
            if self.error is not None:
                continue  # one bad JSON line fails the report anyway (Katib)
            try:
                rows = self._parser.parse_line(line, number=self._lines)
            except ValidationError as exc:
                self.error = exc
                continue
            self.rows += rows
            if self.tracker is not None and rows:
                self.tracker.feed(rows)
        return self.tracker is not None and self.tracker.met
