"""Early stopping inside a Push trial: the trial's stop rules, checked on every report.

The controllers (or local mode) compute the rules — Katib's medianstop — and give them to the
trial in env ``KATIB_EARLY_STOPPING_RULES``. ``report_metrics`` feeds each report to a
``StopRuleTracker``; once every rule has held, the verdict is final: ``report_metrics`` returns
True, ``should_stop()`` returns True, the marker metric ``pykatib.early-stopped`` is stored (the
controller turns the trial EarlyStopped from it), and unless the training loop ends by itself
within ``KATIB_EARLY_STOPPING_GRACE_SECONDS`` (default 3 s) the process is sent SIGTERM, as
Katib's sidecar stops a pull trial.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
from collections.abc import Sequence
from datetime import datetime

from katib_core import trial_stopping
from katib_core.observations import MetricPoint
from katib_core.stop_rules import StopRuleTracker

_log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1)


class EarlyStop:
    """This process's rules, verdict and stop timer (rules read from env once)."""

    def __init__(self, environ: os._Environ[str] | dict[str, str] = os.environ) -> None:
        rules = trial_stopping.decode_rules(environ.get(trial_stopping.RULES_ENV, ""))
        objective, kind = trial_stopping.decode_objective(environ.get(trial_stopping.OBJECTIVE_ENV, ""))
        self.tracker = StopRuleTracker(rules, objective=objective, objective_type=kind) if rules else None
        grace = environ.get(trial_stopping.GRACE_ENV, "")
        self.grace = float(grace) if grace else trial_stopping.DEFAULT_GRACE_SECONDS
        if not (math.isfinite(self.grace) and self.grace >= 0):
            raise ValueError(f"{trial_stopping.GRACE_ENV}={grace!r} must be a number of seconds >= 0")
        self.stopped = False
        self._lock = threading.Lock()

    def feed(self, pairs: Sequence[tuple[str, str]]) -> bool:
        """Account for one report; True exactly once, when it meets the rules."""
        if self.tracker is None or self.stopped:
            return False
        with self._lock:
            if self.stopped:
                return False
            met = self.tracker.feed(MetricPoint(_EPOCH, name, value) for name, value in pairs)
            if met:
                self.stopped = True
            return met

    def stop_later(self) -> None:
        """Send SIGTERM to this process after the grace period, unless it exits first."""
        timer = threading.Timer(self.grace, _terminate)
        timer.daemon = True
        timer.start()


def _terminate() -> None:
    _log.warning("early stopped: the trial did not end within its grace period; stopping it")
    os.kill(os.getpid(), signal.SIGTERM)


__all__ = ["EarlyStop"]
