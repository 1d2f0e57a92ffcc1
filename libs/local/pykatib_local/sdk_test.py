"""Local mode through the SDK as a user's script drives it: failures are loud, not a silent Succeeded."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import pykatib as katib
import pykatib_local.backend  # noqa: F401  (registers backend='local'; the wheel's entry point does it when installed)
from pykatib.backends import LocalBackendConfig


def broken(parameters):  # type: ignore[no-untyped-def]
    raise ValueError(f"cannot train with lr={parameters['lr']}")


def flaky(parameters):  # type: ignore[no-untyped-def]
    import pykatib as katib

    lr = float(parameters["lr"])
    if lr > 0.05:
        raise ArithmeticError("diverged")
    katib.report_metrics({"loss": lr})


def tune(tmp_path: Path, name: str, objective: object) -> katib.KatibClient:
    client = katib.KatibClient(backend=LocalBackendConfig(workdir=tmp_path / "work"))
    client.tune(
        name=name,
        objective=objective,  # type: ignore[arg-type]
        parameters={"lr": katib.search.double(0.01, 0.1)},
        objective_metric_name="loss",
        objective_type="minimize",
        max_trial_count=3,
        parallel_trial_count=3,
        metrics_collector_config={"kind": "Push"},
    )
    return client


def test_a_run_with_no_succeeded_trial_raises_with_the_first_error(tmp_path: Path) -> None:
    client = tune(tmp_path, "broken", broken)
    with pytest.raises(RuntimeError) as raised:
        client.wait_for_experiment_condition("broken", polling_interval=0.2)
    message = str(raised.value)
    assert "0 of 3 trials succeeded" in message
    assert "ValueError: cannot train with lr=" in message
    assert client.get_optimal_hyperparameters("broken") is None


def test_partial_failures_are_a_warning_quoting_the_first(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = katib.KatibClient(backend=LocalBackendConfig(workdir=tmp_path / "work"))
    client.tune(
        name="flaky",
        objective=flaky,
        parameters={"lr": katib.search.double(0.02, 0.08, step=0.03)},  # 0.02, 0.05, 0.08
        objective_metric_name="loss",
        objective_type="minimize",
        algorithm_name="grid",
        max_trial_count=3,
        parallel_trial_count=3,
        metrics_collector_config={"kind": "Push"},
    )
    with caplog.at_level(logging.WARNING, logger="pykatib.client"):
        client.wait_for_experiment_condition("flaky", polling_interval=0.2)
    (warning,) = (r.getMessage() for r in caplog.records if "trials succeeded" in r.getMessage())
    assert "2 of 3 trials succeeded" in warning
    assert "ArithmeticError: diverged" in warning


def test_a_typo_in_an_experiment_is_an_error_naming_it(tmp_path: Path) -> None:
    client = tune(tmp_path, "typo-source", broken)
    body = client.get_experiment("typo-source").to_api()
    body["metadata"] = {"name": "typo"}
    body["spec"]["parallelTrialCout"] = 2
    body.pop("status", None)
    # As a cluster's webhook denial comes back (upstream's RuntimeError), naming the field.
    with pytest.raises(
        RuntimeError, match=r"spec\.parallelTrialCout: unknown field; did you mean parallelTrialCount\?"
    ):
        client.create_experiment(body)
    assert [e.metadata.name for e in client.list_experiments() if e.metadata] == ["typo-source"]


def typed(parameters):  # type: ignore[no-untyped-def]
    import pykatib as katib

    kinds = {name: type(value).__name__ for name, value in parameters.items()}
    assert kinds == {
        "lr": "float",
        "layers": "int",
        "batch": "int",
        "scale": "float",
        "opt": "str",
        "epochs": "int",
    }, kinds
    katib.report_metrics({"loss": parameters["lr"] * parameters["layers"] + float(parameters["lr"])})


def test_the_objective_gets_numbers_for_numeric_parameters(tmp_path: Path) -> None:
    client = katib.KatibClient(backend=LocalBackendConfig(workdir=tmp_path / "work"))
    client.tune(
        name="typed",
        objective=typed,
        parameters={
            "lr": katib.search.double(0.01, 0.1),
            "layers": katib.search.int(1, 3),
            "batch": katib.search.discrete([16, 32]),
            "scale": katib.search.discrete([0.5, 2]),
            "opt": katib.search.categorical(["adam", "sgd"]),
            "epochs": 2,  # a fixed input keeps its type
        },
        objective_metric_name="loss",
        max_trial_count=2,
        parallel_trial_count=2,
        metrics_collector_config={"kind": "Push"},
    )
    client.wait_for_experiment_condition("typed", polling_interval=0.2)
    assert client.get_experiment("typed").status.trials_succeeded == 2  # type: ignore[union-attr]
