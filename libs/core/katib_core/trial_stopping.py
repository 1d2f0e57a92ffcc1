"""What a trial process gets for early stopping, and what it leaves behind (``early_stopping``).

The experiment side computes rules (``early_stopping``); the trial side only reads them from its
environment and stores the marker metric once they are met. This module is that trial side: it
runs in trial images (Python 3.8+) and imports nothing beyond ``stop_rules``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from katib_core import stop_rules

#: The trial process reads its rules here (``name;value;comparison;startStep`` per line).
RULES_ENV: Final = "KATIB_EARLY_STOPPING_RULES"
#: The trial's objective (``name;minimize|maximize``): rules on it compare the best value so far.
OBJECTIVE_ENV: Final = "KATIB_EARLY_STOPPING_OBJECTIVE"
#: Seconds a trial process may keep running after its verdict before the SDK stops it.
GRACE_ENV: Final = "KATIB_EARLY_STOPPING_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS: Final = 3.0
#: Stored by the SDK when the rules are met: the metric log that makes the Trial EarlyStopped.
MARKER_METRIC: Final = "pykatib.early-stopped"
MARKER_VALUE: Final = "1"


def decode_rules(text: str) -> list[stop_rules.StopRule]:
    """Rules from ``KATIB_EARLY_STOPPING_RULES``.

    Raises:
        ValidationError: naming the env variable.
    """
    return [stop_rules.parse_flag(line, field=RULES_ENV) for line in text.splitlines() if line.strip()]


def encode_objective(experiment_or_trial_objective_name: str, objective_type: str) -> str:
    return f"{experiment_or_trial_objective_name};{objective_type}"


def decode_objective(text: str) -> tuple[str, str]:
    name, _, kind = text.partition(";")
    return name, kind


def is_marked(rows: Iterable[tuple[str, str, str]]) -> bool:
    """Whether a trial's metric logs ``(time, name, value)`` hold the early-stop marker."""
    return any(name == MARKER_METRIC for _, name, _ in rows)


__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "GRACE_ENV",
    "MARKER_METRIC",
    "MARKER_VALUE",
    "OBJECTIVE_ENV",
    "RULES_ENV",
    "decode_objective",
    "decode_rules",
    "encode_objective",
    "is_marked",
]
