"""Search quality of every in-process suggestion algorithm against random search and Optuna's equivalent.

    ./pants --no-pantsd run benchmarks:algorithm-quality -- [--budget 30] [--seeds 20] [--model-seeds 5] [--parallel 1]
        [--max-resource 27] [--only tpe,hyperband] [--functions branin]

Functions: Branin (2-D, minimum 0.397887), Hartmann-6 (6-D in [0, 1]^6, minimum -3.32237) and a
noisy quadratic (3-D in [-2, 2]^3, minimum 0, Gaussian noise sd 0.1 on each observation). The
score is the regret of the trial a method reports as best (its lowest observation): that trial's
true, noise-free value minus the minimum.

Single-fidelity algorithms (random, grid, tpe, multivariate-tpe, cmaes, sobol, bayesianoptimization)
get ``--budget`` trials, asked ``--parallel`` at a time through ``katib_suggest.Suggester`` with
the histories the experiment loop builds; each batch finishes before the next is asked. Each is
paired with the Optuna sampler Katib's optuna service would use, asked and told directly, with the
same budget and batches.

Multi-fidelity algorithms (hyperband, pbt) get the same *resource*: the epochs a full hyperband
pass uses (eta 3, r_l = ``--max-resource``). A trial at r epochs observes the function plus
``scale * (1 - r/R) * (1 + z)`` (z standard normal): an offset and noise that vanish at full
resource R, so cheap trials rank configurations imperfectly. Hyperband is paired with Optuna's
RandomSampler + HyperbandPruner (Katib's hyperband draws random configurations too); PBT with
Optuna's TPE at full resource (Optuna has no PBT). A PBT trial trains ``R/3`` epochs on from its
parent's checkpoint (its hyperparameters may change; the function does not remember them). Both are
also compared with random search at full resource with the same number of epochs. A method's score
is the true value of its best trial among those trained to R epochs.

Exit status 1 if any of our algorithms has a worse median than random search on some function.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import math
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from katib_core import suggestions, testing
from katib_core.constants import TrialConditionType
from katib_core.models import Experiment, TrialAssignment
from katib_core.suggestions import SuggestionReply, SuggestionRequest, SuggestionTrial
from katib_suggest import Suggester
from katib_suggest.hyperband import schedule
from katib_suggest.pbt import PARENT_LABEL

Point = dict[str, float]
Result = tuple[Point, float]  # a trial's point and the observation that ranks it

#: random_state = seed * this: far apart, so no two runs share draws whatever the seeding scheme.
SEED_SPACING = 10_000
EPOCHS = "epochs"
ETA = 3


@dataclass(frozen=True)
class Problem:
    name: str
    bounds: dict[str, tuple[float, float]]
    value: Callable[[Point], float]  # noise-free
    noise: float
    minimum: float
    #: the size of the low-resource offset and noise (multi-fidelity only)
    scale: float


def branin(p: Point) -> float:
    x, y = p["x"], p["y"]
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


_H6_ALPHA = (1.0, 1.2, 3.0, 3.2)
_H6_A = (
    (10, 3, 17, 3.5, 1.7, 8),
    (0.05, 10, 17, 0.1, 8, 14),
    (3, 3.5, 1.7, 10, 17, 8),
    (17, 8, 0.05, 10, 0.1, 14),
)
_H6_P = (
    (0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886),
    (0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991),
    (0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650),
    (0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381),
)


def hartmann6(p: Point) -> float:
    x = [p[f"x{i}"] for i in range(6)]
    return -sum(
        alpha * math.exp(-sum(a * (xi - pi) ** 2 for a, xi, pi in zip(row, x, prow, strict=True)))
        for alpha, row, prow in zip(_H6_ALPHA, _H6_A, _H6_P, strict=True)
    )


def quadratic(p: Point) -> float:
    return (p["a"] - 0.5) ** 2 + (p["b"] + 0.3) ** 2 + (p["c"] - 1.0) ** 2


PROBLEMS = (
    Problem("branin", {"x": (-5.0, 10.0), "y": (0.0, 15.0)}, branin, 0.0, 0.397887, 5.0),
    Problem("hartmann6", {f"x{i}": (0.0, 1.0) for i in range(6)}, hartmann6, 0.0, -3.32237, 0.5),
    Problem("noisy-quadratic", {k: (-2.0, 2.0) for k in "abc"}, quadratic, 0.1, 0.0, 0.5),
)


def observe(problem: Problem, point: Point, seed: int, trial: int, fidelity: float = 1.0) -> float:
    """An observation; below full ``fidelity`` (resource fraction) with an offset and noise."""
    rng = random.Random(seed * 100_003 + trial)
    value = problem.value(point) + (rng.gauss(0.0, problem.noise) if problem.noise else 0.0)
    if fidelity < 1.0:
        value += problem.scale * (1.0 - fidelity) * (1.0 + rng.gauss(0.0, 1.0))
    return value


def regret(problem: Problem, trials: Sequence[Result]) -> float:
    point, _ = min(trials, key=lambda t: t[1])  # the trial the method would report as best
    return problem.value(point) - problem.minimum


# --- our algorithms, driven as the experiment loop drives them ---------------------------------


def grid_steps(problem: Problem, budget: int) -> dict[str, float]:
    """The coarsest lattice with at least ``budget`` points (``grid`` needs a step per double)."""
    per_axis = max(2, math.ceil(budget ** (1 / len(problem.bounds)) - 1e-9))
    return {n: (hi - lo) / (per_axis - 1) for n, (lo, hi) in problem.bounds.items()}


def parameters(problem: Problem, *, steps: dict[str, float] | None = None, resource: int = 0) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for n, (lo, hi) in problem.bounds.items():
        space = {"min": repr(lo), "max": repr(hi), **({"step": repr(steps[n])} if steps else {})}
        found.append({"name": n, "parameterType": "double", "feasibleSpace": space})
    if resource:
        found.append({"name": EPOCHS, "parameterType": "int", "feasibleSpace": {"min": "1", "max": str(resource)}})
    return found


@dataclass
class Loop:
    """The experiment loop's side in memory: issued assignments, trial history, returned settings."""

    experiment: Experiment
    suggester: Suggester = field(default_factory=Suggester)
    issued: list[TrialAssignment] = field(default_factory=list)
    history: list[SuggestionTrial] = field(default_factory=list)
    state: list[Any] = field(default_factory=list)

    def ask(self, count: int) -> SuggestionReply:
        """Ask as the loop does: the Experiment overlaid by the settings returned before; names and
        labels recorded as the reply gives them."""
        experiment = self.experiment
        if self.state:
            spec = experiment.spec
            assert spec is not None
            assert spec.algorithm is not None
            merged = suggestions.merge_settings(spec.algorithm.algorithm_settings, self.state)
            algorithm = spec.algorithm.model_copy(update={"algorithm_settings": merged})
            experiment = experiment.model_copy(update={"spec": spec.model_copy(update={"algorithm": algorithm})})
        key = suggestions.experiment_key(self.experiment)
        request = SuggestionRequest(experiment, tuple(self.history), tuple(self.issued), count, key=key)
        reply = self.suggester.suggest(request)
        if reply.algorithm_settings is not None:
            self.state = suggestions.merge_settings(self.state, reply.algorithm_settings)
        for index, assignment in enumerate(reply.assignments):
            name = reply.trial_names[index] if index < len(reply.trial_names) and reply.trial_names[index] else ""
            labels = reply.labels[index] if index < len(reply.labels) else None
            self.issued.append(
                TrialAssignment(
                    name=name or f"t{len(self.issued)}", parameter_assignments=list(assignment), labels=labels
                )
            )
        return reply

    def tell(self, assignment: TrialAssignment, value: float) -> None:
        pairs = tuple((a.name or "", a.value or "") for a in assignment.parameter_assignments or [])
        self.history.append(
            SuggestionTrial(assignment.name or "", pairs, TrialConditionType.SUCCEEDED, (("loss", repr(value)),))
        )


def values(assignment: TrialAssignment) -> dict[str, str]:
    return {a.name or "": a.value or "" for a in assignment.parameter_assignments or []}


def point_of(problem: Problem, assignment: TrialAssignment) -> Point:
    found = values(assignment)
    return {n: float(found[n]) for n in problem.bounds}


def new_experiment(
    problem: Problem, algorithm: str, seed: int, *, settings: dict[str, str] | None = None, **kwargs: Any
) -> Experiment:
    name = f"{problem.name}-{algorithm}-{seed}"
    return testing.experiment(
        name,
        algorithm=algorithm,
        settings={"random_state": str(seed * SEED_SPACING), **(settings or {})},
        **kwargs,
    )


def katib(algorithm: str, problem: Problem, seed: int, budget: int, parallel: int) -> list[Result]:
    """``budget`` trials of a single-fidelity algorithm, ``parallel`` at a time."""
    steps = grid_steps(problem, budget) if algorithm == "grid" else None
    experiment = new_experiment(
        problem, algorithm, seed, parameters=parameters(problem, steps=steps), max_trials=budget, parallel=parallel
    )
    loop = Loop(experiment)
    results: list[Result] = []
    while len(loop.issued) < budget:
        start = len(loop.issued)
        reply = loop.ask(min(parallel, budget - start))
        for assignment in loop.issued[start:]:
            point = point_of(problem, assignment)
            value = observe(problem, point, seed, len(results))
            loop.tell(assignment, value)
            results.append((point, value))
        if reply.exhausted or not reply.assignments:
            break
    return results


def hyperband_run(problem: Problem, seed: int, resource: int, max_resource: int) -> list[Result]:
    """Our hyperband until it is exhausted or ``resource`` epochs are spent; the trials at r_l count."""
    settings = {"resource_name": EPOCHS, "r_l": str(max_resource), "eta": str(ETA)}
    width = schedule(ETA, max_resource)[0].size  # the first rung: the least parallelism admitted
    experiment = new_experiment(
        problem,
        "hyperband",
        seed,
        settings=settings,
        parameters=parameters(problem, resource=max_resource),
        max_trials=10_000,
        parallel=width,
    )
    loop = Loop(experiment)
    spent, results = 0, list[Result]()
    while spent < resource:
        start = len(loop.issued)
        reply = loop.ask(width)
        for assignment in loop.issued[start:]:
            epochs = int(values(assignment)[EPOCHS])
            point = point_of(problem, assignment)
            value = observe(problem, point, seed, len(loop.history), min(1.0, epochs / max_resource))
            loop.tell(assignment, value)
            spent += epochs
            if epochs >= max_resource:
                results.append((point, value))
        if reply.exhausted or not reply.assignments:
            break
    return results


def pbt_run(problem: Problem, seed: int, resource: int, max_resource: int) -> list[Result]:
    """Our PBT, population 10, each trial ``max_resource / 3`` epochs on from its parent's checkpoint."""
    population, step = 10, max(1, max_resource // 3)
    settings = {"suggestion_trial_dir": "/tmp/ckpt", "n_population": str(population), "truncation_threshold": "0.2"}
    experiment = new_experiment(
        problem, "pbt", seed, settings=settings, parameters=parameters(problem), max_trials=10_000, parallel=population
    )
    loop = Loop(experiment)
    trained: dict[str, int] = {}  # epochs behind each trial's checkpoint
    spent, results, best_partial = 0, list[Result](), list[Result]()
    while spent < resource:
        start = len(loop.issued)
        reply = loop.ask(population)
        for assignment in loop.issued[start:]:
            parent = (assignment.labels or {}).get(PARENT_LABEL, "")
            epochs = min(max_resource, trained.get(parent, 0) + step)
            trained[assignment.name or ""] = epochs
            point = point_of(problem, assignment)
            value = observe(problem, point, seed, len(loop.history), epochs / max_resource)
            loop.tell(assignment, value)
            spent += step
            (results if epochs >= max_resource else best_partial).append((point, value))
        if not reply.assignments:
            break
    return results or best_partial


# --- Optuna's side --------------------------------------------------------------------------------


def optuna_run(
    sampler: optuna.samplers.BaseSampler, problem: Problem, seed: int, budget: int, parallel: int
) -> list[Result]:
    study = optuna.create_study(sampler=sampler)
    distributions: dict[str, optuna.distributions.BaseDistribution] = {
        n: optuna.distributions.FloatDistribution(lo, hi) for n, (lo, hi) in problem.bounds.items()
    }
    results: list[Result] = []
    while len(results) < budget:
        asked = [study.ask(distributions) for _ in range(min(parallel, budget - len(results)))]
        for trial in asked:
            point = {n: float(trial.params[n]) for n in problem.bounds}
            value = observe(problem, point, seed, len(results))
            study.tell(trial, value)
            results.append((point, value))
    return results


def optuna_grid(problem: Problem, seed: int, budget: int, parallel: int) -> list[Result]:
    """Optuna's GridSampler on the lattice our ``grid`` gets."""
    steps = grid_steps(problem, budget)
    space = {
        n: [lo + i * steps[n] for i in range(round((hi - lo) / steps[n]) + 1)] for n, (lo, hi) in problem.bounds.items()
    }
    return optuna_run(optuna.samplers.GridSampler(space, seed=seed), problem, seed, budget, parallel)


def optuna_hyperband(problem: Problem, seed: int, resource: int, max_resource: int) -> list[Result]:
    """RandomSampler + HyperbandPruner, epoch by epoch, until ``resource`` epochs are spent."""
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_resource, reduction_factor=ETA)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed * SEED_SPACING), pruner=pruner)
    distributions: dict[str, optuna.distributions.BaseDistribution] = {
        n: optuna.distributions.FloatDistribution(lo, hi) for n, (lo, hi) in problem.bounds.items()
    }
    spent, number, results = 0, 0, []
    while spent < resource:
        trial = study.ask(distributions)
        point = {n: float(trial.params[n]) for n in problem.bounds}
        state, value = optuna.trial.TrialState.COMPLETE, math.inf
        for epoch in range(1, max_resource + 1):
            value = observe(problem, point, seed, number, epoch / max_resource)
            spent += 1
            trial.report(value, epoch)
            if epoch < max_resource and trial.should_prune():
                state = optuna.trial.TrialState.PRUNED
                break
        study.tell(trial, value if state == optuna.trial.TrialState.COMPLETE else None, state=state)
        number += 1
        if state == optuna.trial.TrialState.COMPLETE:
            results.append((point, value))
    return results


def full_resource(method: Callable[..., list[Result]]) -> Callable[[Problem, int, int, int], list[Result]]:
    """A single-fidelity method given ``resource`` epochs: ``resource // R`` trials of R epochs."""
    return lambda p, s, resource, r: method(p, s, max(1, resource // r), 1)


# --- the table ---------------------------------------------------------------------------------------

Run = Callable[[Problem, int, int, int], list[Result]]


@dataclass(frozen=True)
class Pair:
    """One of our algorithms, its Optuna equivalent and what that is."""

    ours: str
    ours_run: Run
    optuna_name: str
    optuna_run: Run
    multi_fidelity: bool = False


def tpe(seed: int, multivariate: bool = False) -> optuna.samplers.BaseSampler:
    """optuna's TPE, independent or multivariate (explicit: optuna 5's default is multivariate)."""
    return optuna.samplers.TPESampler(seed=seed * SEED_SPACING, constant_liar=True, multivariate=multivariate)


def single(algorithm: str, optuna_name: str, sampler: Callable[[int], optuna.samplers.BaseSampler]) -> Pair:
    return Pair(
        algorithm,
        lambda p, s, b, n: katib(algorithm, p, s, b, n),
        optuna_name,
        lambda p, s, b, n: optuna_run(sampler(s), p, s, b, n),
    )


def gp_or_tpe() -> tuple[str, Callable[[int], optuna.samplers.BaseSampler]]:
    """Optuna's GPSampler when torch imports; TPE otherwise."""
    if importlib.util.find_spec("torch") is None:
        return "optuna TPE (GPSampler needs torch)", tpe
    return "optuna GPSampler", lambda s: optuna.samplers.GPSampler(seed=s * SEED_SPACING)


def pairs() -> list[Pair]:
    gp_name, gp = gp_or_tpe()
    return [
        single("random", "optuna RandomSampler", lambda s: optuna.samplers.RandomSampler(seed=s * SEED_SPACING)),
        Pair("grid", lambda p, s, b, n: katib("grid", p, s, b, n), "optuna GridSampler", optuna_grid),
        single("tpe", "optuna TPESampler", tpe),
        single("multivariate-tpe", "optuna TPESampler(multivariate)", lambda s: tpe(s, multivariate=True)),
        single("cmaes", "optuna CmaEsSampler", lambda s: optuna.samplers.CmaEsSampler(seed=s * SEED_SPACING)),
        single(
            "sobol",
            "optuna QMCSampler(sobol)",
            lambda s: optuna.samplers.QMCSampler(scramble=True, seed=s * SEED_SPACING),
        ),
        single("bayesianoptimization", gp_name, gp),
        Pair("hyperband", hyperband_run, "optuna Random + HyperbandPruner", optuna_hyperband, multi_fidelity=True),
        Pair(
            "pbt",
            pbt_run,
            "optuna TPE, full resource",
            full_resource(lambda p, s, b, n: optuna_run(tpe(s), p, s, b, n)),
            True,
        ),
    ]


def hyperband_resource(max_resource: int) -> int:
    """The epochs of one hyperband pass (eta 3, r_l = ``max_resource``): every multi-fidelity budget."""
    return sum(rung.size * int(rung.resource) for rung in schedule(ETA, max_resource))


@dataclass(frozen=True)
class Row:
    name: str
    regrets: list[float]
    seconds_per_trial: float
    trials_per_seed: float

    @property
    def median(self) -> float:
        return statistics.median(self.regrets)


def measure(name: str, run: Run, problem: Problem, seeds: Sequence[int], budget: int, width: int) -> Row:
    started, trials, regrets = time.perf_counter(), 0, []
    for seed in seeds:
        results = run(problem, seed, budget, width)
        trials += len(results)
        regrets.append(regret(problem, results))
    return Row(name, regrets, (time.perf_counter() - started) / max(1, trials), trials / len(seeds))


def ratio(base: float, median: float) -> str:
    return f"{base / median:7.2f}x" if median > 0 else "    inf"


def report(ours: Row, random_row: Row, theirs: Row | None) -> str:
    q1, _, q3 = statistics.quantiles(ours.regrets, n=4, method="inclusive") if len(ours.regrets) > 1 else (0, 0, 0)
    text = (
        f"  {ours.name:34s} median {ours.median:9.4f} [{q1:.4f}, {q3:.4f}]"
        f"  random/this {ratio(random_row.median, ours.median)}"
    )
    if theirs is not None:
        text += f"  optuna/this {ratio(theirs.median, ours.median)}"
    return text + f"  {ours.trials_per_seed:5.1f} scored trials  {ours.seconds_per_trial * 1000:7.1f} ms/trial"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--budget", type=int, default=30, help="trials per single-fidelity run")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--model-seeds", type=int, default=5, help="seeds for bayesianoptimization (~0.5 s a trial)")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--max-resource", type=int, default=27, help="R: epochs of a full-resource trial")
    parser.add_argument("--only", default="", help="comma-separated algorithms (random always runs)")
    parser.add_argument("--functions", default="", help="comma-separated functions")
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # rows as they are measured, also into a file
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # QMCSampler
    chosen = set(filter(None, args.only.split(","))) | {"random"} if args.only else None
    wanted = [p for p in pairs() if chosen is None or p.ours in chosen]
    problems = [p for p in PROBLEMS if not args.functions or p.name in args.functions.split(",")]
    seeds = range(1, args.seeds + 1)
    resource = hyperband_resource(args.max_resource)
    print(
        f"{args.budget} trials, {args.parallel} at a time; multi-fidelity: {resource} epochs (R = {args.max_resource});"
        f" {args.seeds} seeds ({min(args.seeds, args.model_seeds)} for bayesianoptimization);"
        " median regret [quartiles] of the trial each method calls best"
    )
    worse: list[str] = []
    for problem in problems:
        print(f"\n{problem.name}")
        rows: dict[str, tuple[Row, Row | None]] = {}
        for pair in wanted:
            if pair.ours == "grid" and len(problem.bounds) > 3:
                print("  grid: skipped (a lattice of ~budget points in 6-D has 2 values per axis)")
                continue
            size, width = (resource, args.max_resource) if pair.multi_fidelity else (args.budget, args.parallel)
            used = seeds[: args.model_seeds] if pair.ours == "bayesianoptimization" else seeds
            ours = measure(pair.ours, pair.ours_run, problem, used, size, width)
            theirs = measure(pair.optuna_name, pair.optuna_run, problem, used, size, width)
            rows[pair.ours] = (ours, theirs)
        base = rows["random"][0]
        if any(p.multi_fidelity for p in wanted):
            equal = full_resource(lambda p, s, b, n: katib("random", p, s, b, n))
            rows["random@R"] = (
                measure(
                    f"random at R, {resource // args.max_resource} trials",
                    equal,
                    problem,
                    seeds,
                    resource,
                    args.max_resource,
                ),
                None,
            )
        for name, (mine, other) in rows.items():
            paired = next((p for p in wanted if p.ours == name), None)
            against = rows["random@R"][0] if paired is not None and paired.multi_fidelity else base
            print(report(mine, against, other))
            if other is not None:
                print("  " + report(other, against, None).replace("  ", " ", 1))
            if paired is not None and mine.median > against.median:
                worse.append(f"{problem.name}: {name} {mine.median:.4f} > random {against.median:.4f}")
    if worse:
        print("\nworse than random search:\n  " + "\n  ".join(worse))
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
