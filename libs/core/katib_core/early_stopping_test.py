"""medianstop for Push trials: Katib's rule computation, env encoding, and EarlyStopped from the marker."""

from __future__ import annotations

from typing import Any

import pytest

from katib_core import early_stopping, stop_rules, testing, trial_reconcile
from katib_core.constants import TrialConditionType
from katib_core.errors import ValidationError
from katib_core.models import EarlyStoppingRule, EarlyStoppingSpec, Experiment
from katib_core.observations import MetricPoint

NOW = "2024-01-02T00:00:00Z"


def with_stopping(objective_type: str = "minimize", **settings: str) -> Experiment:
    raw = testing.experiment_dict(objective_type=objective_type)
    raw["spec"]["earlyStopping"] = {
        "algorithmName": "medianstop",
        "algorithmSettings": [{"name": k, "value": v} for k, v in settings.items()],
    }
    return Experiment.from_api(raw)


def test_settings_default_to_katibs_and_bad_ones_name_their_field() -> None:
    assert early_stopping.parse_settings(EarlyStoppingSpec(algorithm_name="medianstop")) == (
        early_stopping.MedianStopSettings(min_trials_required=3, start_step=4)
    )
    spec = EarlyStoppingSpec.from_api(
        {"algorithmName": "medianstop", "algorithmSettings": [{"name": "start_step", "value": "0"}]}
    )
    with pytest.raises(ValidationError, match=r"algorithmSettings\[0\]\.value.*at least 1"):
        early_stopping.parse_settings(spec)
    spec = EarlyStoppingSpec.from_api(
        {"algorithmName": "medianstop", "algorithmSettings": [{"name": "x", "value": "1"}]}
    )
    with pytest.raises(ValidationError, match=r"algorithmSettings\[0\]\.name"):
        early_stopping.parse_settings(spec)
    with pytest.raises(ValidationError, match="algorithmName"):
        early_stopping.parse_settings(EarlyStoppingSpec(algorithm_name="hyperband"))


def test_no_rule_until_enough_trials_succeeded() -> None:
    experiment = with_stopping(min_trials_required="3", start_step="2")
    assert early_stopping.median_stop_rules(experiment, [["1", "2"], ["3"]]) == []
    assert early_stopping.median_stop_rules(experiment, [["1"], ["2"], ["x"]]) == []  # no numbers: not counted
    assert early_stopping.median_stop_rules(testing.experiment(), [["1"]] * 5) == []  # no earlyStopping


@pytest.mark.parametrize(("objective_type", "comparison"), [("minimize", "greater"), ("maximize", "less")])
def test_the_rule_is_the_median_of_means_of_the_first_start_step_values(objective_type: str, comparison: str) -> None:
    experiment = with_stopping(objective_type, min_trials_required="3", start_step="2")
    # means of the first two values: 1.5, 3.0, 10.0 → median 3.0 (later values are ignored)
    rules = early_stopping.median_stop_rules(experiment, [["1", "2", "100"], ["3", "3"], ["10", "10", "-5"]])
    assert rules == [EarlyStoppingRule(name="loss", value="3.0", comparison=comparison, start_step=2)]


def test_rules_travel_through_env_and_stop_a_bad_trial_not_a_good_one() -> None:
    rules = [EarlyStoppingRule(name="loss", value="0.5", comparison="greater", start_step=3)]
    decoded = early_stopping.decode_rules(early_stopping.encode_rules(rules))
    assert decoded == [stop_rules.StopRule("loss", "0.5", "greater", 3)]
    objective = early_stopping.decode_objective(early_stopping.encode_objective("loss", "minimize"))

    def run(values: list[float]) -> int | None:
        tracker = stop_rules.StopRuleTracker(decoded, objective=objective[0], objective_type=objective[1])
        for index, value in enumerate(values):
            if tracker.feed([MetricPoint(testing_time(), "loss", str(value))]):
                return index + 1
        return None

    assert run([0.9, 0.8, 0.7, 0.6]) == 3  # worse than the median at its 3rd report: stopped there
    assert run([0.9, 0.4, 0.7, 0.6]) is None  # best so far (0.4) beats the median: never stopped
    with pytest.raises(ValidationError, match=early_stopping.RULES_ENV):
        early_stopping.decode_rules("loss;abc;greater;1")


def testing_time() -> Any:
    from datetime import datetime

    return datetime(2024, 1, 1)


def stoppable_trial() -> Any:
    trial = testing.trial("t1", TrialConditionType.CREATED, TrialConditionType.RUNNING)
    assert trial.spec is not None
    trial.spec.early_stopping_rules = [EarlyStoppingRule(name="loss", value="0.5", comparison="greater", start_step=1)]
    return trial


@pytest.mark.parametrize("job_condition", ["Complete", "Failed"])
def test_a_finished_push_job_whose_logs_hold_the_marker_is_early_stopped(job_condition: str) -> None:
    trial = stoppable_trial()
    job = {"metadata": {"name": "t1"}, "status": {"conditions": [{"type": job_condition, "status": "True"}]}}
    plan = trial_reconcile.plan_trial(trial, job, now=NOW)
    assert plan.read_observation  # a failed job too: it may have been stopped after its verdict
    rows = [("2024-01-01T00:00:00Z", "loss", "0.9"), ("2024-01-01T00:00:00Z", early_stopping.MARKER_METRIC, "1")]
    update = trial_reconcile.conclude(trial, plan, rows, now=NOW)
    held = [(c.type, c.status, c.reason) for c in update.status.conditions or []]
    assert held[-1] == ("EarlyStopped", "True", "TrialEarlyStopped")
    assert held[1][:2] == ("Running", "False")
    assert update.status.observation is not None  # what it reported before stopping is kept
    assert [e.reason for e in update.events] == ["TrialEarlyStopped"]
    again = trial_reconcile.plan_trial(trial.model_copy(update={"status": update.status}), job, now=NOW)
    assert again.job_action == trial_reconcile.JobAction.DELETE  # completed: nothing more to decide


def test_without_the_marker_a_stoppable_trial_ends_as_usual() -> None:
    trial = stoppable_trial()
    failed = {"metadata": {"name": "t1"}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    plan = trial_reconcile.plan_trial(trial, failed, now=NOW)
    update = trial_reconcile.conclude(trial, plan, [("2024-01-01T00:00:00Z", "loss", "0.9")], now=NOW)
    assert [c.type for c in update.status.conditions or [] if c.status == "True"][-1] == "Failed"
