"""The trial controller's adapter around ``katib_core.trial_loop``: Trials and jobs are API objects.

``TrialReconciler`` is the loop's port over the API server (cached reads, conditional writes) and
runs one ``trial_loop.run_pass`` per key; local mode is the other adapter around the same pass.
With push auth the trial's token Secret is created before its job (its Pods read it at start).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from katib_core import constants, rendering, timestamps, trial_loop, trial_reconcile
from katib_core.errors import AlreadyExistsError, ValidationError
from katib_core.events import Event
from katib_core.models import Trial, TrialStatus
from katib_operator.caches import Key, ObjectCache
from katib_operator.objects import ApiUnavailableError, Objects, owner_reference
from katib_operator.recording import EventRecorder
from katib_operator.running import Result
from katib_trial_controller import resources
from katib_trial_controller.push_tokens import PushTokens
from katib_trial_controller.resources import JobKind
from pykatib.metric_logs import MetricLogs

log = logging.getLogger(__name__)


_now = timestamps.condition_time


class TrialReconciler:
    """Reconciles Trials by key; collaborators are injected (``main`` builds the real ones)."""

    def __init__(
        self,
        *,
        objects: Objects,
        trials: ObjectCache[Trial],
        jobs: ObjectCache[dict[str, Any]],
        job_kinds: Mapping[tuple[str, str], JobKind],
        metric_logs: MetricLogs,
        recorder: EventRecorder | None = None,
        push_tokens: PushTokens | None = None,
        now: Callable[[], str] = _now,
    ) -> None:
        self._objects = objects
        self._trials = trials
        self._jobs = jobs
        self._kinds = job_kinds
        self._logs = metric_logs
        self._recorder = recorder
        self._push_tokens = push_tokens
        self._now = now

    def __call__(self, key: Key) -> Result:
        trial = self._trials.get(key)
        if trial is None or self._trials.raw(key) is None:
            return Result()
        done = trial_loop.run_pass(trial, self, self._logs, now=self._now())
        if done.problem is not None:
            log.info("trial %s/%s: %s", key[0], key[1], done.problem)
        return Result(requeue_after=done.requeue_after)

    # -- trial_loop.TrialPort ----------------------------------------------------------------

    def job(self, trial: Trial) -> Mapping[str, Any] | None:
        return self._jobs.raw((_key(trial)[0], trial_reconcile.job_name(trial)))

    def create_job(self, trial: Trial) -> bool:
        run_spec = (trial.spec.run_spec if trial.spec else None) or {}
        kind = resources.job_kind_of(run_spec, self._kinds)
        if kind is None:
            raise ValidationError(
                "spec.runSpec",
                f"{run_spec.get('kind')!r} ({run_spec.get('apiVersion')}) is not a trial resource "
                "this controller watches (see --trial-resource)",
            )
        raw = self._raw(trial)
        if self._push_tokens is not None:
            self._push_tokens.ensure(raw)  # before the job: its Pods read the token at start
        meta = raw.get("metadata") or {}
        body = rendering.job_object(
            run_spec,
            trial_name=str(meta.get("name")),
            trial_namespace=str(meta.get("namespace")),
            experiment=(meta.get("labels") or {}).get(constants.EXPERIMENT_LABEL),
        )
        body["metadata"]["ownerReferences"] = [owner_reference(raw)]
        try:
            created = self._objects.create(kind.resource, str(body["metadata"]["namespace"]), body)
        except AlreadyExistsError:
            return True
        self._jobs.put(resources.job_summary(created))
        return True

    def delete_job(self, trial: Trial) -> None:
        kind = resources.job_kind_of(trial.spec.run_spec if trial.spec else None, self._kinds)
        if kind is not None:
            self._objects.delete(kind.resource, _key(trial)[0], trial_reconcile.job_name(trial))

    def save_finalizers(self, trial: Trial, finalizers: list[str]) -> Trial:
        namespace, name = _key(trial)
        raw = self._raw(trial)
        stored = self._objects.patch(
            resources.TRIALS,
            namespace,
            name,
            {"metadata": {"finalizers": finalizers}},
            resource_version=(raw.get("metadata") or {}).get("resourceVersion"),
        )
        self._trials.put(resources.without_managed_fields(stored))
        return self._trials.get((namespace, name)) or Trial.from_api(stored)

    def save_status(self, trial: Trial, status: TrialStatus) -> Trial:
        stored = self._objects.replace_status(resources.TRIALS, self._raw(trial), status.to_api())
        self._trials.put(resources.without_managed_fields(stored))
        return trial.model_copy(update={"status": status})  # the cache re-parses only when read again

    def event(self, trial: Trial, event: Event) -> None:
        if self._recorder is not None:
            self._recorder.record(self._raw(trial), event)

    def _raw(self, trial: Trial) -> dict[str, Any]:
        """The stored object of ``trial`` (its resourceVersion makes writes conditional)."""
        raw = self._trials.raw(_key(trial))
        if raw is None:  # deleted while this pass ran: retried, the next pass finds it gone
            raise ApiUnavailableError(f"trial {'/'.join(_key(trial))} is no longer cached")
        return raw


def _key(trial: Trial) -> Key:
    meta = trial.metadata
    return ((meta.namespace if meta else None) or "", (meta.name if meta else None) or "")
