import enum
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from katib_core import constants
from katib_core.models import (
    CollectorSpec,
    Experiment,
    ExperimentSpec,
    FeasibleSpace,
    KatibModel,
    MetricsCollectorSpec,
    ObjectiveSpec,
    ParameterSpec,
    Suggestion,
    Trial,
)

TESTDATA = Path(__file__).parent / "testdata"
CASES = {
    "random-experiment.yaml": Experiment,
    "medianstop-file-collector.yaml": Experiment,
    "nas-experiment.yaml": Experiment,
    "experiment-with-status.yaml": Experiment,
    "tune-push-experiment.json": Experiment,
    "trial.yaml": Trial,
    "suggestion.yaml": Suggestion,
}


def load(name: str) -> dict[str, Any]:
    text = (TESTDATA / name).read_text()
    data: dict[str, Any] = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    return data


@pytest.mark.parametrize(("name", "model"), CASES.items())
def test_katib_objects_round_trip_unchanged(name: str, model: type[KatibModel]) -> None:
    data = load(name)
    parsed = model.from_api(data)
    assert parsed.to_api() == data
    assert json.loads(json.dumps(parsed.to_api())) == data  # plain JSON types only
    assert model.from_api(parsed.to_api()) == parsed


def test_fields_are_typed_and_snake_case() -> None:
    experiment = Experiment.from_api(load("experiment-with-status.yaml"))
    assert experiment.spec is not None
    assert experiment.spec.objective is not None
    assert experiment.spec.objective.goal == 0.001
    assert experiment.spec.objective.metric_strategies is not None
    assert [s.value for s in experiment.spec.objective.metric_strategies] == ["min", "min"]
    assert experiment.spec.metrics_collector_spec == MetricsCollectorSpec(collector=CollectorSpec(kind="Push"))
    assert experiment.spec.trial_template is not None
    assert experiment.spec.trial_template.trial_parameters is not None
    assert experiment.spec.trial_template.trial_parameters[0].reference == "lr"
    status = experiment.status
    assert status is not None
    assert status.current_optimal_trial is not None
    assert status.current_optimal_trial.best_trial_name == "push-experiment-x7k2p9qz"
    assert status.trial_metrics_unavailable == 1
    assert status.has_condition(constants.ExperimentConditionType.SUCCEEDED)
    assert not status.has_condition("Running")  # present, but False
    assert not status.has_condition("Failed")  # absent


def test_unknown_fields_are_kept_at_every_level() -> None:
    data = load("random-experiment.yaml")
    data["futureTopLevel"] = {"x": 1}
    data["spec"]["objective"]["someNewKnob"] = [1, 2]
    data["spec"]["parameters"][0]["feasibleSpace"]["precision"] = "3"
    data["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["nodeSelector"] = {"gpu": "a100"}
    parsed = Experiment.from_api(data)
    assert parsed.to_api() == data
    assert parsed.model_extra == {"futureTopLevel": {"x": 1}}


def test_trial_and_suggestion_fields() -> None:
    trial = Trial.from_api(load("trial.yaml"))
    assert trial.spec is not None
    assert trial.spec.early_stopping_rules is not None
    assert trial.spec.early_stopping_rules[0].start_step == 4
    assert trial.spec.run_spec is not None
    assert trial.spec.run_spec["kind"] == "Job"
    assert trial.status is not None
    assert trial.status.has_condition(constants.TrialConditionType.SUCCEEDED)
    assert trial.metadata is not None
    assert trial.metadata.labels == {constants.EXPERIMENT_LABEL: "push-experiment"}
    suggestion = Suggestion.from_api(load("suggestion.yaml"))
    assert suggestion.status is not None
    assert suggestion.status.suggestions is not None
    assert suggestion.status.suggestions[0].labels == {"suggestion-label": "value"}


def test_models_build_by_field_name_and_dump_camel_case() -> None:
    experiment = Experiment(
        spec=ExperimentSpec(
            objective=ObjectiveSpec(type=constants.ObjectiveType.MINIMIZE, objective_metric_name="loss"),
            max_trial_count=3,
            parameters=[
                ParameterSpec(
                    name="lr",
                    parameter_type=constants.ParameterType.DOUBLE,
                    feasible_space=FeasibleSpace(min="0.1", max="0.2"),
                )
            ],
        )
    )
    assert experiment.to_api() == {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "maxTrialCount": 3,
            "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.2"}}],
        },
    }
    assert not isinstance(experiment.to_api()["spec"]["objective"]["type"], enum.Enum)


def test_false_and_empty_values_given_are_kept() -> None:
    data = {"spec": {"objective": {"additionalMetricNames": []}, "trialTemplate": {"retain": False}}}
    assert Experiment.from_api(data).to_api() == {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", **data}


def test_wrong_types_are_rejected_with_the_field() -> None:
    with pytest.raises(ValueError, match="maxTrialCount"):
        Experiment.from_api({"spec": {"maxTrialCount": "many"}})
