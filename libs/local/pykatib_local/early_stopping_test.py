"""medianstop on Push trials, end to end: rules from succeeded trials, verdict inside report_metrics,
EarlyStopped trials whose processes stopped — whether the training loop listens or not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from katib_core import constants
from katib_core.errors import ValidationError
from katib_core.models import Trial
from pykatib_local.local_test import experiment, run
from pykatib_local.session import LocalSession

# x < 0.5 trains well; x >= 0.5 plateaus high. 10 steps; listens to the verdict unless IGNORE.
TRAIN = """
    import json, os, sys, time, pykatib
    x = float(sys.argv[1])
    ignore = "IGNORE" in os.environ and "KATIB_EARLY_STOPPING_RULES" in os.environ
    for step in range(10):
        loss = (0.1 if x < 0.5 else 2.0) + 1.0 / (step + 1)
        started = time.time()
        stop = pykatib.report_metrics({"loss": loss}, step=step)
        if stop:
            with open(os.environ["VERDICTS"], "a") as out:
                out.write(json.dumps({"trial": os.environ["KATIB_TRIAL_NAME"], "step": step,
                                      "latency": time.time() - started, "at": time.time()}) + "\\n")
        assert pykatib.should_stop() == stop or pykatib.should_stop()
        if stop and not ignore:
            break
        time.sleep(0.02 if not ignore else 5.0)
"""

STOPPING = {
    "algorithmName": "medianstop",
    "algorithmSettings": [{"name": "min_trials_required", "value": "2"}, {"name": "start_step", "value": "3"}],
}


def conditions(trial: Trial) -> set[str]:
    return {c.type for c in (trial.status.conditions if trial.status else None) or [] if c.status == "True"}


def steps(session: LocalSession, trial: Trial) -> int:
    return [log.metric.name for log in session.db.get(trial.metadata.name or "", timeout=10)].count("loss")  # type: ignore[union-attr]


def test_bad_trials_are_early_stopped_once_the_median_exists(tmp_path: Path, monkeypatch: object) -> None:
    verdicts = tmp_path / "verdicts.jsonl"
    import os

    os.environ["VERDICTS"] = str(verdicts)
    grid: dict[str, Any] = {
        "parameters": [
            {
                "name": "x",
                "parameterType": "discrete",
                "feasibleSpace": {"list": ["0.1", "0.2", "0.7", "0.3", "0.8", "0.9", "0.6", "0.95"]},
            }
        ]
    }
    exp = experiment(
        "stopping",
        TRAIN,
        algorithm={"algorithmName": "grid"},
        maxTrialCount=8,
        parallelTrialCount=2,
        earlyStopping=STOPPING,
        **grid,
    )
    with LocalSession(tmp_path / "work") as session:
        final = run(session, exp)
        trials = session.store.list_trials("default", experiment="stopping")
        stopped = [t for t in trials if "EarlyStopped" in conditions(t)]
        succeeded = [t for t in trials if "Succeeded" in conditions(t)]
        assert final.status is not None
        assert "Succeeded" in {c.type for c in final.status.conditions or [] if c.status == "True"}
        assert len(trials) == 8
        assert final.status.trials_early_stopped == len(stopped)
        assert stopped, [(t.metadata.name, conditions(t)) for t in trials]  # type: ignore[union-attr]
        for trial in stopped:
            x = float(next(a.value for a in trial.spec.parameter_assignments or [] if a.name == "x"))  # type: ignore[union-attr,arg-type]
            assert x >= 0.5  # only bad trials are stopped ...
            assert steps(session, trial) == 3  # ... at the rule's start step, not after
            assert trial.spec.early_stopping_rules  # type: ignore[union-attr]
        assert all(steps(session, t) == 10 for t in succeeded)
        # the first two (grid order: x=0.1, 0.2) started together, before any trial had succeeded: no rules
        for trial in trials:
            value = next(a.value for a in trial.spec.parameter_assignments or [] if a.name == "x")  # type: ignore[union-attr]
            if value in ("0.1", "0.2"):
                assert not (trial.spec and trial.spec.early_stopping_rules)
    lines = [json.loads(line) for line in verdicts.read_text().splitlines()]
    assert {line["trial"] for line in lines} == {t.metadata.name for t in stopped}  # type: ignore[union-attr]
    assert all(line["step"] == 2 for line in lines)  # the verdict came with the 3rd report itself (start_step 3)


def test_a_trial_that_ignores_its_verdict_is_stopped_after_the_grace(tmp_path: Path) -> None:
    import os

    os.environ["VERDICTS"] = str(tmp_path / "verdicts.jsonl")
    os.environ["IGNORE"] = "1"
    os.environ["KATIB_EARLY_STOPPING_GRACE_SECONDS"] = "1"
    try:
        grid: dict[str, Any] = {
            "parameters": [{"name": "x", "parameterType": "discrete", "feasibleSpace": {"list": ["0.1", "0.2", "0.9"]}}]
        }
        exp = experiment(
            "ignoring",
            TRAIN,
            algorithm={"algorithmName": "grid"},
            maxTrialCount=3,
            parallelTrialCount=1,
            earlyStopping=STOPPING,
            **grid,
        )
        with LocalSession(tmp_path / "work") as session:
            run(session, exp)
            trials = session.store.list_trials("default", experiment="ignoring")
            late = next(t for t in trials if t.spec and t.spec.early_stopping_rules)
            assert "EarlyStopped" in conditions(late)
            # it sleeps 5 s per step and would report 10 times; SIGTERM 1 s after its 3rd report ends it
            assert steps(session, late) == 3
    finally:
        for name in ("IGNORE", "KATIB_EARLY_STOPPING_GRACE_SECONDS"):
            os.environ.pop(name, None)


def test_early_stopping_needs_push_and_valid_settings(tmp_path: Path) -> None:
    from pykatib_local import backend

    bad = experiment(
        "bad",
        TRAIN,
        earlyStopping={"algorithmName": "medianstop", "algorithmSettings": [{"name": "start_step", "value": "zero"}]},
    )
    try:
        backend.prepare(bad, "default")
    except ValidationError as exc:
        assert "spec.earlyStopping.algorithmSettings[0].value" in str(exc)
    else:
        raise AssertionError("invalid settings were accepted")
    stdout = experiment("stdout", TRAIN, collector=constants.CollectorKind.STDOUT, earlyStopping=STOPPING)
    try:
        backend.prepare(stdout, "default")
    except ValidationError as exc:
        assert "spec.earlyStopping" in str(exc)
    else:
        raise AssertionError("early stopping of a StdOut trial was accepted")
