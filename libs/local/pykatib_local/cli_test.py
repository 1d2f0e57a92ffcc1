"""The `pykatib` command: run/resume a YAML, read the state back, errors without tracebacks, Ctrl-C."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from katib_core.models import Experiment
from pykatib_local import cli
from pykatib_local.local_test import experiment
from pykatib_local.session import LocalSession

STDOUT_TRAIN = """
    import sys
    x = float(sys.argv[1])
    for epoch in range(3):
        print(f"epoch {epoch} loss={(x - 0.25) ** 2 + 0.1 / (epoch + 1):.6f}")
"""

SLOW_PUSH_TRAIN = """
    import os, sys, time, pykatib
    with open(os.environ["PIDS"], "a") as out:
        out.write(f"{os.getpid()}\\n")
    time.sleep(float(os.environ.get("NAP", "0")))
    pykatib.report_metrics({"loss": float(sys.argv[1])})
"""


def write_experiment(path: Path, name: str, script: str, *, collector: str = "StdOut", **spec: object) -> Path:
    """``local_test.experiment`` as a YAML file, with a real-looking image (local mode ignores it)."""
    document = experiment(name, script, collector=collector, image="docker.io/library/python:3.11", **spec)
    path.write_text(yaml.safe_dump(document.to_api()))
    return path


def pykatib(workdir: Path, *args: str) -> int:
    return cli.main(["--workdir", str(workdir), *args])


def test_run_prints_table_best_and_report_then_resumes_as_a_no_op(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    spec = write_experiment(tmp_path / "exp.yaml", "cli-stdout", STDOUT_TRAIN)
    assert pykatib(work, "run", str(spec), "--local") == 0
    out, err = capsys.readouterr()
    assert "container images are ignored (docker.io/library/python:3.11)" in err
    assert "report: " in err
    report = Path(err.split("report: ")[1].splitlines()[0])
    assert report.is_file()
    assert "cli-stdout" in report.read_text()
    assert out.count("cli-stdout-") >= 4 + 1  # 4 trial rows, and the best trial
    assert "Succeeded" in out

    assert pykatib(work, "run", str(spec), "--local", "--quiet") == 0
    out, err = capsys.readouterr()
    assert "resuming" in err
    with LocalSession(work) as session:
        assert len(session.store.list_trials("default", experiment="cli-stdout")) == 4  # nothing rerun

    assert pykatib(work, "get", "experiments") == 0
    out = capsys.readouterr().out
    assert "cli-stdout" in out
    assert "Succeeded" in out
    assert pykatib(work, "get", "trials", "-e", "cli-stdout") == 0
    trial = next(w for w in capsys.readouterr().out.split() if w.startswith("cli-stdout-"))

    # For programs: exact values, best first, read back with the standard library.
    assert pykatib(work, "get", "trials", "-e", "cli-stdout", "-o", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 4
    assert [float(r["loss"]) for r in rows] == sorted(float(r["loss"]) for r in rows)  # minimize: best first
    with LocalSession(work) as session:
        stored = {
            t.metadata.name: t.status.observation.metrics[0].min  # the strategy (min) value, as stored
            for t in session.store.list_trials("default", experiment="cli-stdout")
            if t.metadata and t.status and t.status.observation and t.status.observation.metrics
        }
    assert {r["name"]: r["loss"] for r in rows} == stored
    assert {r["status"] for r in rows} == {"Succeeded"}
    assert pykatib(work, "get", "trials", "-e", "cli-stdout", "-o", "json") == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == [r["name"] for r in rows]
    assert [r["metrics"]["loss"] for r in records] == [float(r["loss"]) for r in rows]  # numbers, not strings
    assert pykatib(work, "get", "trials", "-e", "cli-stdout", "-o", "yaml") == 0
    assert yaml.safe_load(capsys.readouterr().out) == records
    assert pykatib(work, "get", "experiments", "-o", "json") == 0
    (summary,) = json.loads(capsys.readouterr().out)
    assert (summary["name"], summary["status"], summary["succeeded"]) == ("cli-stdout", "Succeeded", 4)
    assert summary["bestTrial"] == rows[0]["name"]
    assert summary["bestValue"] == float(rows[0]["loss"])
    assert pykatib(work, "get", "trials", "-e", "cli-stdout", "-o", "wide") == 0
    wide = capsys.readouterr().out
    assert "loss (min)" in wide
    assert "REASON" in wide
    assert pykatib(work, "describe", "trial", trial) == 0
    out = capsys.readouterr().out
    assert "kind: Trial" in out
    assert "metric logs (3):" in out  # StdOut: 3 epochs parsed, like the sidecar
    assert pykatib(work, "describe", "experiment", "cli-stdout") == 0
    assert "currentOptimalTrial" in capsys.readouterr().out
    assert pykatib(work, "delete", "experiment", "cli-stdout") == 0
    capsys.readouterr()
    assert pykatib(work, "get", "experiments") == 0
    assert "cli-stdout" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "missing.yaml", "--local"], "missing.yaml: cannot read it"),
        (["run", "bad.yaml", "--local"], "bad.yaml: is not valid YAML"),
        (["run", "invalid.yaml", "--local"], "spec.parallelTrialCount"),
        (["run", "good.yaml"], "--local"),
        (["run", "typo.yaml", "--local"], "spec.parallelTrialCout: unknown field; did you mean parallelTrialCount?"),
        (["describe", "trial", "nope"], "nope"),
    ],
)
def test_bad_input_is_one_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("kind: [unclosed")
    write_experiment(tmp_path / "invalid.yaml", "invalid", STDOUT_TRAIN, parallelTrialCount=-1)
    write_experiment(tmp_path / "good.yaml", "good", STDOUT_TRAIN)
    write_experiment(tmp_path / "typo.yaml", "typo", STDOUT_TRAIN, parallelTrialCout=2)
    (tmp_path / "work").mkdir()
    assert pykatib(tmp_path / "work", *args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_run_stops_its_trials_and_a_rerun_finishes_it(tmp_path: Path, sig: signal.Signals) -> None:
    work, pids = tmp_path / "work", tmp_path / "pids"
    spec = write_experiment(
        tmp_path / "exp.yaml", "interrupted", SLOW_PUSH_TRAIN, collector="Push", maxTrialCount=3, parallelTrialCount=2
    )
    env = {**os.environ, "PIDS": str(pids), "NAP": "60", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    command = [
        sys.executable,
        "-m",
        "pykatib_local.cli",
        "--workdir",
        str(work),
        "run",
        str(spec),
        "--local",
        "--quiet",
    ]
    run = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "the trials never started"
        time.sleep(0.1)
    run.send_signal(sig)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert "rerun the same command to resume" in err
    assert "Traceback" not in err
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid), f"trial process {pid} survived the interrupt"

    env["NAP"] = "0"
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr
    with LocalSession(work) as session:
        final = session.store.get(Experiment, "default", "interrupted")
        assert final.status is not None
        assert final.status.trials_succeeded == 3
        assert len(session.store.list_trials("default", experiment="interrupted")) == 3  # no duplicates


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: its parent (the runner) is gone, init reaps it shortly.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_run_local_mode_refuses_leaves_nothing_behind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = experiment("argo-trials", STDOUT_TRAIN).to_api()
    document["spec"]["trialTemplate"]["trialSpec"] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "container": {"args": ["${trialParameters.x}"]}}],
        },
    }
    (tmp_path / "argo.yaml").write_text(yaml.safe_dump(document))
    work = tmp_path / "work"
    assert pykatib(work, "run", str(tmp_path / "argo.yaml"), "--local") == 2
    err = capsys.readouterr().err
    assert (
        "spec.trialTemplate.trialSpec.kind: argoproj.io/v1alpha1 Workflow: local mode cannot run an Argo Workflow"
        in err
    )
    assert "Traceback" not in err
    assert pykatib(work, "get", "experiments") == 0
    assert "argo-trials" not in capsys.readouterr().out


def test_raising_the_budget_of_a_finished_long_running_experiment_restarts_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    spec = write_experiment(
        tmp_path / "exp.yaml", "grow", STDOUT_TRAIN, maxTrialCount=2, parallelTrialCount=2, resumePolicy="LongRunning"
    )
    assert pykatib(work, "run", str(spec), "--local", "--quiet") == 0
    capsys.readouterr()
    write_experiment(spec, "grow", STDOUT_TRAIN, maxTrialCount=4, parallelTrialCount=2, resumePolicy="LongRunning")
    assert pykatib(work, "run", str(spec), "--local", "--quiet") == 0
    assert "maxTrialCount 2 → 4; resuming" in capsys.readouterr().err
    with LocalSession(work) as session:
        trials = session.store.list_trials("default", experiment="grow")
        assert len(trials) == 4
        assert session.store.get(Experiment, "default", "grow").spec.max_trial_count == 4  # type: ignore[union-attr]
    # Anything but the counts is another experiment: refused, naming the field.
    write_experiment(spec, "grow", STDOUT_TRAIN, maxTrialCount=6, parallelTrialCount=2, resumePolicy="Never")
    assert pykatib(work, "run", str(spec), "--local", "--quiet") == 2
    err = capsys.readouterr().err
    assert err.startswith("pykatib: spec.resumePolicy") or "spec.resumePolicy" in err.splitlines()[-1], err
    assert "rename it or `pykatib delete experiment` first" in err


def test_a_run_whose_trials_all_fail_ends_with_their_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_experiment(tmp_path / "exp.yaml", "all-fail", "import sys\nprint(undefined_name)\n", maxTrialCount=2)
    assert pykatib(tmp_path / "work", "run", str(spec), "--local", "--quiet") == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "no trial reported the objective; first failed trial all-fail-" in last
    assert "NameError: name 'undefined_name' is not defined (exit code 1)" in last
    assert pykatib(tmp_path / "work", "get", "experiments") == 0
    assert "BEST VALUE" in capsys.readouterr().out
