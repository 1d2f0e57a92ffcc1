"""The quickstart runs as the README says: 16 Push trials, every one Succeeded, best printed."""

from __future__ import annotations

from pathlib import Path

import pytest
import quickstart

import pykatib as katib


def test_quickstart_finds_a_minimum_of_himmelblau(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYKATIB_WORKDIR", str(tmp_path / "work"))
    assert quickstart.main() == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("best trial quickstart-"), line
    loss = float(line.split("loss=")[1].split()[0])
    assert loss < 20  # Himmelblau's minima are 0; TPE over 16 trials lands near one

    client = katib.KatibClient(backend="local")
    trials = client.list_trials("quickstart")
    assert len(trials) == 16
    assert all(
        t.status and any(c.type == "Succeeded" and c.status == "True" for c in t.status.conditions or [])
        for t in trials
    )
    best = client.get_optimal_hyperparameters("quickstart")
    assert best is not None
    assert best.best_trial_name
    assert best.best_trial_name in line
    # Every value came through report_metrics → the in-process DB manager.
    assert [m.metric.name for m in client.get_trial_metrics(best.best_trial_name or "")] == ["loss"]
    # Rerunning starts afresh (the script deletes its previous experiment).
    assert quickstart.main() == 0
    assert len(client.list_trials("quickstart")) == 16
