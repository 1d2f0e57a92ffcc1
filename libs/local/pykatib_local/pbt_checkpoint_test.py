"""PBT's checkpoint hand-over in local mode: a generation-1 trial continues from its parent's checkpoint.

Katib's simple-pbt example with a stand-in for its training script that, like Katib's, loads
``training.ckpt`` from ``--checkpoint`` when present and saves it there at the end.
"""

from __future__ import annotations

import json
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from katib_core.models import Experiment, Trial
from katib_suggest import pbt
from pykatib_local import algorithms_e2e_test as examples
from pykatib_local import backend
from pykatib_local.runner import CHECKPOINTS_DIR
from pykatib_local.session import LocalSession

KATIB_DIR = "/var/log/katib/checkpoints/"
EPOCHS = 20

#: Accumulates "weights" (steps, accuracy += lr per epoch) across the lineage, and records where it ran.
TRAINING = """
    import json, os, sys
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
    lr, directory = float(args["lr"]), args["checkpoint"]
    path = os.path.join(directory, "training.ckpt")
    if os.path.exists(path):
        with open(path) as f:
            state = json.load(f)
    else:
        os.makedirs(directory, exist_ok=True)
        state = {"step": 0, "accuracy": 0.0, "lineage": []}
    state["started_at"], state["started_with"] = state["step"], state["accuracy"]
    for _ in range(int(args["epochs"])):
        state["step"] += 1
        state["accuracy"] += lr
    state["lineage"] = state["lineage"] + [os.environ["KATIB_TRIAL_NAME"]]
    state["directory"], state["model_env"] = directory, os.environ["MODEL_PATH"]
    with open(path, "w") as f:
        json.dump(state, f)
    print(f"Validation-accuracy={state['accuracy']:.6f}", flush=True)
"""


def simple_pbt() -> Experiment:
    """Katib's examples/v1beta1/hp-tuning/simple-pbt.yaml: two generations of 5, the stand-in script,
    and an env var naming a file under ``suggestion_trial_dir``."""
    container = {
        "name": "training-container",
        "image": "ignored",
        "command": [
            "python",
            "-c",
            textwrap.dedent(TRAINING),
            f"--epochs={EPOCHS}",
            "--lr=${trialParameters.learningRate}",
            f"--checkpoint={KATIB_DIR}",
        ],
        "env": [{"name": "MODEL_PATH", "value": f"{KATIB_DIR}model.pt"}],
    }
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"template": {"spec": {"containers": [container], "restartPolicy": "Never"}}},
    }
    return examples.pbt_example(job)


def lr(trial: Trial) -> float:
    assignments = (trial.spec.parameter_assignments if trial.spec else None) or []
    return float(next(a.value for a in assignments if a.name == "lr") or "nan")


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Trial]]:
    """One run of the Experiment (10 trial processes), shared by the assertions below."""
    with LocalSession(tmp_path_factory.mktemp("pbt") / "work") as session:
        created = session.store.create(backend.prepare(simple_pbt(), "default"))
        assert created.metadata is not None
        namespace, experiment = created.metadata.namespace or "", created.metadata.name or ""
        session.run(namespace, experiment, stop=threading.Event())
        trials = session.store.list_trials(namespace, experiment=experiment)
        return session.store.experiment_dir(namespace, experiment) / CHECKPOINTS_DIR, trials


def checkpoint(root: Path, trial: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / trial / "training.ckpt").read_text())
    return data


def name(trial: Trial) -> str:
    return (trial.metadata.name if trial.metadata else None) or ""


def labels(trial: Trial) -> dict[str, str]:
    return (trial.metadata.labels if trial.metadata else None) or {}


def test_every_trial_saves_its_checkpoint_in_its_own_directory(ran: tuple[Path, list[Trial]]) -> None:
    root, trials = ran
    assert len(trials) == 10
    for trial in trials:
        state, local = checkpoint(root, name(trial)), root / name(trial)
        assert state["directory"] == f"{local}/"  # --checkpoint=/var/log/katib/checkpoints/, rewritten
        assert state["model_env"] == f"{local}/model.pt"  # a path under it in the env, too
        assert state["lineage"][-1] == name(trial)


def test_a_generation_1_trial_continues_from_its_parents_checkpoint(ran: tuple[Path, list[Trial]]) -> None:
    root, trials = ran
    by_name = {name(t): t for t in trials}
    children = [t for t in trials if labels(t)[pbt.GENERATION_LABEL] == "1"]
    assert len(children) == 5
    for child in children:
        parent = labels(child)[pbt.PARENT_LABEL]
        assert labels(by_name[parent])[pbt.GENERATION_LABEL] == "0"
        mine, theirs = checkpoint(root, name(child)), checkpoint(root, parent)
        assert (theirs["started_at"], theirs["step"]) == (0, EPOCHS)  # generation 0 started from scratch
        assert (mine["started_at"], mine["step"]) == (EPOCHS, 2 * EPOCHS)  # the step count continues
        assert mine["started_with"] == theirs["accuracy"]
        assert mine["accuracy"] == pytest.approx(theirs["accuracy"] + EPOCHS * lr(child))
        assert mine["lineage"] == [parent, name(child)]
    assert {labels(c)[pbt.PARENT_LABEL] for c in children} <= set(by_name)


def test_the_parents_checkpoint_is_a_copy_the_child_does_not_change(ran: tuple[Path, list[Trial]]) -> None:
    root, trials = ran
    for trial in trials:
        if labels(trial)[pbt.GENERATION_LABEL] == "0":
            assert checkpoint(root, name(trial))["step"] == EPOCHS
