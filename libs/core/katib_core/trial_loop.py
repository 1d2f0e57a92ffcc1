"""The trial loop, once: one pass over a Trial, written against a port.

``trial_reconcile`` decides; this module runs a pass in the one order both adapters need — the
trial controller (jobs are API objects) and local mode (jobs are processes on this machine):

finalizer first, then the job (created under the trial's name, so a repeat finds it), then the
metric read, then the sentinel row a Push trial without its objective gets, stored *before*
MetricsUnavailable is written, then the status, then Events. A crash between any two steps
repeats work and never corrupts status; a DB-manager outage delays status and never changes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from katib_core import aggregation, constants, trial_reconcile
from katib_core.errors import StorageError
from katib_core.events import Event
from katib_core.models import Trial, TrialStatus
from katib_core.trial_reconcile import FinalizerAction, JobAction

#: Push: if storing the sentinel row fails, look again after this long (Katib: 1 s).
SENTINEL_RETRY_SECONDS: Final = 1.0


class TrialPort(Protocol):
    """Where an adapter keeps Trials and runs their jobs."""

    def job(self, trial: Trial) -> Mapping[str, Any] | None:
        """The trial's job as its API object (a Job's ``status`` at least); None: not created."""

    def create_job(self, trial: Trial) -> bool:
        """Start the trial's job (one that exists already is left as it is). False: it cannot start
        yet (local mode waiting for GPUs); the pass then writes nothing."""

    def delete_job(self, trial: Trial) -> None:
        """Delete the trial's job (a completed trial without ``retainRun``)."""

    def save_finalizers(self, trial: Trial, finalizers: list[str]) -> Trial:
        """Write the trial's finalizers; the stored Trial."""

    def save_status(self, trial: Trial, status: TrialStatus) -> Trial:
        """Write the trial's status; the stored Trial."""

    def event(self, trial: Trial, event: Event) -> None:
        """Post an Event about the Trial (an adapter without Events may drop it)."""


class MetricLogPort(Protocol):
    """The DB manager, as the loop needs it. Failures raise ``StorageError`` (or its
    ``StorageUnavailableError``): the pass stops before writing status."""

    def rows(self, trial_name: str) -> list[aggregation.Row]: ...

    def report(self, trial_name: str, row: aggregation.Row, *, key: str | None = None) -> None: ...

    def delete(self, trial_name: str) -> None: ...


@dataclass(frozen=True)
class TrialPass:
    """What one pass did: the Trial as stored now, and when to look again (None: on the next change)."""

    trial: Trial
    requeue_after: float | None = None
    #: Why the pass stopped short (the sentinel row not stored yet), for the adapter's log.
    problem: str | None = None


def sentinel_key(trial: Trial) -> str | None:
    """The idempotency key of a trial's sentinel row: one per trial object (its uid)."""
    uid = trial.metadata.uid if trial.metadata else None
    return f"sentinel.{uid}" if uid else None


def run_pass(trial: Trial, port: TrialPort, logs: MetricLogPort, *, now: str) -> TrialPass:
    """One pass over ``trial`` (see the module docstring).

    Raises:
        StorageError: the DB manager failed reading metric logs or deleting them (nothing written).
        ValidationError: the trial's conditions or job cannot be handled (permanent).
    """
    name = (trial.metadata.name if trial.metadata else None) or ""
    plan = trial_reconcile.plan_trial(trial, port.job(trial), now=now)
    finalizers = list((trial.metadata.finalizers if trial.metadata else None) or [])
    if plan.finalizer == FinalizerAction.CLEAN_AND_REMOVE:
        logs.delete(name)  # the DB manager down: raises, the finalizer stays, deletion waits
        kept = [f for f in finalizers if f != constants.CLEAN_METRICS_FINALIZER]
        return TrialPass(port.save_finalizers(trial, kept))
    if plan.finalizer == FinalizerAction.ADD:
        trial = port.save_finalizers(trial, [*finalizers, constants.CLEAN_METRICS_FINALIZER])

    if plan.job_action == JobAction.CREATE:
        if not port.create_job(trial):
            return TrialPass(trial)
    elif plan.job_action == JobAction.DELETE:
        port.delete_job(trial)

    rows = logs.rows(name) if plan.read_observation else None
    update = trial_reconcile.conclude(trial, plan, rows, now=now)
    if update.sentinel is not None:
        try:
            logs.report(name, update.sentinel, key=sentinel_key(trial))
        except StorageError as exc:
            return TrialPass(trial, SENTINEL_RETRY_SECONDS, f"sentinel not stored ({exc}); retry in 1s")
    if _changed(trial.status, update.status):
        trial = port.save_status(trial, update.status)
    for event in update.events:
        port.event(trial, event)
    return TrialPass(trial, update.requeue_after)


def _changed(old: TrialStatus | None, new: TrialStatus) -> bool:
    return new.to_api() != (old.to_api() if old else {})


__all__ = ["SENTINEL_RETRY_SECONDS", "MetricLogPort", "TrialPass", "TrialPort", "run_pass", "sentinel_key"]
