"""``katib-metrics-collector``: wait for the training, parse its metrics, report them.

As Katib's sidecar does: docs/katib-compat.md#metric-parsing and #collectors.

While the training runs the metrics file is followed (echoed to stdout, parsed, and checked
against ``-stop-rule``s). When every rule holds the collector writes ``early-stopped`` into the
training's marker file, stops the training's processes, waits for its shell (≤ 60 s), reports and
calls ``SetTrialStatus`` (when ``-s-earlystop`` is given). Otherwise it reports once the training
has exited with ``completed``; a failed training is an error (exit 1), and so is a failed report.
An objective that never appeared is reported as Katib does: one ``unavailable`` row.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from katib_core import metric_parsing, training_markers
from katib_core.errors import ValidationError
from katib_metrics_collector import processes, reporting
from katib_metrics_collector.collecting import Collection, MetricsLog
from katib_metrics_collector.processes import Outcome, Training
from katib_metrics_collector.settings import Settings
from pykatib import dbmanager

_log = logging.getLogger("katib_metrics_collector")
#: How long to look for the marked training before settling for the first container process.
DISCOVERY_GRACE = 30.0
#: How long the training may take to exit after an early stop (Katib's limit).
EARLY_STOP_EXIT = 60.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the collector; return the process exit status."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = Settings.from_args(sys.argv[1:] if argv is None else argv)
    except ValidationError as exc:
        print(f"katib-metrics-collector: error: {exc}", file=sys.stderr)
        return 2
    return run(settings, echo=sys.stdout)


def run(
    settings: Settings,
    *,
    echo: TextIO | None,
    proc: Path = processes.PROC,
    open_channel: Callable[[str], dbmanager.Channel] = dbmanager.open_channel,
) -> int:
    """Collect for ``settings.trial_name``; 0 when reported, 1 on any failure (logged)."""
    directory = training_markers.marker_directory(settings.metrics_path)
    log = MetricsLog(Path(settings.metrics_path))
    collection = Collection(settings, echo=echo)
    stopped_at = _wait(settings, directory, log, collection, proc)
    if isinstance(stopped_at, str):
        _log.error("trial %s: %s", settings.trial_name, stopped_at)
        return 1
    collection.feed(log.read_lines(final=True))
    if collection.error is not None:
        _log.error("trial %s: cannot parse %s: %s", settings.trial_name, settings.metrics_path, collection.error)
        return 1
    rows = metric_parsing.observation_rows(collection.rows, settings.objective)
    try:
        reporting.report(
            open_channel(settings.db_manager_address), settings.trial_name, rows, timeout=settings.report_timeout
        )
    except dbmanager.RpcError as exc:
        _log.error(
            "trial %s: reporting %d rows to %s failed: %s",
            settings.trial_name,
            len(rows),
            settings.db_manager_address,
            exc,
        )
        return 1
    _log.info(
        "trial %s: reported %d metric rows to %s (peak RSS %.1f MiB)",
        settings.trial_name,
        len(rows),
        settings.db_manager_address,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    if stopped_at is not None and settings.early_stopping_address:
        try:
            channel = open_channel(settings.early_stopping_address)
            reporting.set_trial_status(channel, settings.trial_name, timeout=settings.report_timeout)
        except dbmanager.RpcError as exc:
            _log.error(
                "trial %s: SetTrialStatus at %s failed: %s", settings.trial_name, settings.early_stopping_address, exc
            )
            return 1
        _log.info("trial %s: marked early stopped at %s", settings.trial_name, settings.early_stopping_address)
    return 0


def _wait(
    settings: Settings, directory: str, log: MetricsLog, collection: Collection, proc: Path
) -> float | None | str:
    """Follow the training until it is done: None, the time of an early stop, or an error message."""
    began = time.monotonic()
    deadline = began + settings.timeout if settings.timeout > 0 else None
    training: Training | str | None = None
    stopped_at: float | None = None
    while True:
        met = collection.feed(log.read_lines())
        if training is None:
            training = _discover(settings, directory, proc, grace_over=time.monotonic() - began > DISCOVERY_GRACE)
        if isinstance(training, str):
            return training
        if training is not None:
            if met and stopped_at is None and training.main is not None:
                stopped_at = _stop_early(settings, directory, training.main.pid, proc)
            done = _finished(directory, training, proc, stopped=stopped_at is not None)
            if isinstance(done, str) or done is True:
                return done if isinstance(done, str) else stopped_at
            if stopped_at is not None and time.monotonic() - stopped_at > EARLY_STOP_EXIT:
                _log.warning(
                    "trial %s: the training still runs %.0f s after the early stop",
                    settings.trial_name,
                    EARLY_STOP_EXIT,
                )
                return stopped_at
        if deadline is not None and time.monotonic() > deadline:
            return f"timed out after {settings.timeout:g} s waiting for the training to finish"
        time.sleep(settings.poll_interval)


def _discover(settings: Settings, directory: str, proc: Path, *, grace_over: bool) -> Training | str | None:
    """The training to wait for, an error message, or None while it has not appeared."""
    found = processes.find_training(directory, wait_all=settings.wait_all, fallback=grace_over, proc=proc)
    if found is None:
        finished = processes.finished_before(directory)
        if finished is None:
            return None
        if finished[0] is Outcome.FAILED:
            return finished[1]
        _log.info("trial %s: the training finished before the collector looked", settings.trial_name)
        found = Training(None, processes.others(None, wait_all=settings.wait_all, proc=proc))
    else:
        assert found.main is not None
        _log.info("trial %s: waiting for pid %d (%s)", settings.trial_name, found.main.pid, found.main.cmdline[:120])
    if found.others:
        _log.info("trial %s: and for %d more container processes (wait-all)", settings.trial_name, len(found.others))
    return found


def _finished(directory: str, training: Training, proc: Path, *, stopped: bool) -> bool | str:
    """True when done waiting, False while running, a message when the training failed."""
    if training.main is not None:
        if processes.alive(training.main, proc):
            return False
        result, message = processes.outcome(directory, training.main.pid)
        if result is Outcome.FAILED and not stopped:
            return message
        if stopped or result is Outcome.EARLY_STOPPED:
            return True  # the other containers do not matter any more
    return not any(processes.alive(other, proc) for other in training.others)


def _stop_early(settings: Settings, directory: str, main_pid: int, proc: Path) -> float:
    processes.mark_early_stopped(directory, main_pid)
    stopped = processes.terminate_below(main_pid, proc)
    _log.info("trial %s: every early-stopping rule holds; stopped pids %s", settings.trial_name, stopped)
    return time.monotonic()


if __name__ == "__main__":
    sys.exit(main())
