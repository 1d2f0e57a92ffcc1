"""Quality of ``bayesianoptimization`` against random search and optuna's TPE, same budget.

    ./pants --no-pantsd run benchmarks:bayesopt-quality -- [--budget 30] [--seeds 7] [--parallel 1]

Each method minimizes two functions ``--seeds`` times with ``--budget`` trials, asked
``--parallel`` at a time, each batch finished before the next is asked:

* Branin (2-D, x in [-5, 10], y in [0, 15]; minimum 0.397887, three optima);
* a noisy quadratic (3-D in [-2, 2]^3, minimum 0 at (0.5, -0.3, 1.0), Gaussian noise sd 0.1 on
  each observation, seeded by seed and trial).

The score is the regret of the trial each method ends up calling best: its true (noise-free)
value minus the minimum. ``bayesianoptimization`` (defaults: GP, gp_hedge, auto, 10 initial
points) and ``random`` run through ``katib_suggest.Suggester`` as an Experiment would; TPE is
``optuna.samplers.TPESampler`` with its defaults, asked and told directly. Printed per function:
each method's median regret (with quartiles), its ratio to random's median, and the time per
suggestion. optuna's ``GPSampler`` is included only if it imports (it needs torch).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from katib_core import testing
from katib_core.constants import TrialConditionType
from katib_core.models import TrialAssignment
from katib_core.suggestions import SuggestionRequest, SuggestionTrial
from katib_suggest import Suggester

Point = dict[str, float]


@dataclass(frozen=True)
class Problem:
    name: str
    bounds: dict[str, tuple[float, float]]
    value: Callable[[Point], float]  # noise-free
    noise: float
    minimum: float


def branin(p: Point) -> float:
    x, y = p["x"], p["y"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


def quadratic(p: Point) -> float:
    return (p["a"] - 0.5) ** 2 + (p["b"] + 0.3) ** 2 + (p["c"] - 1.0) ** 2


PROBLEMS = (
    Problem("branin", {"x": (-5.0, 10.0), "y": (0.0, 15.0)}, branin, 0.0, 0.397887),
    Problem("noisy-quadratic", {k: (-2.0, 2.0) for k in "abc"}, quadratic, 0.1, 0.0),
)


def observe(problem: Problem, point: Point, seed: int, trial: int) -> float:
    noise = random.Random(seed * 100_003 + trial).gauss(0.0, problem.noise) if problem.noise else 0.0
    return problem.value(point) + noise


def regret(problem: Problem, trials: Sequence[tuple[Point, float]]) -> float:
    point, _ = min(trials, key=lambda t: t[1])  # the trial the method would report as best
    return problem.value(point) - problem.minimum


def katib(algorithm: str, problem: Problem, seed: int, budget: int, parallel: int) -> list[tuple[Point, float]]:
    parameters: list[dict[str, Any]] = [
        {"name": n, "parameterType": "double", "feasibleSpace": {"min": str(lo), "max": str(hi)}}
        for n, (lo, hi) in problem.bounds.items()
    ]
    experiment = testing.experiment(
        algorithm=algorithm,
        parameters=parameters,
        settings={"random_state": str(seed * SEED_SPACING)},
        max_trials=budget,
    )
    suggester = Suggester()
    issued: list[TrialAssignment] = []
    history: list[SuggestionTrial] = []
    results: list[tuple[Point, float]] = []
    while len(issued) < budget:
        count = min(parallel, budget - len(issued))
        reply = suggester.suggest(SuggestionRequest(experiment, tuple(history), tuple(issued), count, key="bench"))
        for assignment in reply.assignments:
            name = f"t{len(issued)}"
            point = {a.name or "": float(a.value or "") for a in assignment}
            value = observe(problem, point, seed, len(issued))
            issued.append(TrialAssignment(name=name, parameter_assignments=list(assignment)))
            pairs = tuple((a.name or "", a.value or "") for a in assignment)
            history.append(SuggestionTrial(name, pairs, TrialConditionType.SUCCEEDED, (("loss", repr(value)),)))
            results.append((point, value))
    return results


def optuna_run(
    sampler: optuna.samplers.BaseSampler, problem: Problem, seed: int, budget: int, parallel: int
) -> list[tuple[Point, float]]:
    study = optuna.create_study(sampler=sampler)
    distributions: dict[str, optuna.distributions.BaseDistribution] = {
        n: optuna.distributions.FloatDistribution(lo, hi) for n, (lo, hi) in problem.bounds.items()
    }
    results: list[tuple[Point, float]] = []
    while len(results) < budget:
        asked = [study.ask(distributions) for _ in range(min(parallel, budget - len(results)))]
        for trial in asked:
            point = {n: float(trial.params[n]) for n in problem.bounds}
            value = observe(problem, point, seed, len(results))
            study.tell(trial, value)
            results.append((point, value))
    return results


#: Katib's ``random`` seeds trial i with random_state + i: seeds this far apart never share a draw.
SEED_SPACING = 10_000
Method = Callable[[Problem, int, int, int], list[tuple[Point, float]]]


def methods() -> dict[str, Method]:
    found: dict[str, Method] = {
        "bayesianoptimization": lambda p, s, b, n: katib("bayesianoptimization", p, s, b, n),
        "random": lambda p, s, b, n: katib("random", p, s, b, n),
        "optuna-tpe": lambda p, s, b, n: optuna_run(optuna.samplers.TPESampler(seed=s, constant_liar=True), p, s, b, n),
    }
    if importlib.util.find_spec("torch") is None:  # GPSampler's dependency
        print("optuna GPSampler: skipped (it needs torch, which is not installed)")
    else:
        found["optuna-gp"] = lambda p, s, b, n: optuna_run(optuna.samplers.GPSampler(seed=s), p, s, b, n)
    return found


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--parallel", type=int, default=1)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = methods()
    print(f"budget {args.budget} trials, {args.seeds} seeds, {args.parallel} at a time; regret of the best trial")
    for problem in PROBLEMS:
        print(f"\n{problem.name}")
        rows = []
        for name, method in table.items():
            started = time.perf_counter()
            regrets = [regret(problem, method(problem, seed, args.budget, args.parallel)) for seed in range(args.seeds)]
            per_trial = (time.perf_counter() - started) / (args.seeds * args.budget)
            rows.append((name, statistics.quantiles(regrets, n=4, method="inclusive"), per_trial))
        base = next(q[1] for name, q, _ in rows if name == "random")
        for name, (q1, median, q3), per_trial in rows:
            ratio = base / median if median > 0 else math.inf
            print(
                f"  {name:21s} median regret {median:8.4f}  quartiles [{q1:.4f}, {q3:.4f}]"
                f"  random/this {ratio:6.1f}x  {per_trial * 1000:6.1f} ms/trial"
            )


if __name__ == "__main__":
    main()
