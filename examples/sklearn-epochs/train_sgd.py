"""A real training loop that pushes per-epoch metrics: scikit-learn's SGDClassifier on the digits data.

    python examples/sklearn-epochs/train_sgd.py      (local mode; any machine with pykatib[local])

Each trial trains for 12 passes with ``partial_fit`` and, after every epoch, pushes the
validation accuracy and log-loss with ``report_metrics(..., step=epoch)``: no log format, no sidecar,
and the HTML report draws one learning curve per trial. The objective is the *best* validation
accuracy (``metricStrategies: max``), so a trial that overfits late is still judged by its peak.
"""

from __future__ import annotations

import sys

import pykatib as katib
import pykatib_local.backend  # noqa: F401  (backend='local' from a checkout; pip installs register it)


def train(parameters: dict[str, object]) -> None:
    """One trial: SGD on 8x8 digits (bundled with scikit-learn, no download), metrics per epoch."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import shuffle

    import pykatib as katib

    epochs = 12  # tune() ships this function's source to the trial: no module globals there
    features, labels = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(features, labels, test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    model = SGDClassifier(
        loss="log_loss",
        alpha=float(parameters["alpha"]),  # type: ignore[arg-type]
        learning_rate="constant",
        eta0=float(parameters["eta0"]),  # type: ignore[arg-type]
        penalty=str(parameters["penalty"]),
        random_state=0,
    )
    classes = sorted(set(labels))
    for epoch in range(epochs):
        x_epoch, y_epoch = shuffle(x_train, y_train, random_state=epoch)
        model.partial_fit(x_epoch, y_epoch, classes=classes)
        accuracy = accuracy_score(y_val, model.predict(x_val))
        loss = log_loss(y_val, model.predict_proba(x_val), labels=classes)
        katib.report_metrics({"accuracy": accuracy, "val-loss": loss}, step=epoch)


def main(max_trial_count: int = 12) -> int:
    """Tune alpha, eta0 and the penalty with TPE, 2 trials at a time; print the best."""
    client = katib.KatibClient(backend="local")
    name = "sklearn-epochs"
    if name in {e.metadata.name for e in client.list_experiments() if e.metadata}:
        client.delete_experiment(name)
    client.tune(
        name=name,
        objective=train,
        parameters={
            "alpha": katib.search.double(1e-6, 1e-1, distribution="logUniform"),
            "eta0": katib.search.double(1e-4, 0.5, distribution="logUniform"),
            "penalty": katib.search.categorical(["l2", "l1", "elasticnet"]),
        },
        objective_metric_name="accuracy",
        additional_metric_names=["val-loss"],
        objective_type="maximize",
        algorithm_name="tpe",
        algorithm_settings={"random_state": 1, "n_startup_trials": 5},
        max_trial_count=max_trial_count,
        parallel_trial_count=2,
        metrics_collector_config={"kind": "Push"},
    )
    client.wait_for_experiment_condition(name, timeout=1200, polling_interval=1)
    best = client.get_optimal_hyperparameters(name)
    if best is None:
        print("no trial reported its accuracy", file=sys.stderr)
        return 1
    values = {a.name: a.value for a in best.parameter_assignments or []}
    accuracy = next(m.max for m in best.observation.metrics or [] if m.name == "accuracy")  # type: ignore[union-attr]
    print(f"best trial {best.best_trial_name}: accuracy={accuracy} {values}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
