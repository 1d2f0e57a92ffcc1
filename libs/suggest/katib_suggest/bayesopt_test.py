import math
import statistics
from collections.abc import Callable
from typing import Any

import pytest

from katib_core import testing
from katib_core.constants import TrialConditionType
from katib_core.errors import ValidationError
from katib_core.models import Experiment, ParameterAssignment, TrialAssignment
from katib_core.suggestions import SuggestionRequest, SuggestionTrial
from katib_suggest import Suggester, validate_algorithm_settings

Values = dict[str, str]
BRANIN_SPACE: list[dict[str, Any]] = [
    {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-5", "max": "10"}},
    {"name": "y", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "15"}},
]
MIXED: list[dict[str, Any]] = [
    {
        "name": "lr",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.001", "max": "0.1", "distribution": "logUniform"},
    },
    {"name": "layers", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "9", "step": "2"}},
    {
        "name": "units",
        "parameterType": "int",
        "feasibleSpace": {"min": "8", "max": "512", "distribution": "logUniform"},
    },
    {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam", "rmsprop"]}},
    {"name": "drop", "parameterType": "discrete", "feasibleSpace": {"list": ["0.5", "0.1", "0.25"]}},
    {"name": "mom", "parameterType": "double", "feasibleSpace": {"min": "0.5", "max": "0.9", "step": "0.1"}},
    {
        "name": "wd",
        "parameterType": "double",
        "feasibleSpace": {"min": "1e-5", "max": "1e-1", "distribution": "logNormal"},
    },
    {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "10", "max": "70", "distribution": "normal"}},
]


def branin(v: Values) -> float:
    x, y = float(v["x"]), float(v["y"])
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10  # minimum 0.397887


def mixed_loss(v: Values) -> float:
    return (
        (math.log10(float(v["lr"])) + 2) ** 2
        + abs(int(v["layers"]) - 5)
        + {"sgd": 1.0, "adam": 0.0, "rmsprop": 0.5}[v["opt"]]
        + float(v["drop"])
    )


def experiment(parameters: list[dict[str, Any]], objective_type: str = "minimize", **settings: str) -> Experiment:
    return testing.experiment(
        algorithm="bayesianoptimization",
        parameters=parameters,
        settings=settings or None,
        objective_type=objective_type,
        max_trials=100,
    )


def ask(exp: Experiment, issued: list[TrialAssignment], trials: list[SuggestionTrial], count: int) -> list[Values]:
    reply = Suggester().suggest(SuggestionRequest(exp, tuple(trials), tuple(issued), count))
    return [{a.name or "": a.value or "" for a in assignment} for assignment in reply.assignments]


def run(
    exp: Experiment, loss: Callable[[Values], float], budget: int, batch: int = 1, sign: float = 1.0
) -> list[tuple[Values, float]]:
    """Ask in batches; each batch is finished (its loss reported) before the next is asked."""
    issued: list[TrialAssignment] = []
    trials: list[SuggestionTrial] = []
    results = []
    while len(issued) < budget:
        for values in ask(exp, issued, trials, min(batch, budget - len(issued))):
            name = f"t{len(issued)}"
            pairs = tuple(values.items())
            issued.append(TrialAssignment(name=name, parameter_assignments=[_assignment(n, v) for n, v in pairs]))
            value = loss(values)
            trials.append(SuggestionTrial(name, pairs, TrialConditionType.SUCCEEDED, (("loss", str(sign * value)),)))
            results.append((values, value))
    return results


def _assignment(name: str, value: str) -> ParameterAssignment:
    return ParameterAssignment(name=name, value=value)


def finished(
    pairs: list[tuple[Values, float]], condition: str = TrialConditionType.SUCCEEDED
) -> tuple[list[TrialAssignment], list[SuggestionTrial]]:
    issued, trials = [], []
    for index, (values, value) in enumerate(pairs):
        name = f"t{index}"
        issued.append(TrialAssignment(name=name, parameter_assignments=[_assignment(n, v) for n, v in values.items()]))
        trials.append(SuggestionTrial(name, tuple(values.items()), condition, (("loss", str(value)),)))
    return issued, trials


def test_answers_depend_only_on_the_seed_and_the_history() -> None:
    exp = experiment(BRANIN_SPACE, random_state="3", n_initial_points="4")
    first = run(exp, branin, budget=8, batch=2)
    again = run(exp, branin, budget=8, batch=2)
    assert first == again
    other = run(experiment(BRANIN_SPACE, random_state="4", n_initial_points="4"), branin, budget=8, batch=2)
    assert [v for v, _ in other] != [v for v, _ in first]
    # the next model-based batch, asked twice of fresh suggesters
    issued, trials = finished(first)
    assert ask(exp, issued, trials, 3) == ask(exp, issued, trials, 3)


def test_a_batch_and_the_running_trials_are_not_asked_twice() -> None:
    exp = experiment(BRANIN_SPACE, random_state="1", n_initial_points="6", acq_func="EI")
    issued, trials = finished(run(exp, branin, budget=8))
    batch = ask(exp, issued, trials, 5)
    points = [(float(v["x"]), float(v["y"])) for v in batch]
    assert len(set(points)) == 5
    spread = min(math.dist(a, b) for i, a in enumerate(points) for b in points[i + 1 :])
    assert spread > 0.1  # constant liar: not five copies of the EI optimum
    # Asked again with the first two issued and running: they are not proposed again.
    running = [
        TrialAssignment(name=f"r{i}", parameter_assignments=[_assignment(n, v) for n, v in batch[i].items()])
        for i in range(2)
    ]
    later = ask(exp, issued + running, trials, 1)[0]
    assert all(math.dist((float(later["x"]), float(later["y"])), p) > 1e-6 for p in points[:2])


def test_failed_and_valueless_trials_are_left_out() -> None:
    exp = experiment(BRANIN_SPACE, random_state="2", n_initial_points="2")
    pairs = run(exp, branin, budget=4)
    issued, failed = finished(pairs, TrialConditionType.FAILED)
    # Nothing observed: still random, and still deterministic.
    assert ask(exp, issued, failed, 2) == ask(exp, issued, failed, 2)
    valueless = [SuggestionTrial(t.name, t.assignments, TrialConditionType.SUCCEEDED, ()) for t in failed]
    assert ask(exp, issued, valueless, 2) == ask(exp, issued, failed, 2)
    _, good = finished(pairs)
    assert ask(exp, issued, good, 2) != ask(exp, issued, failed, 2)


def test_it_maximizes_when_asked_to() -> None:
    one = [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}]
    exp = experiment(one, objective_type="maximize", random_state="0", n_initial_points="4", acq_func="EI")
    results = run(exp, lambda v: (float(v["x"]) - 0.3) ** 2, budget=12, sign=-1.0)
    assert abs(float(results[-1][0]["x"]) - 0.3) < 0.05


def median_best(exp_for: Callable[[int], Experiment], budget: int, seeds: range) -> float:
    return statistics.median(min(v for _, v in run(exp_for(seed), branin, budget)) for seed in seeds)


def test_beats_random_search_on_branin() -> None:
    budget, seeds = 22, range(3)
    ours = median_best(lambda s: experiment(BRANIN_SPACE, random_state=str(s), n_initial_points="8"), budget, seeds)
    rand = median_best(lambda s: experiment(BRANIN_SPACE, random_state=str(s), n_initial_points="99"), budget, seeds)
    assert ours < 1.0 < rand, (ours, rand)


@pytest.mark.parametrize(
    "settings",
    [
        {"base_estimator": "GP", "acq_func": "gp_hedge", "acq_optimizer": "lbfgs"},
        {"base_estimator": "GP", "acq_func": "LCB", "acq_optimizer": "sampling"},
        {"base_estimator": "GP", "acq_func": "PIps"},
        {"base_estimator": "RF", "acq_func": "EI"},
        {"base_estimator": "ET", "acq_func": "gp_hedge", "acq_optimizer": "sampling"},
        {"base_estimator": "GBRT", "acq_func": "PI", "acq_optimizer": "auto"},
        {"base_estimator": "GP", "acq_func": "EIps", "n_initial_points": "0"},
    ],
)
def test_every_setting_runs_in_a_mixed_space(settings: dict[str, str]) -> None:
    exp = experiment(MIXED, **({"random_state": "5", "n_initial_points": "5"} | settings))
    validate_algorithm_settings(exp)
    results = run(exp, mixed_loss, budget=11, batch=3)
    assert len(results) == 11
    for values, _ in results:
        assert_feasible(values)
    # The model-based points are not copies of each other.
    start = int(settings.get("n_initial_points", "5"))
    assert len({tuple(v.items()) for v, _ in results[start:]}) == len(results) - start


def assert_feasible(v: Values) -> None:
    assert 0.001 <= float(v["lr"]) <= 0.1
    assert v["layers"] in {"1", "3", "5", "7", "9"}
    assert 8 <= int(v["units"]) <= 512
    assert v["units"] == str(int(v["units"]))
    assert v["opt"] in {"sgd", "adam", "rmsprop"}
    assert v["drop"] in {"0.5", "0.1", "0.25"}
    assert v["mom"] in {"0.5", "0.6", "0.7", "0.8", "0.9"}
    assert 1e-5 * 0.999 <= float(v["wd"]) <= 1e-1 * 1.001  # normal parameters: within ±3 sigma
    assert 10 <= int(v["n"]) <= 70
    assert v["n"] == str(int(v["n"]))


def test_assignments_round_trip_as_strings() -> None:
    exp = experiment(MIXED, random_state="9", n_initial_points="30")
    values = ask(exp, [], [], 30)
    for v in values:
        assert_feasible(v)
    assert {v["opt"] for v in values} == {"sgd", "adam", "rmsprop"}
    assert {v["drop"] for v in values} == {"0.5", "0.1", "0.25"}
    # What we issued reads back as the same point: told as history, every trial is an observation.
    issued, trials = finished([(v, mixed_loss(v)) for v in values])
    modelled = ask(experiment(MIXED, random_state="9", n_initial_points="0", acq_func="EI"), issued, trials, 1)
    assert_feasible(modelled[0])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"base_estimator": "SVR"}, "base_estimator SVR is not supported"),
        ({"acq_func": "UCB"}, "acq_func UCB is not supported"),
        ({"acq_optimizer": "adam"}, "acq_optimizer adam is not supported"),
        ({"n_initial_points": "-1"}, "greater than or equal to zero"),
        ({"n_initial_points": "ten"}, "not an integer"),
        ({"random_state": "-3"}, "greater than or equal to zero"),
        ({"kappa": "1.96"}, r"unknown setting 'kappa'"),
        ({"base_estimator": "RF", "acq_optimizer": "lbfgs"}, "lbfgs needs gradients"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        validate_algorithm_settings(experiment(BRANIN_SPACE, **settings))
    assert caught.value.field.startswith("spec.algorithm.algorithmSettings")
