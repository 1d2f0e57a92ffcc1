from typing import Any

import pytest

from katib_core import constants, testing, trial_conditions, trial_reconcile
from katib_core.constants import TrialConditionType
from katib_core.trial_conditions import JobPhase
from katib_core.trial_reconcile import FinalizerAction, JobAction

NOW = "2024-01-02T00:00:00Z"
CREATED = TrialConditionType.CREATED


def job(condition: str | None) -> dict[str, Any]:
    conditions = [{"type": condition, "status": "True", "reason": "Why", "message": "How"}] if condition else []
    return {"metadata": {"name": "t1"}, "status": {"conditions": conditions}}


def with_finalizer(trial: Any) -> Any:
    trial.metadata.finalizers = [constants.CLEAN_METRICS_FINALIZER]
    return trial


def types(status: Any) -> list[tuple[str, str]]:
    return [(c.type, c.status) for c in status.conditions or []]


def test_a_new_trial_is_created_its_job_created_and_running_in_one_pass() -> None:
    trial = testing.trial("t1")
    plan = trial_reconcile.plan_trial(trial, None, now=NOW)
    assert plan.finalizer == FinalizerAction.ADD
    assert plan.job_action == JobAction.CREATE
    update = trial_reconcile.conclude(trial, plan, None, now=NOW)
    assert types(update.status) == [("Created", "True"), ("Running", "True")]
    assert update.status.start_time == NOW
    assert [e.reason for e in update.events] == ["JobCreated", "JobRunning"]


def test_push_succeeded_with_objective_is_succeeded_without_waiting() -> None:
    trial = with_finalizer(testing.trial("t1", CREATED, TrialConditionType.RUNNING))
    plan = trial_reconcile.plan_trial(trial, job("Complete"), now=NOW)
    assert plan.read_observation
    assert plan.job is not None
    assert plan.job.phase == JobPhase.SUCCEEDED
    rows = [("2024-01-01T00:00:00Z", "loss", "0.5"), ("2024-01-01T00:00:01Z", "loss", "0.25")]
    update = trial_reconcile.conclude(trial, plan, rows, now=NOW)
    assert types(update.status) == [("Created", "True"), ("Running", "False"), ("Succeeded", "True")]
    assert update.status.conditions is not None
    assert update.status.conditions[-1].reason == "TrialSucceeded. Job reason: Why"
    assert update.status.conditions[-1].message == "Trial has succeeded. Job message: How"
    assert update.status.completion_time == NOW
    assert update.status.observation is not None
    assert update.status.observation.metrics is not None
    assert update.status.observation.metrics[0].latest == "0.25"
    assert update.sentinel is None
    assert update.requeue_after is None


@pytest.mark.parametrize("rows", [[], [("2024-01-01T00:00:00Z", "acc", "0.9")]])
def test_push_without_objective_gets_the_sentinel_and_metrics_unavailable(rows: list[tuple[str, str, str]]) -> None:
    trial = with_finalizer(testing.trial("t1", CREATED, TrialConditionType.RUNNING))
    plan = trial_reconcile.plan_trial(trial, job("Complete"), now=NOW)
    update = trial_reconcile.conclude(trial, plan, rows, now=NOW)
    assert update.sentinel == ("0001-01-01T00:00:00Z", "loss", "unavailable")
    assert update.requeue_after is None
    assert trial_conditions.holds(update.status, TrialConditionType.METRICS_UNAVAILABLE)
    assert update.status.observation is None  # loss is the only strategy; acc rows are not its metric
    assert [e.type for e in update.events] == ["Warning"]


def test_pull_waits_for_its_collector_then_succeeds() -> None:
    trial = with_finalizer(testing.trial("t1", CREATED, TrialConditionType.RUNNING, kind="StdOut"))
    plan = trial_reconcile.plan_trial(trial, job("Complete"), now=NOW)
    waiting = trial_reconcile.conclude(trial, plan, [], now=NOW)
    assert waiting.requeue_after == 1.0
    assert waiting.sentinel is None
    assert not waiting.events
    assert not trial_conditions.is_completed(waiting.status)
    done = trial_reconcile.conclude(trial, plan, [("2024-01-01T00:00:00Z", "loss", "1")], now=NOW)
    assert trial_conditions.holds(done.status, TrialConditionType.SUCCEEDED)


def test_pull_with_unavailable_objective_is_metrics_unavailable_without_sentinel() -> None:
    trial = with_finalizer(testing.trial("t1", CREATED, TrialConditionType.RUNNING, kind="StdOut"))
    plan = trial_reconcile.plan_trial(trial, job("Complete"), now=NOW)
    update = trial_reconcile.conclude(trial, plan, [("0001-01-01T00:00:00Z", "loss", "unavailable")], now=NOW)
    assert trial_conditions.holds(update.status, TrialConditionType.METRICS_UNAVAILABLE)
    assert update.sentinel is None


def test_job_failure_fails_the_trial_even_with_metrics() -> None:
    trial = with_finalizer(testing.trial("t1", CREATED, TrialConditionType.RUNNING))
    plan = trial_reconcile.plan_trial(trial, job("Failed"), now=NOW)
    assert not plan.read_observation
    update = trial_reconcile.conclude(trial, plan, None, now=NOW)
    assert types(update.status)[-1] == ("Failed", "True")
    assert update.status.conditions is not None
    assert update.status.conditions[-1].reason == "TrialFailed. Job reason: Why"


@pytest.mark.parametrize(("retain", "action"), [(False, JobAction.DELETE), (True, JobAction.NONE)])
def test_completed_trials_delete_their_job_unless_retained(retain: bool, action: JobAction) -> None:
    trial = with_finalizer(testing.trial("t1", CREATED, TrialConditionType.SUCCEEDED, loss="1"))
    assert trial.spec is not None
    trial.spec.retain_run = retain
    plan = trial_reconcile.plan_trial(trial, job("Complete"), now=NOW)
    assert plan.job_action == action
    assert not plan.read_observation
    assert trial_reconcile.conclude(trial, plan, None, now=NOW).status == trial.status


def test_a_completed_trial_without_job_is_left_alone() -> None:
    trial = with_finalizer(testing.trial("t1", CREATED, TrialConditionType.METRICS_UNAVAILABLE))
    plan = trial_reconcile.plan_trial(trial, None, now=NOW)
    assert plan.job_action == JobAction.NONE
    assert plan.finalizer == FinalizerAction.NONE


def test_deleted_trial_cleans_metrics_before_its_finalizer_goes() -> None:
    trial = with_finalizer(testing.trial("t1", CREATED, TrialConditionType.RUNNING))
    assert trial.metadata is not None
    trial.metadata.deletion_timestamp = NOW
    plan = trial_reconcile.plan_trial(trial, job(None), now=NOW)
    assert plan.finalizer == FinalizerAction.CLEAN_AND_REMOVE
    assert plan.job_action == JobAction.NONE
    trial.metadata.finalizers = []
    assert trial_reconcile.plan_trial(trial, None, now=NOW).finalizer == FinalizerAction.NONE


def test_running_is_marked_once() -> None:
    trial = with_finalizer(testing.trial("t1", CREATED, TrialConditionType.RUNNING))
    plan = trial_reconcile.plan_trial(trial, job(None), now=NOW)
    update = trial_reconcile.conclude(trial, plan, None, now=NOW)
    assert update.status == trial.status
    assert not update.events


def test_transition_time_kept_when_status_unchanged() -> None:
    trial = with_finalizer(testing.trial("t1", CREATED, TrialConditionType.RUNNING))
    assert trial.status is not None
    assert trial.status.conditions is not None
    trial.status.conditions[0].last_transition_time = "2020-01-01T00:00:00Z"
    status = trial_conditions.mark_created(trial.status, now=NOW)
    assert status.conditions is not None
    assert status.conditions[0].last_transition_time == "2020-01-01T00:00:00Z"
