"""``KatibClient``: kubeflow-katib's client API (same method names and arguments) over a backend.

Each method is its docstring plus one delegation; rules live in ``katib_core`` (models,
validation) and ``_tuning`` (the Experiment ``tune`` builds); transport lives in the backend.
Errors keep upstream's types and messages (``RuntimeError("Failed to get Katib Experiment: ns/name")``),
with the backend's reason appended and chained.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from katib_core import constants, defaulting, metric_history, trial_conditions, trial_results, validation
from katib_core.errors import AlreadyExistsError, KatibError, NotFoundError, ValidationError
from katib_core.models import Condition, Experiment, OptimalTrial, Suggestion, Trial
from pykatib import _openapi, _tuning, _wire, backends
from pykatib._reporting import DEFAULT_TIMEOUT
from pykatib._transport import RpcError

_log = logging.getLogger(__name__)

_STORAGE_CONFIG = MappingProxyType(
    {"size": "10Gi", "storage_class": None, "access_modes": ["ReadWriteOnce", "ReadOnlyMany"]}
)
_STDOUT = MappingProxyType({"kind": "StdOut"})
_Condition = constants.ExperimentConditionType


class KatibClient:
    """Create and inspect Katib Experiments; a drop-in for ``kubeflow.katib.KatibClient``.

    Args:
        config_file: kubeconfig path (default ``~/.kube/config``; in a pod, the in-cluster config).
        context: kubeconfig context.
        client_configuration: a ``kubernetes.client.Configuration`` to use instead of kubeconfig.
        namespace: default namespace of every call (default: the pod's namespace, else ``default``).
        backend: ``"kubernetes"`` (default), ``"local"``, or a backend config object
            (``pykatib.backends.KubernetesBackendConfig`` / ``LocalBackendConfig``).
    """

    def __init__(
        self,
        config_file: str | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        namespace: str | None = None,
        *,
        backend: str | backends.BackendConfig = "kubernetes",
    ) -> None:
        if isinstance(backend, str):
            backend = backends.config_for(
                backend,
                config_file=config_file,
                context=context,
                client_configuration=client_configuration,
                namespace=namespace,
            )
        self.backend = backends.create(backend)
        self.namespace = self.backend.namespace

    # -- experiments -----------------------------------------------------------------------

    def create_experiment(
        self, experiment: Experiment | Mapping[str, Any] | Any, namespace: str | None = None
    ) -> Experiment:
        """Create an Experiment.

        Args:
            experiment: a ``katib_core.models.Experiment``, its API JSON, or kubeflow-katib's ``V1beta1Experiment``.
            namespace: defaults to the client's namespace.

        Returns:
            The Experiment as created.

        Raises:
            ValueError: the Experiment is invalid (``ValidationError`` names the field); nothing is sent.
            Exception: an Experiment of that name exists (``AlreadyExistsError``, upstream's message).
            TimeoutError, RuntimeError: the API call timed out or failed.
        """
        model = _as_experiment(experiment)
        namespace = namespace or (model.metadata.namespace if model.metadata else None) or self.namespace
        validation.check_experiment(model)
        assert model.metadata is not None  # checked above
        name = model.metadata.name or model.metadata.generate_name
        try:
            with _failures("create", f"Katib Experiment: {namespace}/{name}"):
                created = self.backend.create_experiment(model, namespace, DEFAULT_TIMEOUT)
        except AlreadyExistsError as exc:
            raise AlreadyExistsError(f"A Katib Experiment with the name {namespace}/{name} already exists.") from exc
        _log.debug("Experiment %s/%s has been created", namespace, created.metadata.name if created.metadata else name)
        return created

    def tune(
        self,
        name: str,
        model_provider_parameters: Any = None,
        dataset_provider_parameters: Any = None,
        trainer_parameters: Any = None,
        storage_config: Mapping[str, Any] = _STORAGE_CONFIG,
        objective: Callable[..., Any] | None = None,
        base_image: str = _tuning.BASE_IMAGE_PYTORCH,
        parameters: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        env_per_trial: Any = None,
        algorithm_name: str = "random",
        algorithm_settings: Any = None,
        objective_metric_name: str | None = None,
        additional_metric_names: Sequence[str] = (),
        objective_type: str = "maximize",
        objective_goal: float | None = None,
        max_trial_count: int | None = None,
        parallel_trial_count: int | None = None,
        max_failed_trial_count: int | None = None,
        resources_per_trial: Any = None,
        retain_trials: bool = False,
        packages_to_install: Sequence[str] | None = None,
        pip_index_urls: Sequence[str] | None = _tuning.DEFAULT_PIP_INDEX_URLS,
        metrics_collector_config: Mapping[str, Any] = _STDOUT,
        trial_active_deadline_seconds: int | None = None,
        load_if_exists: bool = False,
    ) -> Experiment:
        """Create an Experiment that tunes ``objective(parameters)`` over a search space.

        Same arguments and Experiment as kubeflow-katib's ``tune`` for a custom objective (see
        docs/sdk.md for the differences: categorical values in ``feasibleSpace.list``, and Push
        trials that skip pip when the image has pykatib). The LLM arguments
        (``model_provider_parameters``, ``dataset_provider_parameters``, ``trainer_parameters``,
        ``storage_config``) are not supported.

        Args:
            name: Experiment name.
            objective: function taking one dict of parameters; its source runs in each trial.
            parameters: name → ``katib.search.*`` value (tuned) or any other value (passed as is).
            metrics_collector_config: ``{"kind": "StdOut"}`` (default) or ``{"kind": "Push"}``.
            load_if_exists: if an Experiment of this name exists, resume it instead of failing (as
                Optuna's ``create_study(load_if_exists=True)``): only the trial counts may differ
                (raising ``max_trial_count`` continues a finished LongRunning Experiment); any other
                difference is a ``ValueError`` naming it. A pykatib extension.
            (others: as kubeflow-katib.)

        Returns:
            The Experiment as created.

        Raises:
            ValueError: missing or invalid arguments (``ValidationError`` names the field).
            TimeoutError, RuntimeError: creating the Experiment failed.
        """
        llm = (model_provider_parameters, dataset_provider_parameters, trainer_parameters)
        if any(p is not None for p in llm) == (objective is not None or parameters is not None):
            raise ValueError(
                "Invalid configuration for creating a Katib Experiment for hyperparameter optimization. "
                "You should specify one of the following options:\n"
                "1. Use external models and datasets: specify `model_provider_parameters`, "
                "`dataset_provider_parameters` and `trainer_parameters`;\n"
                "2. Use custom objective function: specify `objective`, `base_image` and `parameters`."
            )
        if any(p is not None for p in llm):
            raise ValueError("pykatib's tune() supports custom objective functions only; use kubeflow-katib for LLMs")
        experiment = _tuning.build_experiment(
            trials_have_pykatib=self.backend.trials_have_pykatib,
            name=name,
            namespace=namespace or self.namespace,
            objective=objective,
            parameters=parameters,
            base_image=base_image,
            env_per_trial=env_per_trial,
            algorithm_name=algorithm_name,
            algorithm_settings=algorithm_settings,
            objective_metric_name=objective_metric_name,
            additional_metric_names=additional_metric_names,
            objective_type=objective_type,
            objective_goal=objective_goal,
            max_trial_count=max_trial_count,
            parallel_trial_count=parallel_trial_count,
            max_failed_trial_count=max_failed_trial_count,
            resources_per_trial=resources_per_trial,
            retain_trials=retain_trials,
            packages_to_install=packages_to_install,
            pip_index_urls=pip_index_urls,
            metrics_collector_config=metrics_collector_config,
            trial_active_deadline_seconds=trial_active_deadline_seconds,
        )
        if load_if_exists:
            try:
                stored = self.backend.get_experiment(name, namespace or self.namespace, DEFAULT_TIMEOUT)
            except NotFoundError:
                pass
            else:
                return self._resume(stored, experiment)
        return self.create_experiment(experiment, namespace)

    def _resume(self, stored: Experiment, wanted: Experiment) -> Experiment:
        """``stored`` with ``wanted``'s trial counts; any other difference of their specs is refused."""
        meta = stored.metadata
        name, namespace = (meta.name if meta else None) or "", (meta.namespace if meta else None) or self.namespace
        old = defaulting.default_experiment(stored).to_api().get("spec") or {}
        new = defaulting.default_experiment(wanted).to_api().get("spec") or {}
        differing = [path for path in _differences(old, new, "spec") if path.split(".")[1] not in _COUNTS]
        if differing:
            raise ValidationError(
                differing[0],
                f"Experiment {namespace}/{name} exists with another {differing[0]}; load_if_exists resumes it only"
                " with the same spec (the trial counts may change): rename it or delete it first",
            )
        counts = {key: new.get(key) for key in _COUNTS if new.get(key) is not None and new.get(key) != old.get(key)}
        with _failures("resume", f"Katib Experiment: {namespace}/{name}"):
            return self.backend.patch_experiment(name, namespace, {"spec": counts}, DEFAULT_TIMEOUT)

    def get_experiment(self, name: str, namespace: str | None = None, timeout: int = DEFAULT_TIMEOUT) -> Experiment:
        """The Experiment ``name``. Raises TimeoutError, or RuntimeError (also when it does not exist)."""
        namespace = namespace or self.namespace
        with _failures("get", f"Katib Experiment: {namespace}/{name}"):
            return self.backend.get_experiment(name, namespace, timeout)

    def list_experiments(self, namespace: str | None = None, timeout: int = DEFAULT_TIMEOUT) -> list[Experiment]:
        """Every Experiment of the namespace (possibly none). Raises TimeoutError or RuntimeError."""
        namespace = namespace or self.namespace
        with _failures("list", f"Katib Experiments in namespace: {namespace}"):
            return self.backend.list_experiments(namespace, timeout)

    def get_experiment_conditions(
        self,
        name: str,
        namespace: str | None = None,
        experiment: Experiment | None = None,
        timeout: int = DEFAULT_TIMEOUT,
    ) -> list[Condition]:
        """The Experiment's ``status.conditions`` (fetched unless ``experiment`` is given); ``[]`` if none."""
        experiment = experiment or self.get_experiment(name, namespace, timeout)
        return list(experiment.status.conditions or []) if experiment.status else []

    def _has(
        self, condition: str, name: str, namespace: str | None, experiment: Experiment | None, timeout: int
    ) -> bool:
        experiment = experiment or self.get_experiment(name, namespace, timeout)
        return experiment.status is not None and experiment.status.has_condition(condition)

    def is_experiment_created(
        self,
        name: str,
        namespace: str | None = None,
        experiment: Experiment | None = None,
        timeout: int = DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the Experiment has condition ``Created`` = True."""
        return self._has(_Condition.CREATED, name, namespace, experiment, timeout)

    def is_experiment_running(
        self,
        name: str,
        namespace: str | None = None,
        experiment: Experiment | None = None,
        timeout: int = DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the Experiment has condition ``Running`` = True."""
        return self._has(_Condition.RUNNING, name, namespace, experiment, timeout)

    def is_experiment_restarting(
        self,
        name: str,
        namespace: str | None = None,
        experiment: Experiment | None = None,
        timeout: int = DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the Experiment has condition ``Restarting`` = True."""
        return self._has(_Condition.RESTARTING, name, namespace, experiment, timeout)

    def is_experiment_succeeded(
        self,
        name: str,
        namespace: str | None = None,
        experiment: Experiment | None = None,
        timeout: int = DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the Experiment has condition ``Succeeded`` = True."""
        return self._has(_Condition.SUCCEEDED, name, namespace, experiment, timeout)

    def is_experiment_failed(
        self,
        name: str,
        namespace: str | None = None,
        experiment: Experiment | None = None,
        timeout: int = DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the Experiment has condition ``Failed`` = True."""
        return self._has(_Condition.FAILED, name, namespace, experiment, timeout)

    def wait_for_experiment_condition(
        self,
        name: str,
        namespace: str | None = None,
        expected_condition: str = _Condition.SUCCEEDED,
        timeout: float | None = None,
        polling_interval: float = 15,
        apiserver_timeout: int = DEFAULT_TIMEOUT,
    ) -> Experiment:
        """Poll until the Experiment has ``expected_condition`` (default Succeeded); return it.

        ``timeout`` defaults to 600 s on a cluster (as kubeflow-katib) and to no limit in local
        mode, where the experiment runs in this process. Local mode shows progress while it waits
        (a live bar in a terminal or notebook, a line per finished trial otherwise), looks at least
        every 0.2 s, and on Ctrl-C or an error stops its trials with one line saying how to resume.

        Raises:
            RuntimeError: the Experiment Failed (unless waiting for Failed), or could not be read.
            TimeoutError: ``timeout`` seconds passed first.
        """
        namespace = namespace or self.namespace
        if expected_condition not in tuple(_Condition):
            raise ValueError(f"expected_condition {expected_condition!r} must be one of {[str(c) for c in _Condition]}")
        limit = timeout if timeout is not None else self.backend.default_wait_timeout
        deadline = None if limit is None else time.monotonic() + limit
        interval = min(polling_interval, self.backend.max_polling_interval or polling_interval)
        try:
            with self.backend.progress(name, namespace) as tick:
                while True:
                    experiment = self.get_experiment(name, namespace, apiserver_timeout)
                    tick()
                    if self._reached(experiment, namespace, expected_condition, apiserver_timeout):
                        return experiment
                    _log.debug("waiting for experiment %s/%s to reach %s", namespace, name, expected_condition)
                    if deadline is not None and time.monotonic() + interval > deadline:
                        raise TimeoutError(
                            f"Timeout waiting for Experiment: {namespace}/{name} to reach {expected_condition} state"
                        )
                    time.sleep(interval)
        except (KeyboardInterrupt, TimeoutError):
            note = self.backend.interrupt(name, namespace)
            if note is not None:
                print(note, file=sys.stderr)
            raise

    def _reached(self, experiment: Experiment, namespace: str, expected: str, timeout: float) -> bool:
        """Whether the wait is over; RuntimeError if the Experiment Failed while waiting for another condition."""
        name = (experiment.metadata.name if experiment.metadata else None) or ""
        status = experiment.status
        if status is not None and status.has_condition(expected):
            if expected == _Condition.SUCCEEDED and self.backend.explains_outcomes:
                self._explain_outcome(experiment, namespace, timeout)
            return True
        if status is not None and status.has_condition(_Condition.FAILED):
            failure = None
            if self.backend.explains_outcomes:
                failure = trial_conditions.first_failure(self.backend.list_trials(namespace, name, timeout))
            why = f" First failed trial {failure[0]}: {failure[1]}." if failure else ""
            raise RuntimeError(
                f"Experiment: {namespace}/{name} is Failed.{why} Experiment conditions: {status.conditions}"
            )
        return False

    def _explain_outcome(self, experiment: Experiment, namespace: str, timeout: float) -> None:
        """Katib calls a run whose trials all failed Succeeded (its budget is spent); say so loudly."""
        name = (experiment.metadata.name if experiment.metadata else None) or ""
        trials = self.backend.list_trials(namespace, name, timeout)
        failure = trial_conditions.first_failure(trials)
        if failure is None:
            return
        succeeded = sum(trial_conditions.holds(t.status, constants.TrialConditionType.SUCCEEDED) for t in trials)
        summary = (
            f"Experiment {namespace}/{name}: {succeeded} of {len(trials)} trials succeeded;"
            f" first failed trial {failure[0]}: {failure[1]}"
        )
        if succeeded == 0:
            raise RuntimeError(summary)
        _log.warning("%s", summary)

    def edit_experiment_budget(
        self,
        name: str,
        namespace: str | None = None,
        max_trial_count: int | None = None,
        parallel_trial_count: int | None = None,
        max_failed_trial_count: int | None = None,
        timeout: int = DEFAULT_TIMEOUT,
    ) -> None:
        """Change an Experiment's trial budget (a merge patch of the three counts that are given)."""
        namespace = namespace or self.namespace
        budget = {
            "maxTrialCount": max_trial_count,
            "parallelTrialCount": parallel_trial_count,
            "maxFailedTrialCount": max_failed_trial_count,
        }
        changes = {key: value for key, value in budget.items() if value is not None}
        if not changes:
            raise ValueError(
                "Invalid input arguments. You have to set max_trial_count, parallel_trial_count, or "
                "max_failed_trial_count to modify Experiment Trial budget."
            )
        with _failures("edit", f"Katib Experiment: {namespace}/{name}"):
            self.backend.patch_experiment(name, namespace, {"spec": changes}, timeout)

    def delete_experiment(self, name: str, namespace: str | None = None, delete_options: Any = None) -> None:
        """Delete the Experiment (``delete_options``: ``V1DeleteOptions`` or JSON); TimeoutError or RuntimeError."""
        namespace = namespace or self.namespace
        options = None if delete_options is None else _openapi.to_json(delete_options)
        with _failures("delete", f"Katib Experiment: {namespace}/{name}"):
            self.backend.delete_experiment(name, namespace, options, DEFAULT_TIMEOUT)
        _log.debug("Experiment %s/%s has been deleted", namespace, name)

    # -- suggestions and trials --------------------------------------------------------------

    def get_suggestion(self, name: str, namespace: str | None = None, timeout: int = DEFAULT_TIMEOUT) -> Suggestion:
        """The Suggestion ``name`` (named like its Experiment). Raises TimeoutError or RuntimeError."""
        namespace = namespace or self.namespace
        with _failures("get", f"Katib Suggestion: {namespace}/{name}"):
            return self.backend.get_suggestion(name, namespace, timeout)

    def list_suggestions(self, namespace: str | None = None, timeout: int = DEFAULT_TIMEOUT) -> list[Suggestion]:
        """Every Suggestion of the namespace."""
        namespace = namespace or self.namespace
        with _failures("list", f"Katib Suggestions in namespace: {namespace}"):
            return self.backend.list_suggestions(namespace, timeout)

    def get_trial(self, name: str, namespace: str | None = None, timeout: int = DEFAULT_TIMEOUT) -> Trial:
        """The Trial ``name``. Raises TimeoutError or RuntimeError."""
        namespace = namespace or self.namespace
        with _failures("get", f"Katib Trial: {namespace}/{name}"):
            return self.backend.get_trial(name, namespace, timeout)

    def trials_dataframe(self, name: str, namespace: str | None = None, timeout: int = DEFAULT_TIMEOUT) -> Any:
        """The Experiment's trials as a pandas ``DataFrame``, best first (as Optuna's
        ``study.trials_dataframe()``): one row per trial with ``name``, ``status``, ``params_<name>``
        (numbers for numeric parameters), ``metrics_<name>`` (the value each metric's strategy picks:
        what the optimum is chosen by; NaN when not reported), ``reason`` (why it failed),
        ``start_time`` and ``completion_time``. Needs pandas (``pip install 'pykatib[dataframe]'``).
        """
        try:
            import pandas  # type: ignore[import-untyped]  # pants: no-infer-dep (optional: pykatib[dataframe])
        except ImportError as exc:
            raise ImportError(f"trials_dataframe needs pandas: pip install 'pykatib[dataframe]' ({exc})") from exc
        experiment = self.get_experiment(name, namespace, timeout)
        rows = trial_results.trial_rows(experiment, self.list_trials(name, namespace, timeout))
        metrics = trial_results.metric_names(experiment)
        records = [
            {
                "name": row.name,
                "status": row.status,
                **{f"params_{k}": trial_results.typed(v) for k, v in row.parameters.items()},
                **{
                    f"metrics_{m}": trial_results.typed(row.metrics[m]) if row.metrics.get(m) else None for m in metrics
                },
                "reason": row.reason or None,
                "start_time": pandas.to_datetime(row.start, utc=True) if row.start else None,
                "completion_time": pandas.to_datetime(row.completion, utc=True) if row.completion else None,
            }
            for row in rows
        ]
        columns = ["name", "status", *(f"params_{k}" for k in (rows[0].parameters if rows else {}))]
        columns += [f"metrics_{m}" for m in metrics] + ["reason", "start_time", "completion_time"]
        return pandas.DataFrame.from_records(records, columns=columns)

    def list_trials(
        self, experiment_name: str | None = None, namespace: str | None = None, timeout: int = DEFAULT_TIMEOUT
    ) -> list[Trial]:
        """Trials of the namespace, or of one Experiment when ``experiment_name`` is given."""
        namespace = namespace or self.namespace
        with _failures("list", f"Katib Trials in namespace: {namespace}"):
            return self.backend.list_trials(namespace, experiment_name, timeout)

    def get_success_trial_details(
        self, experiment_name: str | None = None, namespace: str | None = None, timeout: int = DEFAULT_TIMEOUT
    ) -> list[dict[str, Any]]:
        """``{"name", "parameter_assignments", "metrics"}`` of each Succeeded Trial (of one Experiment if named)."""
        details = []
        for trial in self.list_trials(experiment_name, namespace, timeout):
            if trial.status is not None and trial.status.has_condition(constants.TrialConditionType.SUCCEEDED):
                details.append(
                    {
                        "name": trial.metadata.name if trial.metadata else None,
                        "parameter_assignments": trial.spec.parameter_assignments if trial.spec else None,
                        "metrics": trial.status.observation.metrics if trial.status.observation else None,
                    }
                )
        return details

    def get_optimal_hyperparameters(
        self, name: str, namespace: str | None = None, timeout: int = DEFAULT_TIMEOUT
    ) -> OptimalTrial | None:
        """``status.currentOptimalTrial`` once it has observed metrics, else None."""
        status = self.get_experiment(name, namespace, timeout).status
        optimal = status.current_optimal_trial if status else None
        if optimal is not None and optimal.observation is not None and optimal.observation.metrics:
            return optimal
        return None

    def get_trial_metrics(
        self,
        name: str,
        namespace: str | None = None,
        db_manager_address: str | None = None,
        timeout: int = DEFAULT_TIMEOUT,
        *,
        steps: bool = False,
    ) -> list[_wire.MetricLog]:
        """The metric logs of a Trial from the DB manager (``log.time_stamp``, ``log.metric.name/value``),
        values as the text Katib stores (as kubeflow-katib returns them).

        Args:
            db_manager_address: default env ``KATIB_DB_MANAGER_ADDRESS``, else ``katib-db-manager.kubeflow:6789``.
            steps: also return the ``pykatib.step`` logs that ``report_metrics(..., step=N)`` adds
                (left out by default: they are no metric of the user's). For numbers joined with
                their steps, use ``get_trial_metric_history``.

        Raises:
            RuntimeError: the DB manager could not be asked.
        """
        namespace = namespace or self.namespace
        try:
            logs = self.backend.get_trial_metrics(name, db_manager_address, timeout)
        except RpcError as exc:
            raise RuntimeError(f"Unable to get metrics for Trial {namespace}/{name}. Exception: {exc}") from exc
        return logs if steps else [log for log in logs if log.metric.name != constants.STEP_METRIC]

    def get_job_logs(
        self, name: str, trial_name: str, follow: bool = False, namespace: str | None = None
    ) -> Iterator[str]:
        """The output of a Trial's training, line by line (a generator, as kubeflow-katib's).

        On a cluster: the log of the Trial's latest Pod, from the container holding the training's
        output (the ``StdOut`` collector's sidecar, else the primary container); in local mode:
        the trial's output file. ``follow`` streams until the training ends (``kubectl logs -f``).

        Raises:
            ValueError: ``name`` or ``trial_name`` is empty.
            RuntimeError: the Trial is not found, is not a trial of Experiment ``name``, has no
                output yet, or the API failed.
        """
        if not name:
            raise ValueError("Experiment name is required")
        if not trial_name:
            raise ValueError("Trial name is required")
        namespace = namespace or self.namespace
        return self._job_logs(name, trial_name, follow, namespace)

    def _job_logs(self, name: str, trial_name: str, follow: bool, namespace: str) -> Iterator[str]:
        with _failures("get logs of", f"Trial {namespace}/{trial_name}"):
            trial = self.backend.get_trial(trial_name, namespace, DEFAULT_TIMEOUT)
            experiment = ((trial.metadata.labels if trial.metadata else None) or {}).get(constants.EXPERIMENT_LABEL)
            if experiment != name:
                raise KatibError(f"it is a trial of Experiment {experiment!r}, not of {name!r}")
            yield from self.backend.trial_logs(trial, namespace, follow, DEFAULT_TIMEOUT)

    def get_trial_metric_history(
        self,
        name: str,
        namespace: str | None = None,
        db_manager_address: str | None = None,
        timeout: int = DEFAULT_TIMEOUT,
    ) -> dict[str, list[metric_history.MetricPoint]]:
        """Each metric of a Trial as numbers in report order, each with the ``step=`` it was reported
        at (``point.value``, ``point.step``, ``point.time``); values that are not numbers (Katib's
        ``unavailable``) are left out.

        Raises:
            RuntimeError: the DB manager could not be asked.
        """
        logs = self.get_trial_metrics(name, namespace, db_manager_address, timeout, steps=True)
        return metric_history.history((log.time_stamp, log.metric.name, log.metric.value) for log in logs)


#: What ``tune(load_if_exists=True)`` may change in an existing Experiment (Katib's update rules).
_COUNTS = ("maxTrialCount", "parallelTrialCount", "maxFailedTrialCount")


def _differences(old: Any, new: Any, path: str) -> list[str]:
    """JSON paths where ``old`` and ``new`` differ (leaves and lists compared whole)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return [
            p for key in sorted(set(old) | set(new)) for p in _differences(old.get(key), new.get(key), f"{path}.{key}")
        ]
    return [] if old == new else [path]


def _as_experiment(experiment: Any) -> Experiment:
    if isinstance(experiment, Experiment):
        return experiment.model_copy(deep=True)
    if isinstance(experiment, Mapping):
        return Experiment.from_api(dict(experiment))
    if _openapi.is_openapi_object(experiment):
        return Experiment.from_api(_openapi.to_json(experiment))
    raise TypeError(f"expected an Experiment, its JSON or a V1beta1Experiment, got {type(experiment).__name__}")


@contextlib.contextmanager
def _failures(verb: str, subject: str) -> Iterator[None]:
    """Upstream's messages: ``Timeout to get Katib Experiment: ns/name`` / ``Failed to get …``."""
    try:
        yield
    except AlreadyExistsError:
        raise
    except TimeoutError as exc:
        raise TimeoutError(f"Timeout to {verb} {subject}") from exc
    except (NotFoundError, KatibError) as exc:
        raise RuntimeError(f"Failed to {verb} {subject} ({exc})") from exc
