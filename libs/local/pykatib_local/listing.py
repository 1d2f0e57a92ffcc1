"""``pykatib get … -o json|yaml|csv``: experiments and trials as records for programs.

People get rounded numbers in tables (``summaries.for_people``); programs get exact values here:
JSON and YAML carry numbers as numbers (parsed from the exact strings stored) and CSV carries the
exact strings, so ``-o csv`` read back gives what the trials reported.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from katib_core import trial_results
from katib_core.models import Experiment
from pykatib_local import summaries

#: ``-o`` choices; ``table`` and ``wide`` are printed by the CLI with rich.
FORMATS = ("table", "wide", "json", "yaml", "csv")


def experiment_record(experiment: Experiment) -> dict[str, Any]:
    meta, spec, status = experiment.metadata, experiment.spec, experiment.status
    algorithm = spec.algorithm.algorithm_name if spec and spec.algorithm else None
    best = summaries.best_value(experiment)
    return {
        "name": (meta.name if meta else None) or "",
        "namespace": (meta.namespace if meta else None) or "",
        "status": summaries.condition(experiment),
        "algorithm": algorithm or "",
        "objective": trial_results.objective_metric(experiment),
        "maxTrialCount": spec.max_trial_count if spec else None,
        "trials": (status.trials if status else 0) or 0,
        "succeeded": (status.trials_succeeded if status else 0) or 0,
        "failed": (status.trials_failed if status else 0) or 0,
        "metricsUnavailable": (status.trial_metrics_unavailable if status else 0) or 0,
        "running": (status.trials_running if status else 0) or 0,
        "bestTrial": summaries.best_trial(experiment),
        "bestValue": trial_results.typed(best) if best else None,
        "startTime": (status.start_time if status else None) or "",
        "completionTime": (status.completion_time if status else None) or "",
    }


def trial_record(row: trial_results.TrialRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "status": row.status,
        "parameters": {k: trial_results.typed(v) for k, v in row.parameters.items()},
        "metrics": {k: trial_results.typed(v) if v else None for k, v in row.metrics.items()},
        "reason": row.reason,
        "startTime": row.start,
        "completionTime": row.completion,
    }


def trial_csv_row(row: trial_results.TrialRow) -> dict[str, str]:
    """One CSV line: parameters and metrics flattened to columns, exact strings."""
    return {
        "name": row.name,
        "status": row.status,
        **row.parameters,
        **row.metrics,
        "reason": row.reason,
        "startTime": row.start,
        "completionTime": row.completion,
    }


def render(records: Sequence[Mapping[str, Any]], fmt: str) -> str:
    """``records`` as ``json``, ``yaml`` or ``csv`` (columns: the first record's keys)."""
    if fmt == "json":
        return json.dumps(list(records), indent=2) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump([dict(r) for r in records], sort_keys=False)
    if fmt == "csv":
        out = io.StringIO()
        columns = list(records[0]) if records else ["name"]
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in records)
        return out.getvalue()
    raise ValueError(f"-o {fmt}: expected one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "experiment_record", "render", "trial_csv_row", "trial_record"]
