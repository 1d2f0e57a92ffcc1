"""Early stopping for Push trials (medianstop), measured in local mode.

    benchmarks/run_early_stopping_bench.sh [--trials 20] [--steps 20]

An experiment of ``--trials`` trials (random search over ``x``, seeded; half the space is bad:
``x >= 0.5`` plateaus at a high loss), 2 at a time, each training ``--steps`` steps and pushing
its loss after every step with ``report_metrics(..., step=)``, stopping when it returns True.
It runs twice in the same process: without ``earlyStopping`` (the baseline) and with Katib's
``medianstop`` (min_trials_required=3, start_step=4). Printed:

* trial-steps run in each, and the share saved (target >= 40%);
* the verdict latency: how long the ``report_metrics`` call that met the rules took (the verdict
  is its return value), p50 and max;
* the stop latency: from the verdict to the Trial showing ``EarlyStopped`` (p50, max; target 5 s);
* wall time of both runs, and whether both found a good trial (x < 0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from katib_core.models import Experiment
from pykatib_local import backend
from pykatib_local.session import LocalSession

TRAIN = """
    import json, os, sys, time, pykatib
    x, steps = float(sys.argv[1]), int(os.environ["STEPS"])
    for step in range(steps):
        time.sleep(0.05)  # one "epoch"
        loss = (0.1 if x < 0.5 else 1.5) + abs(x - 0.25) + 1.0 / (step + 1)
        started = time.time()
        stop = pykatib.report_metrics({"loss": loss}, step=step)
        if stop:
            with open(os.environ["VERDICTS"], "a") as out:
                row = {"trial": os.environ["KATIB_TRIAL_NAME"], "latency": time.time() - started, "at": time.time()}
                out.write(json.dumps(row) + "\\n")
            break
"""


def experiment(name: str, trials: int, *, stopping: bool) -> Experiment:
    spec: dict[str, Any] = {
        "objective": {"type": "minimize", "objectiveMetricName": "loss"},
        "algorithm": {"algorithmName": "random", "algorithmSettings": [{"name": "random_state", "value": "11"}]},
        "parallelTrialCount": 2,
        "maxTrialCount": trials,
        "metricsCollectorSpec": {"collector": {"kind": "Push"}},
        "parameters": [{"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}],
        "trialTemplate": {
            "primaryContainerName": "main",
            "trialParameters": [{"name": "x", "reference": "x"}],
            "trialSpec": {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "main",
                                    "image": "ignored",
                                    "command": ["python", "-c", textwrap.dedent(TRAIN), "${trialParameters.x}"],
                                }
                            ],
                        }
                    }
                },
            },
        },
    }
    if stopping:
        spec["earlyStopping"] = {
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required", "value": "3"},
                {"name": "start_step", "value": "4"},
            ],
        }
    raw = {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": name}, "spec": spec}
    return Experiment.from_api(raw)


def run(session: LocalSession, exp: Experiment) -> tuple[float, dict[str, float]]:
    """Run to the end; wall seconds, and when each trial was first seen EarlyStopped (epoch seconds)."""
    name = exp.metadata.name or ""  # type: ignore[union-attr]
    session.store.create(backend.prepare(exp, "default"))
    seen: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for trial in session.store.list_trials("default", experiment=name):
                conditions = (trial.status.conditions if trial.status else None) or []
                if any(c.type == "EarlyStopped" and c.status == "True" for c in conditions):
                    seen.setdefault(trial.metadata.name or "", time.time())  # type: ignore[union-attr]
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.perf_counter()
    session.run("default", name, stop=threading.Event())
    wall = time.perf_counter() - start
    done.set()
    watcher.join()
    return wall, seen


def trial_steps(session: LocalSession, name: str) -> tuple[int, int, bool]:
    """Trial-steps pushed, trials early stopped, whether the best trial is a good one (x < 0.5)."""
    steps = stopped = 0
    for trial in session.store.list_trials("default", experiment=name):
        logs = session.db.get(trial.metadata.name or "", timeout=30)  # type: ignore[union-attr]
        steps += sum(1 for log in logs if log.metric.name == "loss")
        conditions = (trial.status.conditions if trial.status else None) or []
        stopped += any(c.type == "EarlyStopped" and c.status == "True" for c in conditions)
    from katib_core.models import Experiment as Exp

    final = session.store.get(Exp, "default", name)
    best = final.status.current_optimal_trial if final.status else None
    x = (
        next((float(a.value or "nan") for a in (best.parameter_assignments or []) if a.name == "x"), 1.0)
        if best
        else 1.0
    )
    return steps, stopped, x < 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        verdicts = Path(work) / "verdicts.jsonl"
        os.environ.update({"VERDICTS": str(verdicts), "STEPS": str(args.steps)})
        with LocalSession(Path(work) / "state") as session:
            base_wall, _ = run(session, experiment("baseline", args.trials, stopping=False))
            stop_wall, seen = run(session, experiment("medianstop", args.trials, stopping=True))
            base_steps, _, base_good = trial_steps(session, "baseline")
            stop_steps, stopped, stop_good = trial_steps(session, "medianstop")
        rows = [json.loads(line) for line in verdicts.read_text().splitlines()] if verdicts.exists() else []
    latencies = [row["latency"] * 1000 for row in rows]
    stops = [seen[row["trial"]] - row["at"] for row in rows if row["trial"] in seen]
    saved = 1 - stop_steps / base_steps
    print(f"{args.trials} trials x {args.steps} steps, 2 at a time, random search (half the space is bad)")
    print(f"  without early stopping: {base_steps} trial-steps, {base_wall:.1f} s, good optimum: {base_good}")
    print(
        f"  medianstop (Push):      {stop_steps} trial-steps, {stop_wall:.1f} s, good optimum: {stop_good},"
        f" {stopped} trials EarlyStopped"
    )
    print(
        f"  trial-steps saved: {saved:.0%} (target >= 40%: {'met' if saved >= 0.4 else 'MISSED'});"
        f" wall time saved: {1 - stop_wall / base_wall:.0%}"
    )
    if latencies:
        p50 = statistics.median(latencies)
        print(
            f"  verdict latency (the report_metrics call returning True): p50 {p50:.1f} ms, max {max(latencies):.1f} ms"
        )
    if stops:
        print(
            f"  verdict -> Trial EarlyStopped: p50 {statistics.median(stops):.2f} s, max {max(stops):.2f} s"
            f" (target 5 s: {'met' if max(stops) <= 5 else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
