"""Quickstart: tune a small objective on this machine with push-based metrics.

    python examples/quickstart/quickstart.py          (or: build-support/demo.sh)

``KatibClient(backend="local")`` runs the same experiment logic as the Kubernetes controllers:
each trial is a process that calls ``report_metrics``, pushing to an in-process DB manager.
"""

from __future__ import annotations

import sys

import pykatib as katib
import pykatib_local.backend  # noqa: F401  (backend='local' from a checkout; pip installs register it)


def objective(parameters: dict[str, object]) -> None:
    """A trial: Himmelblau's function, pushed as the metric ``loss`` (lower is better)."""
    import pykatib as katib  # runs in the trial's own process

    x, y = float(parameters["x"]), float(parameters["y"])  # type: ignore[arg-type]
    loss = (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2
    katib.report_metrics({"loss": loss})


def main() -> int:
    """Run 16 trials (TPE), 2 at a time, and print the best hyperparameters."""
    client = katib.KatibClient(backend="local")
    name = "quickstart"
    if name in {e.metadata.name for e in client.list_experiments() if e.metadata}:
        client.delete_experiment(name)  # a fresh run each time
    client.tune(
        name=name,
        objective=objective,
        parameters={"x": katib.search.double(-5, 5), "y": katib.search.double(-5, 5)},
        objective_metric_name="loss",
        objective_type="minimize",
        algorithm_name="tpe",
        algorithm_settings={"random_state": 42, "n_startup_trials": 6},
        max_trial_count=16,
        parallel_trial_count=2,
        metrics_collector_config={"kind": "Push"},
    )
    client.wait_for_experiment_condition(name)  # shows progress; Ctrl-C stops it, resumable
    best = client.get_optimal_hyperparameters(name)
    if best is None:
        print("no trial reported its objective", file=sys.stderr)
        return 1
    values = {a.name: a.value for a in best.parameter_assignments or []}
    loss = next(m.min for m in best.observation.metrics or [] if m.name == "loss")  # type: ignore[union-attr]
    print(f"best trial {best.best_trial_name}: loss={loss} x={values['x']} y={values['y']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
