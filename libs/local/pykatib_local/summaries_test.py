"""What `pykatib get trials` shows: the strategy's value, best first, numbers rounded for people only."""

from __future__ import annotations

from katib_core import testing, trial_results
from katib_core.models import Metric, MetricStrategy, Observation, Trial
from pykatib_local import listing, summaries


def observed(name: str, *, low: str, high: str, last: str, creation: str) -> Trial:
    trial = testing.trial(name, "Created", "Succeeded", loss=last)
    assert trial.status is not None
    assert trial.metadata is not None
    trial.status.observation = Observation(metrics=[Metric(name="loss", min=low, max=high, latest=last)])
    trial.metadata.creation_timestamp = creation
    return trial


def test_trials_are_sorted_by_the_value_the_objective_strategy_picks() -> None:
    trials = [
        observed("a", low="0.5", high="0.9", last="0.6", creation="2026-01-01T00:00:01Z"),
        observed("b", low="0.1", high="0.95", last="0.7", creation="2026-01-01T00:00:02Z"),
        testing.trial("c", "Created", "Failed"),
    ]
    minimize = trial_results.trial_rows(testing.experiment(), trials)
    assert [(r.name, r.metrics["loss"]) for r in minimize] == [("b", "0.1"), ("a", "0.5"), ("c", "")]
    assert minimize[2].reason == "Failed"  # the failed condition's message
    maximize = trial_results.trial_rows(testing.experiment(objective_type="maximize"), trials)
    assert [(r.name, r.metrics["loss"]) for r in maximize] == [("b", "0.95"), ("a", "0.9"), ("c", "")]


def test_metric_strategies_of_the_experiment_win_over_the_objective_type() -> None:
    experiment = testing.experiment()
    assert experiment.spec is not None
    assert experiment.spec.objective is not None
    experiment.spec.objective.metric_strategies = [MetricStrategy(name="loss", value="latest")]
    trials = [
        observed("a", low="0.1", high="0.9", last="0.6", creation="2026-01-01T00:00:01Z"),
        observed("b", low="0.2", high="0.9", last="0.3", creation="2026-01-01T00:00:02Z"),
    ]
    rows = trial_results.trial_rows(experiment, trials)
    assert [(r.name, r.metrics["loss"]) for r in rows] == [("b", "0.3"), ("a", "0.6")]
    assert trial_results.strategy(experiment, "loss") == "latest"
    assert trial_results.strategy(experiment, "acc") == "min"  # Katib's default: the objective type's


def test_numbers_are_rounded_for_people_and_exact_for_programs() -> None:
    assert summaries.for_people("0.12345678901234567") == "0.123457"
    assert summaries.for_people("12") == "12"
    assert summaries.for_people("adam") == "adam"
    assert trial_results.typed("0.12345678901234567") == 0.12345678901234567
    assert trial_results.typed("12") == 12
    assert trial_results.typed("adam") == "adam"
    csv = listing.render([{"name": "t", "loss": "0.12345678901234567"}], "csv")
    assert csv == "name,loss\nt,0.12345678901234567\n"
