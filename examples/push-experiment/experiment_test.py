"""The Push Experiment YAML runs unchanged with `pykatib run --local`: 12 trials, per-epoch pushes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from katib_core.models import Experiment
from pykatib_local import cli
from pykatib_local.session import LocalSession

YAML = Path("examples/push-experiment/experiment.yaml")


def test_the_push_yaml_runs_locally_to_max_trial_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert YAML.is_file(), "run from the build root, as the YAML's command expects"
    code = cli.main(["--workdir", str(tmp_path / "work"), "run", str(YAML), "--local", "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "container images are ignored" in captured.err or "image" in captured.err
    assert "lr" in captured.out
    assert "optimizer" in captured.out  # the trials table / best assignment

    with LocalSession(tmp_path / "work") as session:
        final = session.store.get(Experiment, "default", "push-quadratic")
        trials = session.store.list_trials("default", experiment="push-quadratic")
        assert final.status is not None
        assert final.status.trials_succeeded == 12
        assert len(trials) == 12
        for trial in trials:
            names = [log.metric.name for log in session.db.get(trial.metadata.name or "", timeout=10)]  # type: ignore[union-attr]
            assert names.count("loss") == 8
            assert names.count("accuracy") == 8  # one per epoch, pushed


def test_the_yaml_is_a_plain_katib_experiment() -> None:
    """Nothing pykatib-specific in it: Push collector, batch Job, Katib's placeholders."""
    document = yaml.safe_load(YAML.read_text())
    assert document["apiVersion"] == "kubeflow.org/v1beta1"
    assert document["spec"]["metricsCollectorSpec"]["collector"]["kind"] == "Push"
    Experiment.from_api(document)
