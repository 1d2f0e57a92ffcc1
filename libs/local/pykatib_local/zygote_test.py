"""tune() trials forked from the zygote: real processes, the real runner, the real DB manager."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from katib_core.models import Experiment, Trial
from pykatib import _tuning, search
from pykatib_local.cli_test import _alive
from pykatib_local.early_stopping_test import STOPPING, conditions, steps
from pykatib_local.local_test import run
from pykatib_local.session import LocalSession


def describe(parameters):  # type: ignore[no-untyped-def]
    import json
    import os
    import sys
    from pathlib import Path

    import pykatib as katib

    with open(os.environ["OUT"], "a") as out:
        seen = {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "sid": os.getsid(0),
            "parent": Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode(errors="replace"),
            "env": {k: v for k, v in os.environ.items() if k.startswith(("KATIB_", "PYTHON", "PATH", "FLAVOUR"))},
            "cwd": os.getcwd(),
            "argv": sys.argv,
            "path0": sys.path[0],
            "main": __name__,
            "file": globals()["__file__"],
            "lr": type(parameters["lr"]).__name__,
        }
        out.write(json.dumps(seen) + "\n")
    katib.report_metrics({"loss": parameters["lr"]})


def broken(parameters):  # type: ignore[no-untyped-def]
    print("about to fail")
    raise ValueError(f"cannot train with lr={parameters['lr']:.2f}")


def sleepy(parameters):  # type: ignore[no-untyped-def]
    import os
    import time

    with open(os.environ["OUT"], "a") as out:
        out.write(f"{os.getpid()}\n")
    time.sleep(600)


def stubborn(parameters):  # type: ignore[no-untyped-def]
    import os
    import time

    import pykatib as katib

    x = parameters["x"]
    for step in range(10):
        katib.report_metrics({"loss": (0.1 if x < 0.5 else 2.0) + 1.0 / (step + 1)}, step=step)
        time.sleep(5.0 if "KATIB_EARLY_STOPPING_RULES" in os.environ else 0.02)


def tuned(name: str, objective: Any, *, trials: int = 2, **extra: Any) -> Experiment:
    """The Experiment tune() creates in local mode (Push; trials have pykatib)."""
    args: dict[str, Any] = {
        "parameters": {"lr": search.double(0.01, 0.1)},
        "objective_type": "minimize",
        "max_trial_count": trials,
        "parallel_trial_count": 2,
        **extra,
    }
    return _tuning.build_experiment(
        name=name,
        namespace="default",
        objective=objective,
        objective_metric_name="loss",
        metrics_collector_config={"kind": "Push"},
        trials_have_pykatib=True,
        **args,
    )


def seen_by_trials(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def trials_of(session: LocalSession, name: str) -> list[Trial]:
    return session.store.list_trials("default", experiment=name)


def test_a_tune_trial_is_its_own_forked_process_with_katibs_environment(
    session: LocalSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "seen.jsonl"
    monkeypatch.setenv("OUT", str(out))
    final = run(session, tuned("fast", describe, env_per_trial={"FLAVOUR": "vanilla"}))
    assert final.status is not None
    assert final.status.trials_succeeded == 2
    seen = seen_by_trials(out)
    names = {t.metadata.name for t in trials_of(session, "fast") if t.metadata}
    assert {s["env"]["KATIB_TRIAL_NAME"] for s in seen} == names
    zygotes = {s["ppid"] for s in seen}
    assert len(zygotes) == 1  # both forked by one zygote ...
    (zygote,) = zygotes
    assert "pykatib_local.zygote" in seen[0]["parent"]  # ... not started by bash
    for trial in seen:
        assert trial["pid"] not in (os.getpid(), zygote)
        assert trial["sid"] == trial["pid"]  # its own session and process group, as start_new_session
        env = trial["env"]
        assert env["KATIB_DB_MANAGER_ADDRESS"] == session.db_address
        assert env["PATH"].startswith(f"{session.bin_dir}:")
        assert env["PYTHONUNBUFFERED"] == "1"
        assert env["FLAVOUR"] == "vanilla"  # env_per_trial
        assert trial["cwd"] == os.getcwd()  # where the runner runs, as the command path
        assert trial["argv"] == [trial["file"]]
        assert trial["file"].endswith("/ephemeral_script.py")
        assert trial["path0"] == os.path.dirname(trial["file"])
        assert not os.path.exists(trial["path0"])  # the script's directory is removed after the trial
        assert (trial["main"], trial["lr"]) == ("__main__", "float")
    assert not _alive(zygote)  # the run is over: so is its zygote


def test_a_raising_objective_fails_its_trial_with_the_traceback_in_its_log(session: LocalSession) -> None:
    final = run(session, tuned("broken", broken))
    assert final.status is not None
    assert final.status.trials_failed == 2
    for trial in trials_of(session, "broken"):
        failed = next(c for c in trial.status.conditions or [] if c.type == "Failed")  # type: ignore[union-attr]
        assert "exit code 1" in (failed.message or "")
        assert "ValueError: cannot train with lr=" in (failed.message or "")
        log = (session.store.trial_dir("default", "broken", trial.metadata.name or "") / "output.log").read_text()  # type: ignore[union-attr]
        assert log.startswith("about to fail\n")  # stdout and stderr, in order, in the trial's log
        traceback = log.split("Traceback (most recent call last):\n", 1)[1]
        assert traceback.startswith('  File "/')  # from the script's frame, as python <script> prints it
        assert "ephemeral_script.py" in traceback.splitlines()[0]
        assert "zygote" not in traceback


def test_a_stopped_run_ends_its_forked_trials(
    session: LocalSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "pids"
    monkeypatch.setenv("OUT", str(out))
    stop = threading.Event()

    def stop_when_both_run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out.exists() and len(out.read_text().split()) == 2):
            time.sleep(0.05)
        stop.set()

    threading.Thread(target=stop_when_both_run, daemon=True).start()
    interrupted = run(session, tuned("sleepy", sleepy), stop=stop)
    assert interrupted.status is None or not interrupted.status.trials_succeeded
    pids = [int(pid) for pid in out.read_text().split()]
    assert len(pids) == 2
    for pid in pids:
        assert not _alive(pid), f"trial process {pid} survived the stop"


def test_early_stopping_verdicts_reach_forked_trials_and_stop_them(session: LocalSession) -> None:
    grid = search.double(0.1, 0.9, step=0.4)  # 0.1 and 0.5 make the median; 0.9 starts with rules, ignores them
    exp = tuned("stubborn", stubborn, trials=3, parameters={"x": grid}, algorithm_name="grid", parallel_trial_count=1)
    body = exp.to_api()
    body["spec"]["earlyStopping"] = STOPPING  # tune() has no argument for it; a YAML of the same trials has
    os.environ["KATIB_EARLY_STOPPING_GRACE_SECONDS"] = "1"
    try:
        run(session, Experiment.from_api(body))
    finally:
        del os.environ["KATIB_EARLY_STOPPING_GRACE_SECONDS"]
    trials = trials_of(session, "stubborn")
    late = next(t for t in trials if t.spec and t.spec.early_stopping_rules)
    assert "EarlyStopped" in conditions(late)
    assert steps(session, late) == 3  # SIGTERM 1 s after its verdict (3rd report), not 10 reports
    assert all(steps(session, t) == 10 for t in trials if t is not late)


def test_a_trial_whose_start_up_environment_differs_runs_as_its_command(
    session: LocalSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "seen.jsonl"
    monkeypatch.setenv("OUT", str(out))
    final = run(session, tuned("seeded", describe, env_per_trial={"PYTHONHASHSEED": "7"}))
    assert final.status is not None
    assert final.status.trials_succeeded == 2
    for trial in seen_by_trials(out):
        assert trial["ppid"] == os.getpid()  # a new interpreter: bash -c execs its last command; no zygote
        assert trial["env"]["PYTHONHASHSEED"] == "7"


def test_a_lost_zygote_fails_its_trials_saying_so(
    session: LocalSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "pids"
    monkeypatch.setenv("OUT", str(out))

    def kill_the_zygote() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out.exists() and out.read_text().split()):
            time.sleep(0.05)
        pid = int(out.read_text().split()[0])
        os.kill(int(Path(f"/proc/{pid}/stat").read_text().split()[3]), signal.SIGKILL)  # its parent

    threading.Thread(target=kill_the_zygote, daemon=True).start()
    exp = tuned("orphans", sleepy, trials=1, max_failed_trial_count=1, parallel_trial_count=1)
    final = run(session, exp)
    assert final.status is not None
    assert final.status.trials_failed == 1
    (trial,) = trials_of(session, "orphans")
    log = (session.store.trial_dir("default", "orphans", trial.metadata.name or "") / "output.log").read_text()  # type: ignore[union-attr]
    assert "the trial worker" in log
    orphan = int(out.read_text().split()[0])
    deadline = time.monotonic() + 30  # SIGKILLed, it dies as soon as the (busy) machine schedules it
    while _alive(orphan) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(orphan)
