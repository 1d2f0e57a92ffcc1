"""The experiment controller's adapter around ``katib_core.experiment_loop``: objects live in the API server.

``ExperimentReconciler`` is the loop's port over the API server (cached reads, Trials created
several at a time) and runs one ``ExperimentLoop.run_pass`` per key; local mode is the other
adapter around the same loop.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml

from katib_core import experiment_loop, timestamps
from katib_core.errors import AlreadyExistsError, ValidationError
from katib_core.events import WARNING, Event
from katib_core.models import Experiment, ExperimentStatus, Suggestion, Trial
from katib_experiment_controller import resources
from katib_operator import kubeapi
from katib_operator.caches import Key, ObjectCache
from katib_operator.kubeapi import ApiError, KubeApi
from katib_operator.objects import ApiUnavailableError, Objects
from katib_operator.recording import EventRecorder
from katib_operator.running import Result
from katib_suggest.remote import SuggestionServiceError
from katib_suggest.routing import AlgorithmRouter
from pykatib.metric_logs import MetricLogs

log = logging.getLogger(__name__)
#: A failing suggestion service is asked again this much later (each call already retried for 60 s).
SERVICE_RETRY_SECONDS = 10.0


_now = timestamps.condition_time


class ExperimentReconciler:
    """Reconciles Experiments by key; collaborators are injected (``main`` builds the real ones)."""

    def __init__(
        self,
        *,
        objects: Objects,
        experiments: ObjectCache[Experiment],
        trials: ObjectCache[Trial],
        suggestions_cache: ObjectCache[Suggestion],
        suggester: AlgorithmRouter,
        recorder: EventRecorder | None = None,
        api: KubeApi | None = None,
        now: Callable[[], str] = _now,
        rng: random.Random | None = None,
        creators: ThreadPoolExecutor | None = None,
        metric_logs: MetricLogs | None = None,
    ) -> None:
        self._objects = objects
        self._experiments = experiments
        self._trials = trials
        self._suggestions = suggestions_cache
        self._suggester = suggester
        self._recorder = recorder
        self._api = api
        self._creators = creators
        #: The DB manager, for medianstop's input (the objective values of succeeded trials).
        self._metric_logs = metric_logs
        self._loop = experiment_loop.ExperimentLoop(self, suggester, now=now, rng=rng)

    def __call__(self, key: Key) -> Result:
        namespace, name = key
        experiment = self._experiments.get(key)
        if experiment is None or self._experiments.raw(key) is None:
            self._suggester.forget_prefix(f"{namespace}/{name}/")
            return Result()
        if experiment.metadata and experiment.metadata.deletion_timestamp:
            return Result()  # the garbage collector deletes its Suggestion and Trials
        try:
            self._loop.run_pass(experiment, self._trials.indexed(namespace, name), self._suggestions.get(key))
        except SuggestionServiceError as exc:
            # The service is down or failing (not a verdict on the settings): say so, ask again later.
            self.event(experiment, Event(WARNING, "SuggestionServiceError", str(exc)))
            return Result(requeue_after=SERVICE_RETRY_SECONDS)
        return Result()

    def close(self) -> None:
        """Close the suggestion services' channels."""
        self._suggester.close()

    # -- experiment_loop.ExperimentPort ------------------------------------------------------

    def save_suggestion(self, record: Suggestion, *, create: bool) -> Suggestion:
        """Write the Suggestion record (create, then its status) and keep the stored copy in the cache."""
        body = record.to_api()
        meta = body.get("metadata") or {}
        if create:
            try:
                stored = self._objects.create(resources.SUGGESTIONS, meta["namespace"], body)
            except AlreadyExistsError:
                # Another writer (or our earlier, interrupted pass) made it: start over from the stored one.
                stored = self._objects.get(resources.SUGGESTIONS, meta["namespace"], meta["name"])
                self._suggestions.put(resources.without_managed_fields(stored))
                raise ApiUnavailableError(
                    f"suggestion {meta['namespace']}/{meta['name']} existed; re-planning"
                ) from None
        else:
            stored = self._suggestions.raw((meta["namespace"], meta["name"])) or body
        updated = self._objects.replace_status(resources.SUGGESTIONS, stored, body.get("status") or {})
        self._suggestions.put(resources.without_managed_fields(updated))
        parsed = self._suggestions.get((meta["namespace"], meta["name"]))  # parsed once, kept for the next pass
        return parsed if parsed is not None else Suggestion.from_api(updated)

    def save_status(self, experiment: Experiment, status: ExperimentStatus) -> Experiment:
        meta = experiment.metadata
        key = ((meta.namespace if meta else None) or "", (meta.name if meta else None) or "")
        raw = self._experiments.raw(key)
        if raw is None:
            raise ApiUnavailableError(f"experiment {key[0]}/{key[1]} is no longer cached")
        updated = self._objects.replace_status(resources.EXPERIMENTS, raw, status.to_api())
        self._experiments.put(updated)
        return experiment.model_copy(update={"status": status})

    def objective_values(self, namespace: str, trial: str, metric: str) -> list[str]:
        if self._metric_logs is None:
            raise ValidationError("spec.earlyStopping", "this controller was started without a DB manager address")
        return self._metric_logs.values(trial, metric)

    def event(self, experiment: Experiment, event: Event) -> None:
        if self._recorder is None:
            return
        meta = experiment.metadata
        raw = self._experiments.raw(((meta.namespace if meta else None) or "", (meta.name if meta else None) or ""))
        if raw is not None:
            self._recorder.record(raw, event)

    def create_trials(self, namespace: str, trials: Sequence[Trial]) -> list[Trial]:
        """Create ``trials``, several at a time when there is a pool: each create waits on an etcd write.

        Their names are recorded already, so the order does not matter; the first failure is raised
        once every create has been tried (the next pass creates what is still missing).
        """
        if self._creators is None or len(trials) < 2:
            return [created for trial in trials if (created := self._create_trial(namespace, trial)) is not None]
        futures = [self._creators.submit(self._create_trial, namespace, trial) for trial in trials]
        errors = [exc for exc in (f.exception() for f in futures) if exc is not None]
        if errors:
            raise errors[0]
        return [created for created in (f.result() for f in futures) if created is not None]

    def _create_trial(self, namespace: str, trial: Trial) -> Trial | None:
        try:
            created = self._objects.create(resources.TRIALS, namespace, trial.to_api())
        except AlreadyExistsError:
            return None
        self._trials.put(resources.trial_summary(created))
        return trial

    def template(self, experiment: Experiment) -> Mapping[str, Any] | None:
        """The trial template of a ``trialTemplate.configMap`` (None: the Experiment has it inline)."""
        spec = experiment.spec
        source = spec.trial_template.config_map if spec and spec.trial_template else None
        if source is None or (spec and spec.trial_template and spec.trial_template.trial_spec):
            return None
        if self._api is None:
            raise ValidationError("spec.trialTemplate.configMap", "this controller cannot read ConfigMaps")
        namespace = (
            source.config_map_namespace or (experiment.metadata.namespace if experiment.metadata else None) or ""
        )
        try:
            found = self._api.request(
                "GET", kubeapi.path("", "v1", "configmaps", namespace, source.config_map_name or "")
            )
        except ApiError as exc:
            raise ApiUnavailableError(f"configmap {namespace}/{source.config_map_name}: {exc}") from None
        text = (found.get("data") or {}).get(source.template_path or "")
        if text is None:
            raise ValidationError(
                "spec.trialTemplate.configMap.templatePath", f"{source.template_path!r} is not in the ConfigMap"
            )
        loaded = yaml.safe_load(text)
        if not isinstance(loaded, dict):
            raise ValidationError("spec.trialTemplate.configMap.templatePath", "the template is not a YAML object")
        return loaded
