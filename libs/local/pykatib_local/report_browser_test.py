"""The HTML report, rendered by a real browser (headless Chromium): plots drawn, every trial shown."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pykatib_local import cli
from pykatib_local.local_test import PUSH, experiment, run
from pykatib_local.session import LocalSession


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is missing: build-support/browser.sh installs Debian's chromium"
    return found


def render(page: Path, tmp_path: Path) -> tuple[str, str]:
    """The page's DOM after its scripts ran, and the browser's console log."""
    done = subprocess.run(
        [
            chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-unsafe-swiftshader",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=15000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, done.stderr


def test_the_report_draws_its_plots_and_lists_every_trial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    with LocalSession(work) as session:
        final = run(session, experiment("report", PUSH, maxTrialCount=5))
        trials = [t.metadata.name for t in session.store.list_trials("default", experiment="report") if t.metadata]
        best = final.status.current_optimal_trial.best_trial_name  # type: ignore[union-attr]
    assert cli.main(["--workdir", str(work), "report", "report"]) == 0
    page = Path(capsys.readouterr().out.strip())
    assert page.is_file()

    dom, console = render(page, tmp_path)
    assert "Uncaught" not in console, console[-3000:]
    # plotly drew each figure: an SVG root per plot ("main-svg"), and its traces.
    assert len(re.findall(r'class="plot-container plotly"', dom)) == 3, dom[:2000]
    assert dom.count('class="main-svg"') >= 3
    assert dom.count('class="scatterlayer') >= 2  # objective per trial, metric curves
    assert "parcoords" in dom  # parameters against the objective
    for name in trials:
        assert name
        assert name in dom
    assert best
    assert best in dom
    assert len(trials) == 5
