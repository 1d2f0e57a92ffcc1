"""The local experiment loop: the controllers' pure logic, run in-process against the local store.

Each pass plans the Experiment with ``katib_core.planning.plan_experiment`` (the same function
the Kubernetes experiment controller runs), asks ``katib_suggest`` for new assignments, creates
Trials, and reconciles every Trial with ``katib_core.trial_reconcile`` — the trial controller's
logic — where the "job" is a process on this machine: a synthetic Job status (active, Complete,
Failed with the exit code and the tail of the output) stands in for the API object. StdOut
trials are parsed with Katib's rules (``katib_core.metric_parsing``) and their metrics reported
when the process exits, as the sidecar does; Push trials report themselves.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from katib_core import (
    constants,
    early_stopping,
    experiment_status,
    metric_parsing,
    planning,
    suggestions,
    timestamps,
    trial_conditions,
    trial_reconcile,
)
from katib_core.constants import CollectorKind, SuggestionConditionType
from katib_core.errors import KatibError, NotFoundError, ValidationError
from katib_core.models import Experiment, ExperimentStatus, Suggestion, Trial
from katib_suggest.algorithms import Suggester
from pykatib import _wire
from pykatib._dbmanager import DBManagerClient
from pykatib_local import containers, gpus
from pykatib_local.store import LocalStore
from pykatib_local.trial_process import TrialProcess, describe_exit

_log = logging.getLogger(__name__)
_RPC_TIMEOUT = 60.0


@dataclass
class _Job:
    """A trial's process, or how it ended."""

    process: TrialProcess | None
    devices: list[str] = field(default_factory=list)
    exit_code: int | None = None
    message: str = ""


@dataclass(frozen=True)
class Progress:
    """What a progress display shows after each pass."""

    experiment: Experiment
    trials: tuple[Trial, ...]


class ExperimentRunner:
    """Runs one Experiment of ``store`` to completion (or until ``stop`` is set)."""

    def __init__(
        self,
        store: LocalStore,
        *,
        db: DBManagerClient,
        db_address: str,
        suggester: Suggester,
        gpu_pool: gpus.GpuPool,
        bin_dir: Path,
        token_for: Callable[[str, str], str | None] = lambda namespace, trial: None,
        poll_interval: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._db = db
        self._db_address = db_address
        self._suggester = suggester
        self._gpus = gpu_pool
        self._bin_dir = bin_dir
        self._token_for = token_for
        self._poll = poll_interval
        self._rng = rng or random.Random()
        self._jobs: dict[str, _Job] = {}
        self._objective_logs: dict[str, list[str]] = {}
        self._wake = threading.Event()
        self._noticed_images = False
        #: Trial commands run where `pykatib run` was started (relative paths in YAML resolve there).
        self._cwd = Path.cwd()

    def run(
        self,
        namespace: str,
        name: str,
        *,
        stop: threading.Event,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Experiment:
        """Drive the Experiment until it is finished; on ``stop``, stop its trial processes (resumable)."""
        try:
            while not stop.is_set():
                experiment, trials, finished, changed = self._pass(namespace, name)
                if on_progress is not None:
                    on_progress(Progress(experiment, tuple(trials)))
                if finished:
                    return experiment
                if not changed:  # a trial that just finished frees a slot: plan again at once
                    self._wake.wait(self._poll)
                self._wake.clear()
        except ValidationError as exc:
            # A permanent problem found while running (more GPUs than this machine has…): the
            # Experiment ends Failed with the reason instead of being left Running.
            self._fail(namespace, name, str(exc))
            raise
        finally:
            self.stop_all()
        return self._store.get(Experiment, namespace, name)

    def _fail(self, namespace: str, name: str, message: str) -> None:
        experiment = self._store.get(Experiment, namespace, name)
        status = experiment_status.mark(
            experiment.status or ExperimentStatus(),
            constants.ExperimentConditionType.FAILED,
            constants.ExperimentReason.FAILED,
            message,
            now=_now(),
        )
        self._store.update(experiment.model_copy(update={"status": status}))

    def stop_all(self, grace: float = 10.0) -> None:
        """Terminate every running trial process; their Trials stay as they were (a rerun resumes)."""
        for job in list(self._jobs.values()):
            if job.process is not None and job.process.poll() is None:
                job.process.stop(grace)
                self._gpus.release(job.devices)
        self._jobs.clear()

    # -- one pass --------------------------------------------------------------------------

    def _pass(self, namespace: str, name: str) -> tuple[Experiment, list[Trial], bool, bool]:
        """One pass: plan the Experiment, create Trials, reconcile the live ones.

        Returns the Experiment, its Trials, whether it is finished, and whether any Trial changed.
        """
        now = _now()
        experiment = self._store.get(Experiment, namespace, name)
        trials = self._store.list_trials(namespace, experiment=name)
        suggestion = self._suggestion(namespace, name)
        plan = planning.plan_experiment(experiment, trials, suggestion, now=now)
        if plan.suggestion_changed:
            suggestion = self._save_suggestion(plan.suggestion, created=suggestion is None)
        if plan.request is not None:
            try:
                reply = self._suggester.suggest(plan.request)
            except ValidationError as exc:
                # As the experiment controller does: the Suggestion fails, so the Experiment does.
                current = suggestion or plan.suggestion
                failed = suggestions.mark(
                    current, SuggestionConditionType.FAILED, suggestions.REASON_FAILED, str(exc), now=now
                )
                self._save_suggestion(failed, created=suggestion is None)
                return experiment, trials, False, True
            taken = [t.metadata.name for t in trials if t.metadata and t.metadata.name]
            rules = early_stopping.median_stop_rules(
                plan.experiment, self._succeeded_objectives(plan.experiment, trials)
            )
            recorded = suggestions.record(
                plan.suggestion, plan.experiment, reply, taken=taken, rng=self._rng, now=now, early_stopping_rules=rules
            )
            suggestion = self._save_suggestion(recorded, created=suggestion is None)
            plan = planning.plan_experiment(experiment, trials, suggestion, now=now)
        for trial in plan.trials_to_create:
            trials.append(self._store.create(trial, experiment=name))
        if plan.status != experiment.status:
            experiment = self._store.update(experiment.model_copy(update={"status": plan.status}))
        if plan.finished:
            return experiment, trials, True, False
        reconciled = [self._reconcile(plan.experiment, trial) if self._live(trial) else trial for trial in trials]
        changed = any(new is not old for new, old in zip(reconciled, trials, strict=True))
        return experiment, reconciled, False, changed or bool(plan.trials_to_create)

    def _succeeded_objectives(self, experiment: Experiment, trials: list[Trial]) -> list[list[str]]:
        """Per succeeded trial, its objective values in report order (what medianstop reads)."""
        metric, names = early_stopping.succeeded_trials(experiment, trials)
        for name in names:
            if name not in self._objective_logs:  # a succeeded trial's logs never change
                logs = self._db.get(name, metric_name=metric, timeout=_RPC_TIMEOUT)
                self._objective_logs[name] = [log.metric.value for log in logs]
        return [self._objective_logs[name] for name in names]

    def _live(self, trial: Trial) -> bool:
        """Whether a pass has anything to do for ``trial``: finished ones without a process are left be."""
        name = trial.metadata.name if trial.metadata else None
        return not trial_conditions.is_completed(trial.status) or name in self._jobs

    def _reconcile(self, experiment: Experiment, trial: Trial) -> Trial:
        name = trial.metadata.name if trial.metadata and trial.metadata.name else ""
        now = _now()
        plan = trial_reconcile.plan_trial(trial, self._job_object(trial), now=now)
        if plan.job_action == trial_reconcile.JobAction.CREATE and not self._start(experiment, trial):
            return trial  # waiting for GPUs: nothing changes yet
        if plan.job_action == trial_reconcile.JobAction.DELETE:
            self._forget(name)
        rows = None
        if plan.read_observation:
            rows = [
                (log.time_stamp, log.metric.name, log.metric.value) for log in self._db.get(name, timeout=_RPC_TIMEOUT)
            ]
        update = trial_reconcile.conclude(trial, plan, rows, now=now)
        if update.sentinel is not None:
            self._report(name, [update.sentinel], key=f"sentinel-{trial.metadata.uid if trial.metadata else name}")
        if update.status == trial.status:
            return trial
        return self._store.update(trial.model_copy(update={"status": update.status}))

    # -- trial processes -----------------------------------------------------------------------

    def _start(self, experiment: Experiment, trial: Trial) -> bool:
        meta = trial.metadata
        if meta is None or not meta.name or not meta.namespace:
            raise ValidationError("metadata", "a Trial needs a name and a namespace")
        try:
            wanted = gpus.requested(containers.gpu_limits(trial))
        except ValidationError as exc:  # the Job cannot start: its trial fails, the experiment goes on
            self._jobs[meta.name] = _Job(None, exit_code=127, message=f"cannot start the trial: {exc}")
            return True
        devices = self._gpus.try_acquire(wanted)
        if devices is None:
            return False
        if not self._noticed_images and containers.image(trial):
            _log.info(
                "local mode: container images are ignored (%s); trial commands run on this machine",
                containers.image(trial),
            )
            self._noticed_images = True
        env = {
            constants.TRIAL_NAME_ENV: meta.name,
            constants.DB_MANAGER_ADDRESS_ENV: self._db_address,
            "PATH": f"{self._bin_dir}:{_os_path()}",
            "PYTHONPATH": _python_path(),
            "PYTHONUNBUFFERED": "1",
        }
        if wanted or self._gpus.total:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
        rules = trial.spec.early_stopping_rules if trial.spec else None
        objective = trial.spec.objective if trial.spec else None
        if rules and objective is not None:
            env[early_stopping.RULES_ENV] = early_stopping.encode_rules(rules)
            env[early_stopping.OBJECTIVE_ENV] = early_stopping.encode_objective(
                objective.objective_metric_name or "", objective.type or ""
            )
        token = self._token_for(meta.namespace, meta.name)
        if token:
            env["KATIB_TRIAL_TOKEN"] = token
        try:
            command = containers.command_for(trial, extra_env=env, default_cwd=self._cwd)
            directory = self._store.trial_dir(meta.namespace, _experiment_name(trial, experiment), meta.name)
            process = TrialProcess(command, directory)
        except (ValidationError, OSError) as exc:
            self._gpus.release(devices)
            self._jobs[meta.name] = _Job(None, exit_code=127, message=f"cannot start the trial: {exc}")
            return True
        self._jobs[meta.name] = _Job(process, devices)
        threading.Thread(target=self._watch, args=(meta.name, trial), name=f"watch-{meta.name}", daemon=True).start()
        return True

    def _watch(self, name: str, trial: Trial) -> None:
        job = self._jobs.get(name)
        if job is None or job.process is None:
            return
        code = job.process.wait()
        if code == 0 and trial_reconcile.collector_kind(trial) == CollectorKind.STDOUT:
            try:
                self._collect_stdout(name, trial, job.process)
            except (KatibError, OSError) as exc:  # what the sidecar's fatal error is in a cluster
                code, job.message = 1, f"metrics collection failed: {exc}"
        if code != 0 and not job.message:
            job.message = f"{describe_exit(code)}; last output:\n{job.process.log_tail()}"
        self._gpus.release(job.devices)
        job.exit_code = code
        self._wake.set()

    def _collect_stdout(self, name: str, trial: Trial, process: TrialProcess) -> None:
        objective = trial.spec.objective if trial.spec else None
        metric = (objective.objective_metric_name if objective else None) or ""
        names = [metric, *((objective.additional_metric_names if objective else None) or [])]
        source = trial.spec.metrics_collector.source if trial.spec and trial.spec.metrics_collector else None
        filters = (source.filter.metrics_format if source and source.filter else None) or []
        rows = metric_parsing.parse(process.log_path.read_text(errors="replace"), metric_names=names, filters=filters)
        rows = metric_parsing.observation_rows(rows, metric)
        stamped = [(timestamps.format_nano(row.time), row.name, row.value) for row in rows]
        self._report(name, stamped, key=f"stdout-{trial.metadata.uid if trial.metadata else name}")

    def _report(self, trial: str, rows: list[tuple[str, str, str]], *, key: str) -> None:
        logs = [_wire.encode_metric_log(stamp, metric, value) for stamp, metric, value in rows]
        self._db.report(trial, logs, key=key[:64], timeout=_RPC_TIMEOUT)

    def _job_object(self, trial: Trial) -> dict[str, Any] | None:
        """The trial's job as the controller would read it from the API server (None: not created)."""
        name = trial.metadata.name if trial.metadata and trial.metadata.name else ""
        job = self._jobs.get(name)
        if job is None:
            return None
        if job.exit_code is None:
            status: dict[str, Any] = {"active": 1}
        elif job.exit_code == 0:
            done = {
                "status": constants.CONDITION_TRUE,
                "reason": "Completed",
                "message": "the trial process exited with 0",
            }
            status = {"succeeded": 1, "conditions": [{"type": "Complete", **done}, {"type": "Succeeded", **done}]}
        else:
            failed = {"type": "Failed", "status": constants.CONDITION_TRUE, "reason": "Error", "message": job.message}
            status = {"failed": 1, "conditions": [failed]}
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": trial_reconcile.job_name(trial)},
            "status": status,
        }

    def _forget(self, name: str) -> None:
        job = self._jobs.pop(name, None)
        if job is not None and job.process is not None and job.process.poll() is None:
            job.process.stop()
            self._gpus.release(job.devices)

    # -- suggestion record ---------------------------------------------------------------------

    def _suggestion(self, namespace: str, name: str) -> Suggestion | None:
        try:
            return self._store.get(Suggestion, namespace, name, experiment=name)
        except NotFoundError:
            return None

    def _save_suggestion(self, suggestion: Suggestion, *, created: bool) -> Suggestion:
        if created:
            return self._store.create(suggestion, experiment=suggestion.metadata.name if suggestion.metadata else None)
        return self._store.update(suggestion, experiment=suggestion.metadata.name if suggestion.metadata else None)


def _experiment_name(trial: Trial, experiment: Experiment) -> str:
    labels = (trial.metadata.labels if trial.metadata else None) or {}
    return labels.get(constants.EXPERIMENT_LABEL) or (experiment.metadata.name if experiment.metadata else "") or ""


def _now() -> str:
    return timestamps.format_nano(timestamps.utc_now().replace(microsecond=0))


def _python_path() -> str:
    """The user's PYTHONPATH, then everything this process imports from: trials can import pykatib
    (``report_metrics``) even when the runner itself is a pex."""
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    entries += [os.path.abspath(p) for p in sys.path if p and os.path.exists(p)]
    return os.pathsep.join(dict.fromkeys(entries))


def _os_path() -> str:
    return os.environ.get("PATH", "/usr/bin:/bin")


__all__ = ["ExperimentRunner", "Progress"]
