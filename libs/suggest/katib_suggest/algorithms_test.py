import math
import re
import statistics
from typing import Any

import optuna
import pytest

from katib_core import search_algorithms, suggestions, testing
from katib_core.constants import TrialConditionType
from katib_core.errors import ValidationError
from katib_core.models import ParameterAssignment, TrialAssignment
from katib_core.suggestions import SuggestionRequest, SuggestionTrial
from katib_suggest import ALGORITHMS, Suggester, algorithms, validate_algorithm_settings

PARAMS: list[dict[str, Any]] = [
    {
        "name": "lr",
        "parameterType": "double",
        "feasibleSpace": {"min": "0.001", "max": "0.1", "distribution": "logUniform"},
    },
    {"name": "layers", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "9", "step": "2"}},
    {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam"]}},
    {"name": "drop", "parameterType": "discrete", "feasibleSpace": {"list": ["0.1", "0.5"]}},
]


def run(suggester: Suggester, algorithm: str, rounds: int = 4, batch: int = 2, **settings: str) -> list[dict[str, str]]:
    """Ask in batches, name and 'finish' each assignment with a loss derived from it."""
    experiment = testing.experiment(algorithm=algorithm, parameters=PARAMS, settings=settings or None, max_trials=100)
    issued: list[TrialAssignment] = []
    trials: list[SuggestionTrial] = []
    for _ in range(rounds):
        reply = suggester.suggest(
            SuggestionRequest(
                experiment, tuple(trials), tuple(issued), batch, key=suggestions.experiment_key(experiment)
            )
        )
        for assignment in reply.assignments:
            name = f"t{len(issued)}"
            issued.append(TrialAssignment(name=name, parameter_assignments=list(assignment)))
            values = {a.name: a.value for a in assignment}
            loss = str(float(values["lr"] or 0) * int(values["layers"] or 0))
            trials.append(
                SuggestionTrial(
                    name,
                    tuple((a.name or "", a.value or "") for a in assignment),
                    TrialConditionType.SUCCEEDED,
                    (("loss", loss),),
                )
            )
    return [{a.name or "": a.value or "" for a in i.parameter_assignments or []} for i in issued]


@pytest.mark.parametrize("algorithm", ["random", "tpe", "multivariate-tpe", "cmaes", "sobol"])
def test_assignments_stay_in_the_search_space(algorithm: str) -> None:
    for values in run(Suggester(), algorithm, random_state="7"):
        assert 0.001 <= float(values["lr"]) <= 0.1
        assert values["layers"] in {"1", "3", "5", "7", "9"}
        assert values["opt"] in {"sgd", "adam"}
        assert values["drop"] in {"0.1", "0.5"}


@pytest.mark.parametrize("algorithm", ["random", "tpe", "multivariate-tpe", "cmaes", "sobol"])
def test_a_seed_makes_answers_reproducible_even_after_a_restart(algorithm: str) -> None:
    first = run(Suggester(), algorithm, random_state="3")
    assert run(Suggester(), algorithm, random_state="3") == first

    class Forgetful(Suggester):  # a controller restart before every call: the study is rebuilt each time
        def suggest(self, request: SuggestionRequest) -> Any:
            self.forget(request.key)
            return super().suggest(request)

    assert run(Forgetful(), algorithm, random_state="3") == first


@pytest.mark.parametrize("algorithm", ["random", "tpe"])
def test_neighbouring_seeds_do_not_share_their_draws(algorithm: str) -> None:
    # Seeding each batch with random_state + issued made seed 4 repeat seed 3's points, one batch later.
    three = [v["lr"] for v in run(Suggester(), algorithm, rounds=3, batch=1, random_state="3")]
    four = [v["lr"] for v in run(Suggester(), algorithm, rounds=3, batch=1, random_state="4")]
    assert not set(three) & set(four)


def test_sobol_never_repeats_a_point_across_rebuilds() -> None:
    class Forgetful(Suggester):
        def suggest(self, request: SuggestionRequest) -> Any:
            self.forget(request.key)
            return super().suggest(request)

    points = [tuple(sorted(v.items())) for v in run(Forgetful(), "sobol", rounds=6)]
    assert len(set(points)) == len(points)


def test_grid_walks_every_point_once_then_ends() -> None:
    parameters = [
        {"name": "a", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "3"}},
        {"name": "b", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.3", "step": "0.1"}},
    ]
    experiment = testing.experiment(algorithm="grid", parameters=parameters, max_trials=9)
    suggester = Suggester()
    issued: list[TrialAssignment] = []
    exhausted = False
    while not exhausted:
        reply = suggester.suggest(SuggestionRequest(experiment, (), tuple(issued), 4))
        issued += [TrialAssignment(name=f"t{len(issued)}", parameter_assignments=list(a)) for a in reply.assignments]
        exhausted = reply.exhausted
    points = [tuple(a.value for a in i.parameter_assignments or []) for i in issued]
    assert len(points) == 9 == len(set(points))
    assert ("1", "0.1") in points
    assert ("3", "0.3") in points


@pytest.mark.parametrize(
    ("algorithm", "settings", "message"),
    [
        ("bayes", {}, "unknown algorithm name"),
        ("random", {"n_startup_trials": "3"}, "unknown setting"),
        ("tpe", {"n_startup_trials": "-1"}, "greater than or equal to zero"),
        ("tpe", {"n_ei_candidates": "many"}, "not an integer"),
        ("cmaes", {"restart_strategy": "sometimes"}, "restart_strategy"),
        ("cmaes", {"sigma": "0"}, "greater than zero"),
        ("sobol", {"sigma": "1"}, "unknown setting"),
    ],
)
def test_bad_settings_are_clear_errors(algorithm: str, settings: dict[str, str], message: str) -> None:
    experiment = testing.experiment(algorithm=algorithm, settings=settings, parameters=PARAMS)
    with pytest.raises(ValidationError, match=message):
        validate_algorithm_settings(experiment)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_known_settings_validate(algorithm: str) -> None:
    settings = {"random_state": "1"}
    if algorithm in ("tpe", "multivariate-tpe"):
        settings |= {"n_startup_trials": "5", "n_ei_candidates": "24"}
    if algorithm == "cmaes":
        settings |= {"sigma": "0.5", "restart_strategy": "ipop"}
    if algorithm == "hyperband":
        settings |= {"resource_name": "layers", "r_l": "2"}
    if algorithm == "pbt":
        settings |= {"suggestion_trial_dir": "/tmp", "n_population": "5", "truncation_threshold": "0.2"}
    parameters = PARAMS
    if algorithm == "grid":
        parameters = [
            {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.9", "step": "0.1"}}
        ]
    validate_algorithm_settings(
        testing.experiment(algorithm=algorithm, settings=settings, parameters=parameters, max_trials=4)
    )


def test_search_space_rules() -> None:
    one_number = [PARAMS[0], PARAMS[2]]
    with pytest.raises(ValidationError, match="two or more"):
        validate_algorithm_settings(testing.experiment(algorithm="cmaes", parameters=one_number))
    with pytest.raises(ValidationError, match="needs a step"):
        validate_algorithm_settings(testing.experiment(algorithm="grid", parameters=PARAMS))
    small = [{"name": "a", "parameterType": "categorical", "feasibleSpace": {"list": ["x", "y"]}}]
    with pytest.raises(ValidationError, match="all possible search combinations: 2"):
        validate_algorithm_settings(testing.experiment(algorithm="grid", parameters=small, max_trials=3))
    normal = [
        {"name": "a", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1", "distribution": "normal"}}
    ]
    validate_algorithm_settings(testing.experiment(algorithm="random", parameters=normal))
    with pytest.raises(ValidationError, match="cannot be laid on a grid"):
        validate_algorithm_settings(testing.experiment(algorithm="grid", parameters=normal))
    log_normal = [
        {"name": "a", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1", "distribution": "logNormal"}}
    ]
    with pytest.raises(ValidationError, match="logNormal needs min > 0"):
        validate_algorithm_settings(testing.experiment(algorithm="tpe", parameters=log_normal))


NORMALS: list[dict[str, Any]] = [
    {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "-3", "max": "9", "distribution": "normal"}},
    {
        "name": "lr",
        "parameterType": "double",
        "feasibleSpace": {"min": "1e-4", "max": "1", "distribution": "logNormal"},
    },
    {"name": "n", "parameterType": "int", "feasibleSpace": {"min": "10", "max": "70", "distribution": "normal"}},
    {
        "name": "q",
        "parameterType": "double",
        "feasibleSpace": {"min": "0", "max": "1.2", "step": "0.05", "distribution": "normal"},
    },
]


def ask(
    suggester: Suggester, experiment: Any, count: int, issued: tuple[TrialAssignment, ...] = ()
) -> list[dict[str, str]]:
    reply = suggester.suggest(
        SuggestionRequest(experiment, (), issued, count, key=suggestions.experiment_key(experiment))
    )
    return [{a.name or "": a.value or "" for a in assignment} for assignment in reply.assignments]


@pytest.mark.parametrize("algorithm", ["random", "tpe", "multivariate-tpe", "sobol"])  # their priors: no results told
def test_normal_and_log_normal_parameters_follow_katibs_mu_and_sigma(algorithm: str) -> None:
    # Katib's hyperopt service: mu = (min + max) / 2, sigma = (max - min) / 6 (of log x for logNormal).
    experiment = testing.experiment(
        algorithm=algorithm, parameters=NORMALS, settings={"random_state": "3"}, max_trials=900
    )
    drawn = ask(Suggester(), experiment, 400)
    xs = [float(v["x"]) for v in drawn]
    logs = [math.log(float(v["lr"])) for v in drawn]
    assert abs(statistics.mean(xs) - 3) < 0.3
    assert abs(statistics.stdev(xs) - 2) < 0.3
    assert abs(statistics.mean(logs) - math.log(1e-2)) < 0.3
    assert abs(statistics.stdev(logs) - math.log(1e4) / 6) < 0.3
    assert all(v["n"] == str(int(v["n"])) for v in drawn)  # ints are whole numbers
    assert all(abs(float(v["q"]) / 0.05 - round(float(v["q"]) / 0.05)) < 1e-9 for v in drawn)  # on the step


def test_cmaes_searches_normal_parameters_in_quantile_space() -> None:
    experiment = testing.experiment(
        algorithm="cmaes", parameters=NORMALS, settings={"random_state": "3"}, max_trials=90
    )
    suggester = Suggester()
    issued: list[TrialAssignment] = []
    for _ in range(3):
        for values in ask(suggester, experiment, 6, tuple(issued)):
            assignments = [ParameterAssignment(name=k, value=v) for k, v in values.items()]
            issued.append(TrialAssignment(name=f"t{len(issued)}", parameter_assignments=assignments))
            assert values["n"] == str(int(values["n"]))
            assert float(values["lr"]) > 0
    assert len({tuple((a.name, a.value) for a in i.parameter_assignments or ()) for i in issued}) == 18


def near_seven(algorithm: str, settings: dict[str, str]) -> int:
    """Minimize (x - 7)^2 for 30 sequential trials; how many of the last 20 land in [5.5, 8.5]."""
    experiment = testing.experiment(algorithm=algorithm, parameters=NORMALS[:1], settings=settings, max_trials=60)
    validate_algorithm_settings(experiment)
    suggester = Suggester()
    issued: list[TrialAssignment] = []
    trials: list[SuggestionTrial] = []
    for _ in range(30):
        reply = suggester.suggest(
            SuggestionRequest(experiment, tuple(trials), tuple(issued), 1, key=suggestions.experiment_key(experiment))
        )
        (assignment,) = reply.assignments
        name = f"t{len(issued)}"
        issued.append(TrialAssignment(name=name, parameter_assignments=list(assignment)))
        x = float(assignment[0].value or "")
        trials.append(
            SuggestionTrial(name, (("x", str(x)),), TrialConditionType.SUCCEEDED, (("loss", str((x - 7) ** 2)),))
        )
    late = [float(i.parameter_assignments[0].value or "") for i in issued[-20:]]  # type: ignore[index]
    return sum(5.5 <= x <= 8.5 for x in late)


def test_tpe_takes_katibs_hyperopt_settings_and_learns_with_normal_parameters() -> None:
    # The prior N(3, 2) puts ~10% of draws in [5.5, 8.5]; TPE, told the results, goes there more.
    tpe = near_seven("tpe", {"gamma": "0.3", "prior_weight": "0.8", "n_EI_candidates": "12", "random_state": "5"})
    assert tpe >= 4
    assert tpe > near_seven("random", {"random_state": "5"})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"gamma": "1"}, "gamma: 1.0 should be in the range of (0, 1)"),
        ({"prior_weight": "0"}, "prior_weight: 0.0 should be greater than zero"),
        ({"n_EI_candidates": "0"}, "n_EI_candidates: should be greater than zero"),
        ({"n_EI_candidates": "4", "n_ei_candidates": "4"}, "given twice"),
    ],
)
def test_hyperopt_settings_are_checked_as_katib_checks_them(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        validate_algorithm_settings(testing.experiment(algorithm="tpe", parameters=PARAMS, settings=settings))


def test_tpe_learns_from_told_trials() -> None:
    values = run(Suggester(), "tpe", rounds=15, batch=2, random_state="1", n_startup_trials="4")
    late = values[-10:]
    assert sum(float(v["lr"]) * int(v["layers"]) for v in late) / len(late) < 0.2  # random would average ~0.25


def test_failed_trials_are_told_as_failed() -> None:
    experiment = testing.experiment(algorithm="tpe", parameters=PARAMS)
    suggester = Suggester()
    request = SuggestionRequest(experiment, (), (), 1, key="k")
    first = suggester.suggest(request).assignments[0]
    issued = (TrialAssignment(name="t0", parameter_assignments=list(first)),)
    failed = SuggestionTrial("t0", (), TrialConditionType.FAILED)
    suggester.suggest(SuggestionRequest(experiment, (failed,), issued, 1, key="k"))
    study = suggester._studies["k"].study
    assert study.trials[0].state.name == "FAIL"


def test_tpe_is_independent_and_multivariate_tpe_is_not() -> None:
    # optuna 5's TPESampler is multivariate unless told otherwise; Katib's tpe is per parameter.
    for name, joint in (("tpe", False), ("multivariate-tpe", True)):
        experiment = testing.experiment(algorithm=name)
        assert experiment.spec is not None
        sampler = algorithms._sampler(search_algorithms.parse_settings(experiment.spec.algorithm), 0)
        assert isinstance(sampler, optuna.samplers.TPESampler)
        assert sampler._multivariate is joint
