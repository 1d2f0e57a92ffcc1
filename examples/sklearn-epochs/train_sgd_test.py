"""The scikit-learn example: real training, 12 epochs of pushed curves per trial, best accuracy chosen."""

from __future__ import annotations

from pathlib import Path

import pytest
import train_sgd

import pykatib as katib


def test_sgd_trials_push_a_curve_per_epoch_and_the_best_is_their_peak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYKATIB_WORKDIR", str(tmp_path / "work"))
    assert train_sgd.main(max_trial_count=6) == 0
    assert "best trial sklearn-epochs-" in capsys.readouterr().out

    client = katib.KatibClient(backend="local")
    best = client.get_optimal_hyperparameters("sklearn-epochs")
    assert best is not None
    assert best.best_trial_name
    logs = client.get_trial_metrics(best.best_trial_name)
    accuracy = [float(m.metric.value) for m in logs if m.metric.name == "accuracy"]
    assert len(accuracy) == 12
    assert len([m for m in logs if m.metric.name == "val-loss"]) == 12
    assert best.observation is not None
    reported = next(m for m in best.observation.metrics or [] if m.name == "accuracy")
    assert float(reported.max or "nan") == max(accuracy)  # objective strategy: max over the epochs
    assert max(accuracy) > 0.85  # SGD on digits learns something with any sane setting TPE picks
    assert len(client.list_trials("sklearn-epochs")) == 6
