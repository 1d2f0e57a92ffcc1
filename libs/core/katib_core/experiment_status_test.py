import pytest

from katib_core import experiment_status, testing
from katib_core.constants import ExperimentReason, TrialConditionType
from katib_core.experiment_status import Bucket
from katib_core.models import ExperimentStatus

C = TrialConditionType.CREATED


@pytest.mark.parametrize(
    ("conditions", "bucket"),
    [
        ((C,), Bucket.PENDING),
        ((C, TrialConditionType.RUNNING), Bucket.RUNNING),
        ((C, TrialConditionType.RUNNING, TrialConditionType.SUCCEEDED), Bucket.SUCCEEDED),
        ((C, TrialConditionType.RUNNING, TrialConditionType.FAILED), Bucket.FAILED),
        (
            (C, TrialConditionType.RUNNING, TrialConditionType.METRICS_UNAVAILABLE),
            Bucket.RUNNING,
        ),  # Running still True: Running is checked first
        ((C, TrialConditionType.METRICS_UNAVAILABLE), Bucket.METRICS_UNAVAILABLE),
        ((C, TrialConditionType.KILLED, TrialConditionType.FAILED), Bucket.KILLED),
        ((C, TrialConditionType.EARLY_STOPPED), Bucket.EARLY_STOPPED),
    ],
)
def test_buckets_in_katibs_order(conditions: tuple[str, ...], bucket: Bucket) -> None:
    assert experiment_status.bucket_of(testing.trial("t", *conditions)) == bucket


def test_best_trial_minimize_and_goal() -> None:
    trials = [
        testing.trial("t1", C, TrialConditionType.SUCCEEDED, loss="0.5"),
        testing.trial("t2", C, TrialConditionType.SUCCEEDED, loss="0.2", lr="0.02"),
        testing.trial("t3", C, TrialConditionType.RUNNING),
    ]
    summary = experiment_status.summarize(testing.experiment(goal=0.3), trials)
    assert summary.best is not None
    assert summary.best.metadata is not None
    assert summary.best.metadata.name == "t2"
    assert summary.goal_reached
    status = experiment_status.with_summary(testing.experiment().status or ExperimentStatus(), summary)
    assert status.current_optimal_trial is not None
    assert status.current_optimal_trial.best_trial_name == "t2"
    assert status.current_optimal_trial.parameter_assignments is not None
    assert status.current_optimal_trial.parameter_assignments[0].value == "0.02"
    assert (status.trials, status.trials_succeeded, status.trials_running) == (3, 2, 1)
    assert status.succeeded_trial_list == ["t1", "t2"]


def test_ties_keep_the_first_trial_and_maximize_works() -> None:
    trials = [testing.trial(n, C, TrialConditionType.SUCCEEDED, loss="0.5", strategy="max") for n in ("b", "a")]
    summary = experiment_status.summarize(testing.experiment(objective_type="maximize"), trials)
    assert summary.best is not None
    assert summary.best.metadata is not None
    assert summary.best.metadata.name == "a"


def test_unavailable_objectives_are_skipped_and_strings_win() -> None:
    trials = [
        testing.trial("a", C, TrialConditionType.METRICS_UNAVAILABLE),
        testing.trial("b", C, TrialConditionType.SUCCEEDED, loss="x"),
    ]
    summary = experiment_status.summarize(testing.experiment(), trials)
    assert summary.best is not None
    assert summary.best.metadata is not None
    assert summary.best.metadata.name == "b"


@pytest.mark.parametrize(
    ("trials", "kwargs", "reason"),
    [
        ([("S", "0.1")], {"goal": 0.2}, ExperimentReason.GOAL_REACHED),
        ([("F", None), ("M", None)], {"max_failed": 2}, ExperimentReason.FAILED),  # MU counts as failed
        ([("F", None)], {"max_failed": 0}, ExperimentReason.FAILED),
        ([("S", "1"), ("M", None), ("S", "2"), ("F", None)], {}, ExperimentReason.MAX_TRIALS_REACHED),
        ([("S", "1"), ("M", None), ("R", None)], {}, None),
    ],
)
def test_completion_rules(trials: list[tuple[str, str | None]], kwargs: dict[str, float], reason: str | None) -> None:
    kinds = {
        "S": TrialConditionType.SUCCEEDED,
        "F": TrialConditionType.FAILED,
        "M": TrialConditionType.METRICS_UNAVAILABLE,
        "R": TrialConditionType.RUNNING,
    }
    built = [testing.trial(f"t{i}", C, kinds[k], loss=v) for i, (k, v) in enumerate(trials)]
    experiment = testing.experiment(max_trials=4, **kwargs)  # type: ignore[arg-type]
    done = experiment_status.completion(
        experiment, experiment_status.summarize(experiment, built), suggestions_exhausted=False
    )
    assert (done.reason if done else None) == reason


def test_suggestion_end_waits_for_active_trials() -> None:
    experiment = testing.experiment(max_trials=10)
    running = [testing.trial("a", C, TrialConditionType.RUNNING)]
    assert (
        experiment_status.completion(
            experiment, experiment_status.summarize(experiment, running), suggestions_exhausted=True
        )
        is None
    )
    done = [testing.trial("a", C, TrialConditionType.SUCCEEDED, loss="1")]
    result = experiment_status.completion(
        experiment, experiment_status.summarize(experiment, done), suggestions_exhausted=True
    )
    assert result is not None
    assert result.reason == ExperimentReason.SUGGESTION_END_REACHED
