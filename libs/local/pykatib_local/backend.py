"""``KatibClient(backend="local")``: the SDK's backend contract on this machine.

Experiments live in the work directory's store; creating one validates it with Katib's rules
(the same ones the admission webhook applies), stores it defaulted, and starts running it in a
background thread of this process. A script that calls ``tune()`` and exits therefore waits for
its experiment to finish; Ctrl-C stops the trials and leaves a state that a rerun resumes.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from katib_core import constants, defaulting, early_stopping, trial_conditions, validation
from katib_core.errors import NotFoundError, ValidationError
from katib_core.models import Experiment, Suggestion, Trial
from katib_suggest.routing import AlgorithmRouter
from pykatib import _wire
from pykatib.backends import register_backend
from pykatib.backends._base import Backend, text_lines
from pykatib_local import containers, summaries, trial_process
from pykatib_local.progress import ProgressView
from pykatib_local.session import LocalSession, default_workdir

if TYPE_CHECKING:
    from pykatib.backends import LocalBackendConfig

#: How often a followed trial output is read for new lines.
_FOLLOW_SECONDS = 0.1
#: Collector kinds local mode can run: trials push, or their output is parsed as Katib's sidecar would.
LOCAL_COLLECTOR_KINDS = frozenset({"StdOut"})


class LocalBackend(Backend):
    """Experiments, Trials and Suggestions in a local work directory, run by this process."""

    #: Trial processes get this interpreter and its import path: no pip, no import probe per trial.
    trials_have_pykatib = True
    explains_outcomes = True
    default_wait_timeout = None
    #: A finished trial shows within this long (the runner publishes every pass; a look costs no I/O).
    max_polling_interval = 0.2

    def __init__(self, config: LocalBackendConfig, *, session: LocalSession | None = None) -> None:
        self.namespace = config.namespace or "default"
        workdir = None if config.workdir is None else Path(config.workdir)
        self.session = session or shared_session(workdir, config.db_url, push_auth=config.push_auth)
        self._store = self.session.store

    def create_experiment(self, experiment: Experiment, namespace: str, timeout: float) -> Experiment:
        prepared = prepare(experiment, namespace, router=self.session.suggester)
        created = self._store.create(prepared)
        self.session.start(namespace, _name(created))
        return created

    def get_experiment(self, name: str, namespace: str, timeout: float) -> Experiment:
        return self._store.get(Experiment, namespace, name)

    def list_experiments(self, namespace: str, timeout: float) -> list[Experiment]:
        return self._store.list_experiments(namespace)

    def patch_experiment(self, name: str, namespace: str, patch: dict[str, Any], timeout: float) -> Experiment:
        old = self._store.get(Experiment, namespace, name)
        merged = Experiment.from_api(_merge(old.to_api(), patch))
        validation.validate_experiment(merged, old=old, settings=local_settings(self.session.suggester))
        stored = self._store.update(merged, spec_changed=merged.spec != old.spec)
        self.session.start(namespace, name)  # a raised budget resumes a finished experiment
        return stored

    def delete_experiment(self, name: str, namespace: str, options: dict[str, Any] | None, timeout: float) -> None:
        self._store.get(Experiment, namespace, name)  # NotFoundError first
        self.session.stop(namespace, name)
        for trial in self._store.list_trials(namespace, experiment=name):
            if trial.metadata and trial.metadata.name:
                self.session.db.delete(trial.metadata.name, timeout=timeout)
        self._store.delete_experiment(namespace, name)

    def get_suggestion(self, name: str, namespace: str, timeout: float) -> Suggestion:
        return self._store.get(Suggestion, namespace, name, experiment=name)

    def list_suggestions(self, namespace: str, timeout: float) -> list[Suggestion]:
        return self._store.list_suggestions(namespace)

    def get_trial(self, name: str, namespace: str, timeout: float) -> Trial:
        return self._store.get(Trial, namespace, name)

    def list_trials(self, namespace: str, experiment_name: str | None, timeout: float) -> list[Trial]:
        return self._store.list_trials(namespace, experiment=experiment_name)

    @contextlib.contextmanager
    def progress(self, name: str, namespace: str) -> Iterator[Callable[[], None]]:
        with ProgressView(name) as view:

            def tick() -> None:
                latest = self.session.latest(namespace, name)
                if latest is not None:
                    view.show(latest)

            yield tick
            tick()

    def interrupt(self, name: str, namespace: str) -> str | None:
        if not self.session.is_running(namespace, name):
            return None
        self.session.stop(namespace, name)
        experiment = self._store.get(Experiment, namespace, name)
        counts = summaries.counts(experiment, self._store.list_trials(namespace, experiment=name))
        budget = "" if counts.budget is None else f" of {counts.budget}"
        return (
            f"experiment {namespace}/{name} stopped after {counts.done}{budget} trials; its state is in"
            f" {self.session.workdir}; tune(..., load_if_exists=True) resumes it"
        )

    def get_trial_metrics(self, name: str, db_manager_address: str | None, timeout: float) -> list[_wire.MetricLog]:
        return self.session.db.get(name, timeout=timeout)

    def trial_logs(self, trial: Trial, namespace: str, follow: bool, timeout: float) -> Iterator[str]:
        """The trial process's ``output.log``; ``follow`` reads on until the Trial has finished."""
        name = (trial.metadata.name if trial.metadata else None) or ""
        experiment = ((trial.metadata.labels if trial.metadata else None) or {}).get(constants.EXPERIMENT_LABEL, "")
        path = self._store.trial_dir(namespace, experiment, name) / trial_process.LOG_NAME
        if not path.exists() and not follow:
            raise NotFoundError(f"Trial {namespace}/{name} has no output (yet): {path}")
        yield from text_lines(self._output_chunks(path, namespace, name, follow))

    def _output_chunks(self, path: Path, namespace: str, name: str, follow: bool) -> Iterator[bytes]:
        """What the trial wrote to ``path``; ``follow``: new data until the Trial has finished."""
        offset = 0
        while True:
            finished = trial_conditions.is_completed(self._store.get(Trial, namespace, name).status)
            with contextlib.suppress(FileNotFoundError), path.open("rb") as file:
                file.seek(offset)
                data = file.read()
                offset += len(data)
                yield data
            if not follow or finished:
                return
            time.sleep(_FOLLOW_SECONDS)


_sessions: dict[tuple[Path, str | None, bool], LocalSession] = {}
_sessions_lock = threading.Lock()


def shared_session(workdir: Path | None, db_url: str | None, *, push_auth: bool = False) -> LocalSession:
    """This process's session for a work directory: every ``KatibClient(backend="local")`` on the
    same directory shares one DB manager and one runner per Experiment (closed at exit)."""
    key = ((workdir or default_workdir()).absolute(), db_url, push_auth)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None or session.closed:
            session = _sessions[key] = LocalSession(key[0], db_url=db_url, push_auth=push_auth)
            atexit.register(session.close)
        return session


def local_settings(router: AlgorithmRouter | None = None) -> validation.ValidationSettings:
    """Katib's rules, with the pull collectors local mode can run and the algorithms ``router``
    runs (default: ours, in-process)."""
    if router is None:
        return validation.ValidationSettings(collector_kinds=LOCAL_COLLECTOR_KINDS)
    return validation.ValidationSettings(algorithms=router.algorithms, collector_kinds=LOCAL_COLLECTOR_KINDS)


def prepare(experiment: Experiment, namespace: str, *, router: AlgorithmRouter | None = None) -> Experiment:
    """The Experiment as local mode stores it: namespaced, repaired, defaulted and validated.

    ``router``: where the session runs each algorithm (its katib-config); default ours, in-process.

    Raises:
        ValidationError: every rule it breaks, each naming its field (nothing is stored).
    """
    raw, _ = defaulting.repair_raw_experiment(experiment.to_api())
    parsed = Experiment.from_api(raw)
    meta = parsed.metadata
    if meta is None or not meta.name:
        raise ValidationError("metadata.name", "is required")
    meta.namespace = meta.namespace or namespace
    validation.check_known_fields(parsed)  # local mode is the API server here: strict, as kubectl
    defaulted = defaulting.default_experiment(parsed)
    # Local mode's own limits first: they say what to do instead.
    containers.check_runnable(defaulted)
    collector_spec = defaulted.spec.metrics_collector_spec if defaulted.spec else None
    kind = collector_spec.collector.kind if collector_spec and collector_spec.collector else None
    if kind not in ("Push", "StdOut"):
        raise ValidationError(
            "spec.metricsCollectorSpec.collector.kind",
            f"{kind!r}: local mode runs Push and StdOut collectors only ({kind} needs a cluster's sidecar;"
            " trials can push with pykatib.report_metrics and kind Push instead)",
        )
    stopping = defaulted.spec.early_stopping if defaulted.spec else None
    if stopping is not None and kind != "Push":
        raise ValidationError(
            "spec.earlyStopping", "local mode early-stops Push trials only (StdOut is parsed when a trial exits)"
        )
    algorithm = defaulted.spec.algorithm if defaulted.spec else None
    if router is not None and algorithm is not None and algorithm.algorithm_name:
        router.check(algorithm.algorithm_name)  # an image-only katib-config entry says what to do
    validation.validate_experiment(defaulted, settings=local_settings(router))
    if stopping is not None:
        early_stopping.parse_settings(stopping)
    return defaulted


def _name(experiment: Experiment) -> str:
    meta = experiment.metadata
    if meta is None or not meta.name:
        raise ValidationError("metadata.name", "is required")
    return meta.name


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386)."""
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# Installed, the pykatib.backends entry point (libs/local/BUILD) imports this module; pexes and
# in-repo code, which carry no distribution metadata, import it themselves.
register_backend("local", LocalBackend)
