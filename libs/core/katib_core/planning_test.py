import random

from katib_core import conditions, planning, suggestions, testing
from katib_core.constants import ExperimentConditionType, ExperimentReason, TrialConditionType
from katib_core.models import ParameterAssignment, Suggestion, Trial
from katib_core.suggestions import SuggestionReply

NOW = "2024-01-02T00:00:00Z"
C = TrialConditionType.CREATED


def reply(*values: str, exhausted: bool = False) -> SuggestionReply:
    return SuggestionReply(tuple((ParameterAssignment(name="lr", value=v),) for v in values), exhausted=exhausted)


def step(  # type: ignore[no-untyped-def]
    experiment, trials: list[Trial], suggestion: Suggestion | None, values: list[str], *, exhausted: bool = False
) -> planning.ExperimentPlan:
    """One shell pass: plan, record what the algorithm answers, plan again."""
    plan = planning.plan_experiment(experiment, trials, suggestion, now=NOW)
    if plan.request is not None:
        assert plan.request.count == len(values) or exhausted
        taken = [t.metadata.name for t in trials if t.metadata and t.metadata.name]
        answer = reply(*values, exhausted=exhausted)
        record = suggestions.record(
            plan.suggestion, plan.experiment, answer, taken=taken, rng=random.Random(0), now=NOW
        )
        plan = planning.plan_experiment(experiment, trials, record, now=NOW)
        assert plan.request is None
    return plan


def succeeded_reason(plan: planning.ExperimentPlan) -> str | None:
    found = conditions.find(plan.status.conditions, ExperimentConditionType.SUCCEEDED)
    return found.reason if found else None


def test_first_pass_creates_the_suggestion_and_parallel_trials() -> None:
    experiment = testing.experiment(max_trials=4, parallel=2)
    first = planning.plan_experiment(experiment, [], None, now=NOW)
    assert first.suggestion_changed
    assert first.request is not None
    assert first.request.count == 2
    assert conditions.holds(first.status.conditions, ExperimentConditionType.CREATED)
    assert conditions.holds(first.status.conditions, ExperimentConditionType.RUNNING)
    plan = step(experiment, [], None, ["0.01", "0.02"])
    assert len(plan.trials_to_create) == 2
    names = [t.metadata.name for t in plan.trials_to_create if t.metadata]
    assert len(set(names)) == 2
    assert all(n and n.startswith("exp-") for n in names)


def test_existing_trials_are_never_created_again_and_budget_is_kept() -> None:
    experiment = testing.experiment(max_trials=4, parallel=2)
    plan = step(experiment, [], None, ["0.01", "0.02"])
    trials = list(plan.trials_to_create)
    again = planning.plan_experiment(experiment, trials, plan.suggestion, now=NOW)
    assert again.trials_to_create == ()
    assert again.request is None  # both active already
    finished = [
        testing.trial(t.metadata.name or "", C, TrialConditionType.SUCCEEDED, loss="1") for t in trials if t.metadata
    ]
    third = step(experiment, finished, plan.suggestion, ["0.03", "0.04"])
    assert len(third.trials_to_create) == 2
    all_trials = finished + [
        testing.trial(t.metadata.name or "", C, TrialConditionType.METRICS_UNAVAILABLE)
        for t in third.trials_to_create
        if t.metadata
    ]
    final = planning.plan_experiment(experiment, all_trials, third.suggestion, now=NOW)
    assert final.request is None
    assert final.finished
    assert conditions.holds(final.status.conditions, ExperimentConditionType.SUCCEEDED)
    assert succeeded_reason(final) == ExperimentReason.MAX_TRIALS_REACHED
    assert not conditions.holds(final.status.conditions, ExperimentConditionType.RUNNING)
    assert suggestions.is_succeeded(final.suggestion)
    assert final.suggestion_changed  # resumePolicy Never


def test_metrics_unavailable_counts_as_completed_for_new_trials() -> None:
    # 3 MU + 1 running, parallel 2, max 4: upstream creates a 5th trial; we create none.
    experiment = testing.experiment(max_trials=4, parallel=2)
    trials = [testing.trial(f"t{i}", C, TrialConditionType.METRICS_UNAVAILABLE) for i in range(3)] + [
        testing.trial("t3", C, TrialConditionType.RUNNING)
    ]
    plan = planning.plan_experiment(experiment, trials, None, now=NOW)
    assert plan.request is None
    assert plan.trials_to_create == ()


def test_recorded_assignments_without_trials_are_created_after_a_crash() -> None:
    experiment = testing.experiment(max_trials=4, parallel=2)
    plan = step(experiment, [], None, ["0.01", "0.02"])
    created = plan.trials_to_create[:1]  # the controller died after creating one trial
    resumed = planning.plan_experiment(experiment, list(created), plan.suggestion, now=NOW)
    assert [t.metadata.name for t in resumed.trials_to_create if t.metadata] == [
        t.metadata.name for t in plan.trials_to_create[1:] if t.metadata
    ]
    assert resumed.request is None


def test_goal_reached_stops_creating_trials() -> None:
    experiment = testing.experiment(max_trials=10, parallel=2, goal=0.1)
    trials = [
        testing.trial("a", C, TrialConditionType.SUCCEEDED, loss="0.05"),
        testing.trial("b", C, TrialConditionType.RUNNING),
    ]
    plan = planning.plan_experiment(experiment, trials, None, now=NOW)
    assert plan.request is None
    assert not plan.finished
    assert succeeded_reason(plan) == ExperimentReason.GOAL_REACHED


def test_max_failed_fails_the_experiment() -> None:
    experiment = testing.experiment(max_trials=10, parallel=2, max_failed=2)
    trials = [
        testing.trial("a", C, TrialConditionType.FAILED),
        testing.trial("b", C, TrialConditionType.METRICS_UNAVAILABLE),
    ]
    plan = planning.plan_experiment(experiment, trials, None, now=NOW)
    assert conditions.holds(plan.status.conditions, ExperimentConditionType.FAILED)
    assert plan.finished


def test_exhausted_suggestions_end_the_experiment_when_trials_finish() -> None:
    experiment = testing.experiment(max_trials=10, parallel=2)
    plan = step(experiment, [], None, ["0.01"], exhausted=True)
    record = plan.suggestion
    name = plan.trials_to_create[0].metadata.name or ""  # type: ignore[union-attr]
    running = planning.plan_experiment(
        experiment, [testing.trial(name, C, TrialConditionType.RUNNING)], record, now=NOW
    )
    assert running.request is None
    assert not conditions.holds(running.status.conditions, ExperimentConditionType.SUCCEEDED)
    done = planning.plan_experiment(
        experiment, [testing.trial(name, C, TrialConditionType.SUCCEEDED, loss="1")], record, now=NOW
    )
    assert succeeded_reason(done) == ExperimentReason.SUGGESTION_END_REACHED


def test_long_running_experiments_restart_when_max_trials_grows() -> None:
    experiment = testing.experiment(max_trials=1, parallel=1, resume_policy="LongRunning")
    plan = step(experiment, [], None, ["0.01"])
    name = plan.trials_to_create[0].metadata.name or ""  # type: ignore[union-attr]
    trials = [testing.trial(name, C, TrialConditionType.SUCCEEDED, loss="1")]
    done = planning.plan_experiment(experiment, trials, plan.suggestion, now=NOW)
    assert conditions.holds(done.status.conditions, ExperimentConditionType.SUCCEEDED)
    assert not suggestions.is_succeeded(done.suggestion)
    experiment.status = done.status
    assert experiment.spec is not None
    experiment.spec.max_trial_count = 2
    restarted = planning.plan_experiment(experiment, trials, done.suggestion, now=NOW)
    assert not conditions.holds(restarted.status.conditions, ExperimentConditionType.SUCCEEDED)
    assert conditions.find(restarted.status.conditions, ExperimentConditionType.RESTARTING) is not None
    assert conditions.holds(restarted.status.conditions, ExperimentConditionType.RUNNING)
    assert restarted.request is not None
    assert restarted.request.count == 1


def test_never_policy_does_not_restart() -> None:
    experiment = testing.experiment(max_trials=1, parallel=1)
    trials = [testing.trial("exp-a", C, TrialConditionType.SUCCEEDED, loss="1")]
    done = planning.plan_experiment(experiment, trials, None, now=NOW)
    experiment.status = done.status
    assert experiment.spec is not None
    experiment.spec.max_trial_count = 3
    again = planning.plan_experiment(experiment, trials, done.suggestion, now=NOW)
    assert conditions.holds(again.status.conditions, ExperimentConditionType.SUCCEEDED)
    assert again.request is None


def test_a_stable_experiment_plans_no_status_change() -> None:
    experiment = testing.experiment(max_trials=4, parallel=2)
    plan = step(experiment, [], None, ["0.01", "0.02"])
    trials = [
        testing.trial(t.metadata.name or "", C, TrialConditionType.RUNNING) for t in plan.trials_to_create if t.metadata
    ]
    first = planning.plan_experiment(experiment, trials, plan.suggestion, now=NOW)
    experiment.status = first.status
    second = planning.plan_experiment(experiment, trials, plan.suggestion, now="2030-01-01T00:00:00Z")
    assert not planning.status_changed(first.status, second.status)
