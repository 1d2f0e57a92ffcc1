"""Local mode's per-trial overhead next to Optuna running the same objective in subprocesses.

    benchmarks/run_local_bench.sh [--trials 100] [--rounds 3]

Both sides run ``--trials`` trials of an objective that returns at once, 2 at a time, each trial
in its own Python process (random search, so neither side pays for a model):

* baseline — ``optuna.create_study().optimize(objective, n_jobs=2)`` where ``objective`` runs
  ``python -c <objective> x`` and parses the value it prints;
* pykatib — ``KatibClient(backend="local").tune(objective, parallel_trial_count=2)`` with Push:
  each trial is its own process, forked from local mode's zygote (pykatib and grpcio already
  imported; docs/local.md#how-trials-start), calling ``report_metrics``, which pushes to the
  in-process DB manager over gRPC; the runner plans with the controllers' logic, persists every
  Trial, reads its observation back and writes its status.

Per-trial overhead = (pykatib wall - baseline wall) * parallelism / trials: the extra slot time a
trial costs. Rounds alternate the two sides (the machine is noisy); medians are printed.
Target (issue 15): pykatib's wall ≤ 1.5x the baseline's, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARALLEL = 2
TARGET_RATIO = 1.5
OBJECTIVE = "import sys; x = float(sys.argv[1]); print((x - 0.3) ** 2)"


def baseline(trials: int, seed: int) -> float:
    """Optuna: a study whose objective runs a Python subprocess; wall seconds."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        done = subprocess.run([sys.executable, "-c", OBJECTIVE, str(x)], capture_output=True, text=True, check=True)
        return float(done.stdout)

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=PARALLEL)
    wall = time.perf_counter() - start
    assert len(study.trials) == trials
    return wall


def push_objective(parameters: dict[str, object]) -> None:
    """The same objective as a pykatib trial: computed, then pushed."""
    import pykatib as katib

    x = float(parameters["x"])  # type: ignore[arg-type]
    katib.report_metrics({"loss": (x - 0.3) ** 2})


def pykatib_local(trials: int, seed: int) -> float:
    """pykatib local mode: tune() to Succeeded; wall seconds."""
    import pykatib as katib
    import pykatib_local.backend  # noqa: F401  (registers backend='local': a pex has no entry points)
    from pykatib.backends import LocalBackendConfig

    with tempfile.TemporaryDirectory() as work:
        client = katib.KatibClient(backend=LocalBackendConfig(workdir=Path(work)))
        start = time.perf_counter()
        client.tune(
            name="overhead",
            objective=push_objective,
            parameters={"x": katib.search.double(-1, 1)},
            objective_metric_name="loss",
            objective_type="minimize",
            algorithm_name="random",
            algorithm_settings={"random_state": seed},
            max_trial_count=trials,
            parallel_trial_count=PARALLEL,
            metrics_collector_config={"kind": "Push"},
        )
        client.wait_for_experiment_condition("overhead", timeout=3600, polling_interval=0.02)
        wall = time.perf_counter() - start
        succeeded = [t for t in client.list_trials("overhead") if "Succeeded" in _true_conditions(t)]
        assert len(succeeded) == trials, f"{len(succeeded)} of {trials} trials succeeded"
        client.delete_experiment("overhead")
        return wall


def _true_conditions(trial: object) -> set[str]:
    status = getattr(trial, "status", None)
    return {c.type for c in (status.conditions or []) if c.status == "True"} if status else set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    optuna_walls, ours = [], []
    for round_ in range(args.rounds):
        optuna_walls.append(baseline(args.trials, seed=round_))
        ours.append(pykatib_local(args.trials, seed=round_))
        print(f"round {round_ + 1}: optuna+subprocess {optuna_walls[-1]:.2f} s, pykatib local {ours[-1]:.2f} s")
    base, mine = statistics.median(optuna_walls), statistics.median(ours)
    per_base = base * PARALLEL / args.trials * 1000
    per_mine = mine * PARALLEL / args.trials * 1000
    overhead = per_mine - per_base
    print(f"{args.trials} trials, {PARALLEL} at a time, median of {args.rounds} rounds")
    print(f"  baseline (optuna study.optimize, subprocess objective): {base:.2f} s  {per_base:.0f} ms slot time/trial")
    print(f"  pykatib local (tune, Push, in-process DB manager):      {mine:.2f} s  {per_mine:.0f} ms slot time/trial")
    verdict = "met" if mine / base <= TARGET_RATIO else "MISSED"
    print(f"  ratio pykatib/baseline: {mine / base:.2f}x (target <= {TARGET_RATIO}x: {verdict})")
    print(f"  overhead per trial: {overhead:.0f} ms of slot time")
    print(f"  per-round ratios: {', '.join(f'{m / b:.2f}x' for m, b in zip(ours, optuna_walls, strict=True))}")


if __name__ == "__main__":
    main()
