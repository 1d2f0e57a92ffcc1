from typing import Any

import pytest

from katib_core import validation
from katib_core.errors import ValidationError
from katib_core.models import Experiment


def experiment(**spec: Any) -> Experiment:
    base: dict[str, Any] = {
        "objective": {"type": "maximize", "objectiveMetricName": "acc"},
        "parameters": [{"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.2"}}],
    }
    base.update(spec)
    return Experiment.from_api({"metadata": {"name": "exp"}, "spec": base})


def param(kind: str, **space: Any) -> list[dict[str, Any]]:
    return [{"name": "p", "parameterType": kind, "feasibleSpace": space}]


def test_a_valid_experiment_passes() -> None:
    validation.check_experiment(experiment())
    validation.check_experiment(experiment(parameters=param("categorical", list=["a"]), maxTrialCount=3))
    validation.check_experiment(experiment(parameters=param("int", min="1", max="1", step="1")))
    validation.check_experiment(experiment(parameters=param("discrete", list=["1", "2.5"])))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"objective": None}, "spec.objective"),
        ({"objective": {"type": "maximise", "objectiveMetricName": "a"}}, "spec.objective.type"),
        ({"objective": {"type": "minimize"}}, "spec.objective.objectiveMetricName"),
        (
            {"objective": {"type": "minimize", "objectiveMetricName": "a", "additionalMetricNames": ["b", "a"]}},
            "spec.objective.additionalMetricNames[1]",
        ),
        ({"parameters": []}, "spec.parameters"),
        ({"parameters": [{"parameterType": "int", "feasibleSpace": {"min": "1"}}]}, "spec.parameters[0].name"),
        ({"parameters": param("float", min="1", max="2")}, "spec.parameters[0].parameterType"),
        ({"parameters": param("int")}, "spec.parameters[0].feasibleSpace"),
        ({"parameters": param("int", min="1.5", max="2")}, "spec.parameters[0].feasibleSpace.min"),
        ({"parameters": param("double", min="0.1", max="x")}, "spec.parameters[0].feasibleSpace.max"),
        ({"parameters": param("double", min="0.1")}, "spec.parameters[0].feasibleSpace.max"),
        ({"parameters": param("double", min="2", max="1")}, "spec.parameters[0].feasibleSpace"),
        ({"parameters": param("double", min="1", max="2", step="0")}, "spec.parameters[0].feasibleSpace.step"),
        ({"parameters": param("double", min="1", max="2", list=["1"])}, "spec.parameters[0].feasibleSpace.list"),
        (
            {"parameters": param("double", min="1", max="2", distribution="gauss")},
            "spec.parameters[0].feasibleSpace.distribution",
        ),
        ({"parameters": param("categorical", distribution="uniform")}, "spec.parameters[0].feasibleSpace.list"),
        ({"parameters": param("categorical", list=["a"], min="1")}, "spec.parameters[0].feasibleSpace.min"),
        ({"parameters": param("discrete", list=["1", "two"])}, "spec.parameters[0].feasibleSpace.list[1]"),
        ({"parameters": param("int", min="1", max="2") * 2}, "spec.parameters[1].name"),
        ({"maxTrialCount": 0}, "spec.maxTrialCount"),
        ({"parallelTrialCount": 0}, "spec.parallelTrialCount"),
        ({"maxFailedTrialCount": -1}, "spec.maxFailedTrialCount"),
        ({"maxTrialCount": 2, "parallelTrialCount": 3}, "spec.parallelTrialCount"),
        ({"maxTrialCount": 2, "maxFailedTrialCount": 3}, "spec.maxFailedTrialCount"),
        ({"nasConfig": {"graphConfig": {"numLayers": 2}}}, "spec.parameters"),
    ],
)
def test_invalid_specs_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.check_experiment(experiment(**changes))
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("exp", True),
        ("a-1", True),
        ("a" * 40, True),
        ("a" * 41, False),
        ("Exp", False),
        ("1exp", False),
        ("exp-", False),
        ("", False),
    ],
)
def test_experiment_names(name: str, ok: bool) -> None:
    if ok:
        assert validation.check_experiment_name(name) == name
    else:
        with pytest.raises(ValidationError, match=r"^metadata\.name: "):
            validation.check_experiment_name(name)


def test_generate_name_is_enough() -> None:
    data = experiment().to_api()
    data["metadata"] = {"generateName": "exp-"}
    validation.check_experiment(Experiment.from_api(data))
    data["metadata"] = {}
    with pytest.raises(ValidationError, match="name or generateName"):
        validation.check_experiment(Experiment.from_api(data))


def test_nas_experiments_need_no_parameters() -> None:
    validation.check_experiment(experiment(parameters=None, nasConfig={"graphConfig": {"numLayers": 2}}))
