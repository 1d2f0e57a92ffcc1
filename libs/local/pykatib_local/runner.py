"""Local mode's adapter around the controllers' loops: objects live in the work directory, jobs are processes.

Each pass runs ``katib_core.experiment_loop`` (the experiment controller's loop) over the
Experiment, then ``katib_core.trial_loop`` (the trial controller's) over each live Trial. This
module is the loops' port: ``LocalStore`` for Experiments, Suggestions and Trials, and a process
on this machine for each trial's job, shown to the loop as a Job object (active; Complete; Failed
with the exit code and the tail of the output). StdOut trials are parsed with Katib's rules
(``katib_core.metric_parsing``) and their metrics reported when the process exits, as the sidecar
does; Push trials report themselves. A PBT trial starts with a copy of its parent's checkpoint
directory where its template names ``suggestion_trial_dir`` (``katib_suggest.pbt.handover``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from katib_core import (
    constants,
    early_stopping,
    experiment_loop,
    experiment_status,
    metric_parsing,
    timestamps,
    trial_conditions,
    trial_loop,
    trial_reconcile,
)
from katib_core.constants import CollectorKind
from katib_core.errors import AlreadyExistsError, KatibError, NotFoundError, StorageUnavailableError, ValidationError
from katib_core.events import Event
from katib_core.models import Experiment, ExperimentStatus, Suggestion, Trial, TrialStatus
from katib_suggest import pbt
from katib_suggest.remote import SuggestionServiceError
from pykatib._dbmanager import DBManagerClient
from pykatib.metric_logs import MetricLogs
from pykatib_local import containers, gpus, objective_script
from pykatib_local.store import LocalStore
from pykatib_local.trial_process import LOG_NAME, Command, TrialProcess, describe_exit
from pykatib_local.zygote import ForkedTrial, Zygote, ZygoteError

_log = logging.getLogger(__name__)
_RPC_TIMEOUT = 60.0
#: Local mode's stand-in for the Suggestion's volume: ``<experiment dir>/checkpoints/<trial>``.
CHECKPOINTS_DIR = "checkpoints"


@dataclass
class _Job:
    """A trial's process, or how it ended."""

    process: TrialProcess | ForkedTrial | None
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
        suggester: experiment_loop.Algorithm,
        gpu_pool: gpus.GpuPool,
        bin_dir: Path,
        token_for: Callable[[str, str], str | None] = lambda namespace, trial: None,
        poll_interval: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._logs = MetricLogs(db, timeout=_RPC_TIMEOUT)
        self._db_address = db_address
        self._loop = experiment_loop.ExperimentLoop(self, suggester, now=_now, rng=rng)
        self._gpus = gpu_pool
        self._bin_dir = bin_dir
        self._token_for = token_for
        self._poll = poll_interval
        self._jobs: dict[str, _Job] = {}
        self._wake = threading.Event()
        self._noticed_images = False
        self._noticed_checkpoint_path = False
        self._zygote: Zygote | None = None
        #: Why tune() trials run as commands (the zygote failed or ended), once said.
        self._no_zygote: str | None = None
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
                if not changed:  # else look again at once: a change (a trial ended, one started) may lead to more
                    self._wake.wait(self._poll)
                self._wake.clear()
        except ValidationError as exc:
            # A permanent problem found while running (more GPUs than this machine has…): the
            # Experiment ends Failed with the reason instead of being left Running.
            self._fail(namespace, name, str(exc))
            raise
        finally:
            self.stop_all()
            if self._zygote is not None:
                self._zygote.close()
                self._zygote = None
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
        """One pass: the trial loop over each live Trial, the experiment loop, then the trial loop
        over the Trials it created (their processes start).

        Trials first: a trial that has just ended frees its slot for this pass's plan, so a finished
        trial costs one run of the experiment loop, not two. Returns the Experiment, its Trials,
        whether it is finished, and whether to pass again at once (a Trial changed).
        """
        experiment = self._store.get(Experiment, namespace, name)
        listed = self._store.list_trials(namespace, experiment=name)
        trials = [self._reconcile(trial) if self._live(trial) else trial for trial in listed]
        changed = any(new is not old for new, old in zip(trials, listed, strict=True))
        try:
            done = self._loop.run_pass(experiment, trials, self._suggestion(namespace, name))
        except SuggestionServiceError as exc:  # as the controller's retry: the next pass asks again
            _log.warning("experiment %s/%s: the suggestion service failed: %s", namespace, name, exc)
            return experiment, trials, False, False
        if done.suggestion_error is not None or done.finished:
            return done.experiment, list(done.trials), done.finished, True
        started = [self._reconcile(trial) for trial in done.created]
        return done.experiment, [*trials, *started], False, changed or bool(done.created)

    def _live(self, trial: Trial) -> bool:
        """Whether a pass has anything to do for ``trial``: finished ones without a process are left be."""
        name = trial.metadata.name if trial.metadata else None
        return not trial_conditions.is_completed(trial.status) or name in self._jobs

    def _reconcile(self, trial: Trial) -> Trial:
        try:
            return trial_loop.run_pass(trial, self, self._logs, now=_now()).trial
        except StorageUnavailableError as exc:  # as the controller's retry: the next pass tries again
            _log.info("trial %s: %s", trial.metadata.name if trial.metadata else "?", exc)
            return trial

    # -- experiment_loop.ExperimentPort ------------------------------------------------------

    def save_suggestion(self, record: Suggestion, *, create: bool) -> Suggestion:
        experiment = record.metadata.name if record.metadata else None
        if create:
            return self._store.create(record, experiment=experiment)
        return self._store.update(record, experiment=experiment)

    def create_trials(self, namespace: str, trials: Sequence[Trial]) -> list[Trial]:
        created = []
        for trial in trials:
            try:
                created.append(self._store.create(trial, experiment=_experiment_name(trial)))
            except AlreadyExistsError:
                continue
        return created

    def save_status(self, obj: Any, status: ExperimentStatus | TrialStatus) -> Any:
        """Both ports' ``save_status``: an Experiment's or a Trial's."""
        return self._store.update(obj.model_copy(update={"status": status}))

    def objective_values(self, namespace: str, trial: str, metric: str) -> list[str]:
        return self._logs.values(trial, metric)

    def template(self, experiment: Experiment) -> Mapping[str, Any] | None:
        return None  # local mode refuses ConfigMap templates before storing the Experiment

    def event(self, about: Any, event: Event) -> None:
        """Both ports' ``event``: local mode has no Events; the outcome shows in conditions and the CLI."""
        _log.debug("%s: %s %s", about.metadata.name if about.metadata else "?", event.reason, event.message)

    # -- trial_loop.TrialPort ----------------------------------------------------------------

    def job(self, trial: Trial) -> Mapping[str, Any] | None:
        return self._job_object(trial)

    def create_job(self, trial: Trial) -> bool:
        return self._start(trial)

    def delete_job(self, trial: Trial) -> None:
        self._forget(trial.metadata.name if trial.metadata and trial.metadata.name else "")

    def save_finalizers(self, trial: Trial, finalizers: list[str]) -> Trial:
        return trial  # no garbage collector to wait for: deleting an Experiment deletes its logs with it

    # -- trial processes -----------------------------------------------------------------------

    def _start(self, trial: Trial) -> bool:
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
            **self._process_env(),
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
            command = self._hand_over(meta.namespace, _experiment_name(trial), trial, command)
            directory = self._store.trial_dir(meta.namespace, _experiment_name(trial), meta.name)
            process = self._launch(command, directory)
        except (ValidationError, OSError) as exc:
            self._gpus.release(devices)
            self._jobs[meta.name] = _Job(None, exit_code=127, message=f"cannot start the trial: {exc}")
            return True
        self._jobs[meta.name] = _Job(process, devices)
        threading.Thread(target=self._watch, args=(meta.name, trial), name=f"watch-{meta.name}", daemon=True).start()
        return True

    def _hand_over(self, namespace: str, experiment: str, trial: Trial, command: Command) -> Command:
        """PBT's checkpoint hand-over (``katib_suggest.pbt.handover``): the trial's directory, a copy
        of its parent's, stands where its template names ``suggestion_trial_dir``."""
        plan = pbt.handover(self._store.get(Experiment, namespace, experiment), trial)
        name = trial.metadata.name if trial.metadata and trial.metadata.name else ""
        if plan is None or not name:
            return command
        root = self._store.experiment_dir(namespace, experiment) / CHECKPOINTS_DIR
        local = pbt.copy_parent_dir(root / name, root / plan.parent if plan.parent else None)
        argv = tuple(pbt.rewrite_path(arg, plan.path, local) for arg in command.argv)
        env = {key: pbt.rewrite_path(value, plan.path, local) for key, value in command.env.items()}
        if argv == command.argv and env == command.env and not self._noticed_checkpoint_path:
            _log.warning(
                "local mode: %s names no %s (suggestion_trial_dir) in its command, args or env; "
                "its checkpoint directory is %s",
                name,
                plan.path,
                local,
            )
            self._noticed_checkpoint_path = True
        return dataclasses.replace(command, argv=argv, env=env)

    def _process_env(self) -> dict[str, str]:
        """What every trial process gets on top of the runner's environment, the zygote too."""
        return {"PATH": f"{self._bin_dir}:{_os_path()}", "PYTHONPATH": _python_path(), "PYTHONUNBUFFERED": "1"}

    def _launch(self, command: Command, directory: Path) -> TrialProcess | ForkedTrial:
        """A tune() trial forked from the zygote when it can be (``pykatib_local.zygote``), else the command."""
        objective = objective_script.from_argv(command.argv)
        if objective.source is None:
            return TrialProcess(command, directory)
        env = {**os.environ, **command.env}
        zygote = self._zygote_for(directory)
        if zygote is None or not zygote.accepts(env):
            _log.debug("trial %s runs as a command: its start-up environment differs", directory.name)
            return TrialProcess(command, directory)
        cwd = command.cwd if command.cwd is not None and command.cwd.is_dir() else directory
        try:
            return zygote.spawn(objective.source, env=env, cwd=cwd, log_path=directory / LOG_NAME)
        except ZygoteError as exc:
            self._without_zygote(str(exc))
            return TrialProcess(command, directory)

    def _zygote_for(self, trial_dir: Path) -> Zygote | None:
        """The running zygote, started on first use (None: it failed; trials run as commands)."""
        if self._zygote is not None and not self._zygote.alive:
            self._without_zygote("the trial worker ended")
        if self._zygote is None and self._no_zygote is None:
            try:
                self._zygote = Zygote(
                    {**os.environ, **self._process_env()}, log_path=trial_dir.parent.parent / "trial-worker.log"
                )
            except (ZygoteError, OSError) as exc:
                self._without_zygote(str(exc))
        return self._zygote

    def _without_zygote(self, why: str) -> None:
        if self._no_zygote is None:
            _log.warning("local mode: tune() trials start as new interpreters from now on (%s)", why)
        self._no_zygote = why
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None

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

    def _collect_stdout(self, name: str, trial: Trial, process: TrialProcess | ForkedTrial) -> None:
        objective = trial.spec.objective if trial.spec else None
        metric = (objective.objective_metric_name if objective else None) or ""
        names = [metric, *((objective.additional_metric_names if objective else None) or [])]
        source = trial.spec.metrics_collector.source if trial.spec and trial.spec.metrics_collector else None
        filters = (source.filter.metrics_format if source and source.filter else None) or []
        rows = metric_parsing.parse(process.log_path.read_text(errors="replace"), metric_names=names, filters=filters)
        rows = metric_parsing.observation_rows(rows, metric)
        stamped = [(timestamps.format_nano(row.time), row.name, row.value) for row in rows]
        self._logs.report_rows(name, stamped, key=f"stdout-{trial.metadata.uid if trial.metadata else name}"[:64])

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


def _experiment_name(trial: Trial) -> str:
    labels = (trial.metadata.labels if trial.metadata else None) or {}
    name = labels.get(constants.EXPERIMENT_LABEL)
    if not name:
        raise ValidationError(f"metadata.labels[{constants.EXPERIMENT_LABEL}]", "a Trial needs its Experiment's label")
    return name


_now = timestamps.condition_time


def _python_path() -> str:
    """The user's PYTHONPATH, then everything this process imports from: trials can import pykatib
    (``report_metrics``) even when the runner itself is a pex."""
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    entries += [os.path.abspath(p) for p in sys.path if p and os.path.exists(p)]
    return os.pathsep.join(dict.fromkeys(entries))


def _os_path() -> str:
    return os.environ.get("PATH", "/usr/bin:/bin")


__all__ = ["CHECKPOINTS_DIR", "ExperimentRunner", "Progress"]
