"""Katib's collector flags (single dash, as Go's ``flag`` package takes them), read into ``Settings``.

``-t TRIAL -m "obj;other" -o-type minimize -s-db HOST:PORT -path FILE -format TEXT|JSON
-f "filter;filter" -p 1s -timeout 0 -w true -stop-rule "name;value;comparison;start" -s-earlystop HOST:PORT``
— exactly what the pod webhook passes (docs/katib-compat.md#sidecar-flags). ``--report-timeout`` is ours.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from katib_core import durations, metric_parsing, stop_rules
from katib_core.constants import FileFormat
from katib_core.errors import ValidationError
from katib_core.stop_rules import StopRule

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass(frozen=True)
class Settings:
    trial_name: str
    metric_names: tuple[str, ...]
    objective_type: str
    db_manager_address: str
    metrics_path: str
    file_format: str
    filters: tuple[str, ...]
    poll_interval: float
    #: Seconds to wait for the training processes (0: no limit).
    timeout: float
    wait_all: bool
    stop_rules: tuple[StopRule, ...]
    early_stopping_address: str
    report_timeout: float

    @property
    def objective(self) -> str:
        return self.metric_names[0]

    @classmethod
    def from_args(cls, argv: Sequence[str]) -> Settings:
        """Parse Katib's flags (``-name value``, ``-name=value`` or ``--name``).

        Raises:
            ValidationError: a value is malformed or a required flag is missing; names the flag.
        """
        args = _parser().parse_args(argv)
        if not args.t:
            raise ValidationError("-t", "the trial name is required")
        names = tuple(name for name in args.m.split(";") if name)
        if not names:
            raise ValidationError("-m", "at least the objective metric is required")
        if not args.path:
            raise ValidationError("-path", "the metrics file is required")
        file_format = args.format or FileFormat.TEXT
        filters = tuple(f for f in args.f.split(";") if f) if args.f else ()
        metric_parsing.parser_for(file_format, names, filters)  # checks format and filters
        if args.w not in _TRUE | _FALSE:
            raise ValidationError("-w", f"{args.w!r} is not a boolean")
        poll = durations.parse(args.p, field="-p")
        if poll <= 0:
            raise ValidationError("-p", "must be positive")
        return cls(
            trial_name=args.t,
            metric_names=names,
            objective_type=args.o_type,
            db_manager_address=args.s_db,
            metrics_path=args.path,
            file_format=file_format,
            filters=filters,
            poll_interval=poll,
            timeout=durations.parse(args.timeout, field="-timeout"),
            wait_all=args.w in _TRUE,
            stop_rules=tuple(stop_rules.parse_flag(rule) for rule in args.stop_rule),
            early_stopping_address=args.s_earlystop,
            report_timeout=durations.parse(args.report_timeout, field="--report-timeout"),
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="katib-metrics-collector",
        description="Katib's pull-mode metrics collector: waits for the training, parses its metrics, reports them.",
        allow_abbrev=False,
    )

    def flag(name: str, **kwargs: object) -> None:
        parser.add_argument(f"-{name}", f"--{name}", **kwargs)  # type: ignore[arg-type]

    flag("t", default="", help="trial name")
    flag("m", default="", help="metric names, ';'-separated, objective first")
    flag("o-type", dest="o_type", default="", help="objective type: minimize or maximize")
    flag("s-db", dest="s_db", default="katib-db-manager.kubeflow:6789", help="DB manager address")
    flag("path", default="", help="metrics file (StdOut: /var/log/katib/metrics.log)")
    flag("format", default="", help="TEXT (default) or JSON")
    flag("f", default="", help="metric filters (regular expressions), ';'-separated; TEXT only")
    flag("p", default="1s", help="poll interval")
    flag("timeout", default="0", help="limit of the wait for the training (0: none)")
    flag("w", default="true", help="wait for every process of the Pod, not only the training")
    flag("stop-rule", dest="stop_rule", action="append", default=[], help="name;value;comparison;startStep")
    flag("s-earlystop", dest="s_earlystop", default="", help="early-stopping service address (SetTrialStatus)")
    parser.add_argument("--report-timeout", default="120s", help="how long to retry the report")
    return parser
