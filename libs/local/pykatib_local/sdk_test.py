"""Local mode through the SDK as a user's script drives it: failures are loud, not a silent Succeeded."""

from __future__ import annotations

import logging
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas  # type: ignore[import-untyped]
import pytest

import pykatib as katib
import pykatib_local.backend  # noqa: F401  (registers backend='local'; the wheel's entry point does it when installed)
from katib_core.errors import AlreadyExistsError
from katib_core.models import Experiment
from pykatib.backends import LocalBackendConfig
from pykatib_local.cli_test import _alive


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

    frame = client.trials_dataframe("typed")
    assert isinstance(frame, pandas.DataFrame)
    params = ["params_batch", "params_layers", "params_lr", "params_opt", "params_scale"]  # not the fixed input
    assert list(frame.columns) == ["name", "status", *params, "metrics_loss", "reason", "start_time", "completion_time"]
    assert list(frame["status"]) == ["Succeeded", "Succeeded"]
    assert list(frame["metrics_loss"]) == sorted(frame["metrics_loss"], reverse=True)  # best first (tune maximizes)
    assert frame["metrics_loss"].dtype == "float64"
    assert frame["params_layers"].dtype == "int64"
    assert set(frame["params_opt"]) <= {"adam", "sgd"}
    assert (frame["completion_time"] >= frame["start_time"]).all()


def slow(parameters):  # type: ignore[no-untyped-def]
    import time

    import pykatib as katib

    time.sleep(1.5)
    katib.report_metrics({"loss": parameters["lr"]})


def tune_slow(client: katib.KatibClient, *, trials: int = 4, **extra: object) -> Experiment:
    return client.tune(
        name="slow",
        objective=slow,
        parameters={"lr": katib.search.double(0.01, 0.1)},
        objective_metric_name="loss",
        objective_type="minimize",
        max_trial_count=trials,
        parallel_trial_count=2,
        metrics_collector_config={"kind": "Push"},
        **extra,  # type: ignore[arg-type]
    )


def test_a_stopped_wait_stops_the_trials_and_load_if_exists_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = katib.KatibClient(backend=LocalBackendConfig(workdir=tmp_path / "work"))
    tune_slow(client)
    with pytest.raises(TimeoutError):
        client.wait_for_experiment_condition("slow", timeout=0.5)
    err = capsys.readouterr().err
    (line,) = (line for line in err.splitlines() if "stopped after" in line)
    assert "tune(..., load_if_exists=True) resumes it" in line
    with pytest.raises(AlreadyExistsError, match="already exists"):
        tune_slow(client)  # as upstream: a name is taken
    tune_slow(client, load_if_exists=True)
    done = client.wait_for_experiment_condition("slow")  # no timeout in local mode
    assert done.status is not None
    assert done.status.trials_succeeded == 4
    out = capsys.readouterr().err
    finished = [line for line in out.splitlines() if " trial slow-" in line]
    assert len(finished) >= 1  # not a terminal: one line per finished trial, with its value
    assert all("Succeeded loss=" in line for line in finished)


def test_load_if_exists_refuses_another_spec_naming_the_field(tmp_path: Path) -> None:
    client = katib.KatibClient(backend=LocalBackendConfig(workdir=tmp_path / "work"))
    tune_slow(client, trials=2)
    client.wait_for_experiment_condition("slow")
    with pytest.raises(ValueError, match=r"spec\.algorithm\.algorithmName"):
        tune_slow(client, trials=2, algorithm_name="tpe", load_if_exists=True)
    unchanged = tune_slow(client, trials=2, load_if_exists=True)
    assert unchanged.status is not None
    assert unchanged.status.trials_succeeded == 2


USER_SCRIPT = """
import sys
import pykatib as katib
import pykatib_local.backend
from pykatib.backends import LocalBackendConfig


def train(parameters):
    import os, time
    import pykatib as katib
    with open(os.environ["PIDS"], "a") as out:
        out.write(f"{os.getpid()}\\\\n")
    time.sleep(float(os.environ["NAP"]))
    katib.report_metrics({"loss": parameters["lr"]})


client = katib.KatibClient(backend=LocalBackendConfig(workdir=sys.argv[1]))
client.tune(
    name="script",
    objective=train,
    parameters={"lr": katib.search.double(0.01, 0.1)},
    objective_metric_name="loss",
    objective_type="minimize",
    max_trial_count=3,
    parallel_trial_count=2,
    metrics_collector_config={"kind": "Push"},
    load_if_exists=True,
)
best = client.wait_for_experiment_condition("script")
print("best", client.get_optimal_hyperparameters("script").best_trial_name)
"""


def test_ctrl_c_in_a_users_script_under_a_terminal_prints_one_line_and_a_rerun_resumes(tmp_path: Path) -> None:
    script, work, pids = tmp_path / "tune_me.py", tmp_path / "work", tmp_path / "pids"
    script.write_text(USER_SCRIPT)
    env = {**os.environ, "PIDS": str(pids), "NAP": "60", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("TERM", None)
    primary, secondary = pty.openpty()  # a terminal, as a user's shell gives: the live bar, then Ctrl-C
    run = subprocess.Popen(
        [sys.executable, str(script), str(work)], env=env, stdin=secondary, stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    output = bytearray()

    def drain(until: float) -> None:
        while time.monotonic() < until:
            ready, _, _ = select.select([primary], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # the process closed the terminal
                    return
                if not chunk:
                    return
                output.extend(chunk)
            elif run.poll() is not None:
                return

    deadline = time.monotonic() + 60
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert run.poll() is None, output.decode(errors="replace")
        assert time.monotonic() < deadline, "the trials never started"
        drain(time.monotonic() + 0.1)
    run.send_signal(signal.SIGINT)
    drain(time.monotonic() + 30)
    run.wait(timeout=30)
    os.close(primary)
    text = output.decode(errors="replace")
    assert run.returncode != 0
    assert text.count("stopped after") == 1, text
    assert "load_if_exists=True" in text
    for noise in ("RpcError", "cannot schedule new futures", "Exception ignored", "Error in atexit"):
        assert noise not in text, text
    assert text.count("Traceback") <= 1, text  # Python's own KeyboardInterrupt report at most
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid), f"trial process {pid} survived Ctrl-C"

    env["NAP"] = "0"
    again = subprocess.run(
        [sys.executable, str(script), str(work)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert again.returncode == 0, again.stderr
    assert "best script-" in again.stdout
    client = katib.KatibClient(backend=LocalBackendConfig(workdir=work))
    assert len(client.list_trials("script")) == 3  # resumed: no trial run twice, none lost


def chatty(parameters):  # type: ignore[no-untyped-def]
    import time

    import pykatib as katib

    for epoch in range(3):
        print("epoch", epoch, "lr", parameters["lr"], flush=True)
        time.sleep(0.3)
    katib.report_metrics({"loss": float(parameters["lr"])})


def test_get_job_logs_reads_and_follows_a_trials_output(tmp_path: Path) -> None:
    client = katib.KatibClient(backend=LocalBackendConfig(workdir=tmp_path / "work"))
    client.tune(
        name="chatty",
        objective=chatty,
        parameters={"lr": katib.search.double(0.01, 0.1)},
        objective_metric_name="loss",
        max_trial_count=1,
        parallel_trial_count=1,
        metrics_collector_config={"kind": "Push"},
    )
    deadline = time.monotonic() + 60
    while not client.list_trials("chatty") and time.monotonic() < deadline:
        time.sleep(0.05)
    (trial,) = client.list_trials("chatty")
    name = str(trial.metadata.name)  # type: ignore[union-attr]
    lr = next(a.value for a in trial.spec.parameter_assignments if a.name == "lr")  # type: ignore[union-attr]
    followed = list(client.get_job_logs("chatty", name, follow=True))  # from its start until it ends
    assert [line for line in followed if line.startswith("epoch")] == [f"epoch {i} lr {lr}" for i in range(3)]
    assert client.get_trial(name).status.has_condition("Succeeded")  # type: ignore[union-attr]
    assert list(client.get_job_logs("chatty", name)) == followed
    with pytest.raises(RuntimeError, match=f"^Failed to get logs of Trial default/{name}"):
        list(client.get_job_logs("another", name))
