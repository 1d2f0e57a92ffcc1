"""One reconcile of one Experiment: read the caches, run ``katib_core.planning``, write what it says.

Order matters for restart safety: the Suggestion record (with the new trial names) is written
before any Trial is created from it, and Trials are created by those names, so a crash between
any two writes repeats work (409 on create) but never duplicates a Trial.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import yaml

from katib_core import early_stopping, planning, suggestions, timestamps
from katib_core.constants import SuggestionConditionType
from katib_core.errors import AlreadyExistsError, ValidationError
from katib_core.events import WARNING, Event
from katib_core.models import Experiment, Suggestion, Trial
from katib_experiment_controller import resources
from katib_operator import kubeapi
from katib_operator.caches import Key, ObjectCache
from katib_operator.kubeapi import ApiError, KubeApi
from katib_operator.objects import ApiUnavailableError, Objects
from katib_operator.recording import EventRecorder
from katib_operator.running import Result
from katib_suggest import Suggester

log = logging.getLogger(__name__)


def _now() -> str:
    return timestamps.format_nano(timestamps.utc_now().replace(microsecond=0))


class ExperimentReconciler:
    """Reconciles Experiments by key; collaborators are injected (``main`` builds the real ones)."""

    def __init__(
        self,
        *,
        objects: Objects,
        experiments: ObjectCache[Experiment],
        trials: ObjectCache[Trial],
        suggestions_cache: ObjectCache[Suggestion],
        suggester: Suggester,
        recorder: EventRecorder | None = None,
        api: KubeApi | None = None,
        now: Callable[[], str] = _now,
        rng: random.Random | None = None,
        creators: ThreadPoolExecutor | None = None,
        objective_values: Callable[[str, str], list[str]] | None = None,
    ) -> None:
        self._objects = objects
        self._experiments = experiments
        self._trials = trials
        self._suggestions = suggestions_cache
        self._suggester = suggester
        self._recorder = recorder
        self._api = api
        self._now = now
        self._rng = rng or random.Random()
        self._creators = creators
        #: (trial, metric) → the metric's values in report order, from the DB manager (medianstop).
        self._objective_values = objective_values
        self._succeeded_values: dict[tuple[str, str], list[str]] = {}

    def __call__(self, key: Key) -> Result:
        namespace, name = key
        experiment = self._experiments.get(key)
        raw = self._experiments.raw(key)
        if experiment is None or raw is None:
            self._suggester.forget_prefix(f"{namespace}/{name}/")
            return Result()
        if experiment.metadata and experiment.metadata.deletion_timestamp:
            return Result()  # the garbage collector deletes its Suggestion and Trials
        trials = self._trials.indexed(namespace, name)
        record = self._suggestions.get(key)
        now = self._now()
        template = self._template(experiment)
        plan = planning.plan_experiment(experiment, trials, record, now=now, template=template)
        if plan.suggestion_changed:
            record = self._save(plan.suggestion, create=record is None)
        if plan.request is not None:
            current = record or plan.suggestion
            try:
                reply = self._suggester.suggest(plan.request)
            except ValidationError as exc:
                self._save(
                    suggestions.mark(
                        current, SuggestionConditionType.FAILED, suggestions.REASON_FAILED, str(exc), now=now
                    ),
                    create=False,
                )
                self._event(raw, Event(WARNING, "SuggestionFailed", str(exc)))
                raise
            taken = [t.metadata.name for t in trials if t.metadata and t.metadata.name]
            rules = early_stopping.median_stop_rules(plan.experiment, self._succeeded(plan.experiment, trials))
            recorded = suggestions.record(
                current, plan.experiment, reply, taken=taken, rng=self._rng, now=now, early_stopping_rules=rules
            )
            record = self._save(recorded, create=False)
            plan = planning.with_recorded(plan, record, template=template)
        self._create_trials(namespace, plan.trials_to_create)
        if planning.status_changed(experiment.status, plan.status):
            updated = self._objects.replace_status(resources.EXPERIMENTS, raw, plan.status.to_api())
            self._experiments.put(updated)
        if plan.finished and suggestions.is_succeeded(plan.suggestion):
            self._suggester.forget(suggestions.experiment_key(experiment))
        return Result()

    def _succeeded(self, experiment: Experiment, trials: Sequence[Trial]) -> list[list[str]]:
        """Per succeeded Trial, its objective values in report order (what medianstop reads); only
        for Experiments with ``earlyStopping``. A succeeded trial's logs never change: read once."""
        metric, names = early_stopping.succeeded_trials(experiment, trials)
        if not metric:
            return []
        if self._objective_values is None:
            raise ValidationError("spec.earlyStopping", "this controller was started without a DB manager address")
        namespace = (experiment.metadata.namespace if experiment.metadata else None) or ""
        found = []
        for name in names:
            key = (f"{namespace}/{name}", metric)
            if key not in self._succeeded_values:
                self._succeeded_values[key] = self._objective_values(name, metric)
            found.append(self._succeeded_values[key])
        return found

    def _save(self, record: Suggestion, *, create: bool) -> Suggestion:
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

    def _create_trials(self, namespace: str, trials: Sequence[Trial]) -> None:
        """Create ``trials``, several at a time when there is a pool: each create waits on an etcd write.

        Their names are recorded already, so the order does not matter; the first failure is raised
        once every create has been tried (the next pass creates what is still missing).
        """
        if self._creators is None or len(trials) < 2:
            for trial in trials:
                self._create_trial(namespace, trial)
            return
        futures = [self._creators.submit(self._create_trial, namespace, trial) for trial in trials]
        errors = [exc for exc in (f.exception() for f in futures) if exc is not None]
        if errors:
            raise errors[0]

    def _create_trial(self, namespace: str, trial: Trial) -> None:
        try:
            created = self._objects.create(resources.TRIALS, namespace, trial.to_api())
        except AlreadyExistsError:
            return
        self._trials.put(resources.trial_summary(created))

    def _template(self, experiment: Experiment) -> Mapping[str, Any] | None:
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

    def _event(self, about: Mapping[str, Any], event: Event) -> None:
        if self._recorder is not None:
            self._recorder.record(about, event)
