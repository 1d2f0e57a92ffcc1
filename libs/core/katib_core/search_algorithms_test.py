"""What ``search_algorithms.check`` admits for hyperband, pbt and bayesianoptimization (Katib v0.19's
ValidateAlgorithmSettings)."""

from __future__ import annotations

from typing import Any

import pytest

from katib_core import search_algorithms, testing
from katib_core.errors import ValidationError

EPOCHS: dict[str, Any] = {"name": "epochs", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "1"}}
LR: dict[str, Any] = {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.05"}}
OPT: dict[str, Any] = {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b"]}}


def refusal(algorithm: str, settings: dict[str, str], *, parallel: int | None = 9, **kwargs: Any) -> str:
    experiment = testing.experiment(
        algorithm=algorithm, settings=settings, parallel=parallel, parameters=[LR, OPT, EPOCHS], **kwargs
    )
    with pytest.raises(ValidationError) as refused:
        search_algorithms.check(experiment)
    return str(refused.value)


def hyperband(**settings: str) -> dict[str, str]:
    return {"resource_name": "epochs", "r_l": "9", **settings}


def test_katibs_hyperband_example_is_admitted() -> None:
    experiment = testing.experiment(
        algorithm="hyperband",
        settings={"resource_name": "epochs", "eta": "2", "r_l": "2"},
        parallel=2,
        max_trials=2,
        parameters=[LR, EPOCHS],
    )
    parsed = search_algorithms.check(experiment)
    assert (parsed.resource_name, parsed.eta, parsed.r_l) == ("epochs", 2, 2.0)


@pytest.mark.parametrize(
    ("settings", "parallel", "field", "saying"),
    [
        ({"resource_name": "epochs"}, 9, "spec.algorithm.algorithmSettings.r_l", "must be set"),
        ({"r_l": "9"}, 9, "spec.algorithm.algorithmSettings.resource_name", "must be set"),
        (hyperband(), 8, "spec.parallelTrialCount", "not less than 9"),
        (hyperband(), None, "spec.parallelTrialCount", "not less than 9"),  # Katib's default is 3
        (hyperband(eta="2", r_l="16"), 15, "spec.parallelTrialCount", "not less than 16"),
        (hyperband(eta="10", r_l="1000"), 999, "spec.parallelTrialCount", "not less than 1000"),
        (hyperband(resource_name="batch"), 9, "spec.algorithm.algorithmSettings.resource_name", "must be one of"),
        (hyperband(resource_name="opt"), 9, "spec.algorithm.algorithmSettings.resource_name", "int or double"),
        (hyperband(eta="1"), 9, "spec.algorithm.algorithmSettings.eta", "at least 2"),
        (hyperband(eta="2.5"), 9, "spec.algorithm.algorithmSettings.eta", "integer"),
        (hyperband(eta="x"), 9, "spec.algorithm.algorithmSettings.eta", "not a number"),
        (hyperband(r_l="0"), 9, "spec.algorithm.algorithmSettings.r_l", "at least 1"),
        (hyperband(r_l="-3"), 9, "spec.algorithm.algorithmSettings.r_l", "at least 1"),
        (hyperband(current_s="x"), 9, "spec.algorithm.algorithmSettings.current_s", "not a number"),
        (hyperband(foo="1"), 9, "spec.algorithm.algorithmSettings[2].name", "unknown setting"),
    ],
)
def test_hyperband_refusals_name_the_field(
    settings: dict[str, str], parallel: int | None, field: str, saying: str
) -> None:
    message = refusal("hyperband", settings, parallel=parallel)
    assert message.startswith(f"{field}: "), message
    assert saying in message


def test_hyperband_accepts_its_state_settings_and_ignores_them() -> None:
    state = {"current_s": "1", "current_i": "0", "n": "5", "r": "3.0", "evaluating_trials": "0", "s_max": "2"}
    experiment = testing.experiment(
        algorithm="hyperband",
        settings={**hyperband(eta="3.0"), **state, "b_l": "27"},
        parallel=9,
        parameters=[LR, EPOCHS],
    )
    parsed = search_algorithms.check(experiment)
    assert (parsed.eta, parsed.r_l) == (3, 9.0)


def test_hyperband_double_resource_and_exact_parallel() -> None:
    steps = {"name": "steps", "parameterType": "double", "feasibleSpace": {"min": "1", "max": "100"}}
    experiment = testing.experiment(
        algorithm="hyperband", settings={"resource_name": "steps", "r_l": "27"}, parallel=27, parameters=[LR, steps]
    )
    assert search_algorithms.check(experiment).r_l == 27.0


PBT = {"suggestion_trial_dir": "/var/log/katib/checkpoints/", "n_population": "40", "truncation_threshold": "0.2"}


def test_katibs_pbt_example_is_admitted() -> None:
    experiment = testing.experiment(algorithm="pbt", settings=PBT, parallel=2, max_trials=2, parameters=[LR])
    parsed = search_algorithms.check(experiment)
    assert (parsed.suggestion_trial_dir, parsed.n_population, parsed.truncation_threshold) == (
        "/var/log/katib/checkpoints/",
        40,
        0.2,
    )
    assert parsed.resample_probability is None


@pytest.mark.parametrize(
    ("settings", "field", "saying"),
    [
        ({"n_population": "40"}, "spec.algorithm.algorithmSettings", "suggestion_trial_dir, truncation_threshold"),
        ({**PBT, "n_population": "4"}, "spec.algorithm.algorithmSettings.n_population", ">= 5"),
        ({**PBT, "n_population": "4.5"}, "spec.algorithm.algorithmSettings.n_population", "not an integer"),
        ({**PBT, "truncation_threshold": "1.5"}, "spec.algorithm.algorithmSettings.truncation_threshold", "between 0"),
        ({**PBT, "resample_probability": "-0.1"}, "spec.algorithm.algorithmSettings.resample_probability", "between"),
        ({**PBT, "suggestion_trial_dir": ""}, "spec.algorithm.algorithmSettings.suggestion_trial_dir", "empty"),
        ({**PBT, "eta": "3"}, "spec.algorithm.algorithmSettings[3].name", "unknown setting"),
    ],
)
def test_pbt_refusals_name_the_field(settings: dict[str, str], field: str, saying: str) -> None:
    message = refusal("pbt", settings)
    assert message.startswith(f"{field}: "), message
    assert saying in message


@pytest.mark.parametrize(("text", "expected"), [("0.5", 0.5), ("0", 0.0), ("1", 1.0), ("None", None), ("", None)])
def test_pbt_resample_probability(text: str, expected: float | None) -> None:
    experiment = testing.experiment(
        algorithm="pbt", settings={**PBT, "resample_probability": text}, parameters=[LR, OPT]
    )
    assert search_algorithms.check(experiment).resample_probability == expected


def bayesopt_optimizer(parameters: list[dict[str, Any]], **settings: str) -> str:
    experiment = testing.experiment(algorithm="bayesianoptimization", settings=settings or None, parameters=parameters)
    parsed = search_algorithms.check(experiment)
    return search_algorithms.bayesopt_optimizer(parsed, experiment.spec.parameters if experiment.spec else None)


def test_bayesianoptimization_auto_picks_the_optimizer_as_skopt_does() -> None:
    assert bayesopt_optimizer([LR, OPT]) == "lbfgs"  # a GP has gradients along lr
    assert bayesopt_optimizer([LR], base_estimator="ET") == "sampling"  # trees have none
    assert bayesopt_optimizer([OPT]) == "sampling"  # nothing continuous to follow
    assert bayesopt_optimizer([LR], acq_optimizer="sampling") == "sampling"
    assert bayesopt_optimizer([LR], acq_optimizer="lbfgs") == "lbfgs"


@pytest.mark.parametrize(
    ("parameters", "settings", "saying"),
    [
        ([LR], {"base_estimator": "GBRT", "acq_optimizer": "lbfgs"}, "base_estimator GBRT has no gradients"),
        ([OPT], {"acq_optimizer": "lbfgs"}, "no int or double parameter"),
    ],
)
def test_bayesianoptimization_refuses_lbfgs_without_gradients(
    parameters: list[dict[str, Any]], settings: dict[str, str], saying: str
) -> None:
    experiment = testing.experiment(algorithm="bayesianoptimization", settings=settings, parameters=parameters)
    with pytest.raises(ValidationError, match=saying) as refused:
        search_algorithms.check(experiment)
    assert refused.value.field == "spec.algorithm.algorithmSettings.acq_optimizer"
