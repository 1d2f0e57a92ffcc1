"""One reconcile of one Trial: cached Trial + job → ``katib_core.trial_reconcile`` → API and DB-manager calls.

Writes are ordered so any crash is harmless: with push auth the trial's token Secret comes
first (409 if it exists), the job is created under the trial's name (409 if it exists), the
sentinel row is stored before MetricsUnavailable is written, status writes are conditional on
the resourceVersion they were decided on, and the finalizer is removed only after the trial's
metric logs are deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from katib_core import constants, rendering, timestamps, trial_reconcile
from katib_core.errors import AlreadyExistsError, StorageError, ValidationError
from katib_core.events import Event
from katib_core.models import Trial
from katib_core.trial_reconcile import FinalizerAction, JobAction
from katib_operator.caches import Key, ObjectCache
from katib_operator.objects import Objects, owner_reference
from katib_operator.recording import EventRecorder
from katib_operator.running import Result
from katib_trial_controller import resources
from katib_trial_controller.metric_logs import MetricLogs
from katib_trial_controller.push_tokens import PushTokens
from katib_trial_controller.resources import JobKind

log = logging.getLogger(__name__)

#: Push: if storing the sentinel row fails, look again after this long (Katib: 1 s).
SENTINEL_RETRY_SECONDS = 1.0


def _now() -> str:
    return timestamps.format_nano(timestamps.utc_now().replace(microsecond=0))


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
        namespace, name = key
        trial = self._trials.get(key)
        raw = self._trials.raw(key)
        if trial is None or raw is None:
            return Result()
        run_spec = trial.spec.run_spec if trial.spec else None
        kind = resources.job_kind_of(run_spec, self._kinds)
        job_name = trial_reconcile.job_name(trial)
        job = self._jobs.raw((namespace, job_name))
        now = self._now()
        plan = trial_reconcile.plan_trial(trial, job, now=now)

        if plan.finalizer == FinalizerAction.CLEAN_AND_REMOVE:
            self._logs.delete(name)  # DB manager down: raises, the finalizer stays, deletion waits
            kept = [
                f
                for f in (trial.metadata.finalizers if trial.metadata else None) or []
                if f != constants.CLEAN_METRICS_FINALIZER
            ]
            self._write_meta(raw, {"metadata": {"finalizers": kept}})
            return Result()
        if plan.finalizer == FinalizerAction.ADD:
            finalizers = [
                *((trial.metadata.finalizers if trial.metadata else None) or []),
                constants.CLEAN_METRICS_FINALIZER,
            ]
            raw = self._write_meta(raw, {"metadata": {"finalizers": finalizers}})

        if plan.job_action == JobAction.CREATE:
            if kind is None:
                raise ValidationError(
                    "spec.runSpec",
                    f"{(run_spec or {}).get('kind')!r} ({(run_spec or {}).get('apiVersion')}) is not a trial resource "
                    "this controller watches (see --trial-resource)",
                )
            if self._push_tokens is not None:
                self._push_tokens.ensure(raw)  # before the job: its Pods read the token at start
            self._create_job(raw, kind, run_spec or {})
        elif plan.job_action == JobAction.DELETE and kind is not None:
            self._objects.delete(kind.resource, namespace, job_name)

        rows = self._logs.rows(name) if plan.read_observation else None
        update = trial_reconcile.conclude(trial, plan, rows, now=now)
        if update.sentinel is not None:
            try:
                self._logs.report(name, update.sentinel, key=_sentinel_key(raw))
            except StorageError as exc:
                log.info(
                    "trial %s/%s: sentinel not stored (%s); retry in %.0fs",
                    namespace,
                    name,
                    exc,
                    SENTINEL_RETRY_SECONDS,
                )
                return Result(requeue_after=SENTINEL_RETRY_SECONDS)
        if update.status.to_api() != (trial.status.to_api() if trial.status else {}):
            stored = self._objects.replace_status(resources.TRIALS, raw, update.status.to_api())
            self._trials.put(resources.without_managed_fields(stored))
        for event in update.events:
            self._event(raw, event)
        return Result(requeue_after=update.requeue_after)

    def _write_meta(self, raw: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
        meta = raw.get("metadata") or {}
        stored = self._objects.patch(
            resources.TRIALS, meta["namespace"], meta["name"], patch, resource_version=meta.get("resourceVersion")
        )
        stored = resources.without_managed_fields(stored)
        self._trials.put(stored)
        return stored

    def _create_job(self, trial_raw: Mapping[str, Any], kind: JobKind, run_spec: Mapping[str, Any]) -> None:
        trial_meta = trial_raw.get("metadata") or {}
        body = rendering.job_object(
            run_spec,
            trial_name=str(trial_meta.get("name")),
            trial_namespace=str(trial_meta.get("namespace")),
            experiment=(trial_meta.get("labels") or {}).get(constants.EXPERIMENT_LABEL),
        )
        body["metadata"]["ownerReferences"] = [owner_reference(trial_raw)]
        try:
            created = self._objects.create(kind.resource, str(body["metadata"]["namespace"]), body)
        except AlreadyExistsError:
            return
        self._jobs.put(resources.job_summary(created))

    def _event(self, about: Mapping[str, Any], event: Event) -> None:
        if self._recorder is not None:
            self._recorder.record(about, event)


def _sentinel_key(raw: Mapping[str, Any]) -> str | None:
    uid = (raw.get("metadata") or {}).get("uid")
    return f"sentinel.{uid}" if uid else None
