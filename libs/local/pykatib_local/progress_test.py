"""What a run shows when stdout is no terminal: one line per finished trial, counted in order."""

from __future__ import annotations

import io

from rich.console import Console

from katib_core import testing
from pykatib_local.progress import ProgressView
from pykatib_local.runner import Progress


def lines_of(*snapshots: Progress) -> list[str]:
    out = io.StringIO()
    with ProgressView("exp", console=Console(file=out, force_terminal=False, width=200)) as view:
        for snapshot in snapshots:
            view.show(snapshot)
    return out.getvalue().splitlines()


def test_trials_finishing_between_two_snapshots_each_get_their_own_count() -> None:
    experiment = testing.experiment(max_trials=4)
    running = [testing.trial(f"exp-{i}", "Created", "Running") for i in range(3)]
    first = Progress(experiment, tuple(running))
    two_done = Progress(
        experiment,
        (
            testing.trial("exp-0", "Created", "Succeeded", loss="0.5"),
            testing.trial("exp-1", "Created", "Failed"),
            running[2],
        ),
    )
    all_done = Progress(experiment, (*two_done.trials[:2], testing.trial("exp-2", "Created", "Succeeded", loss="0.25")))

    assert lines_of(first, two_done, two_done, all_done) == [
        "exp: trial exp-0 Succeeded loss=0.5 (1/4 done)",
        "exp: trial exp-1 Failed Failed (2/4 done)",
        "exp: trial exp-2 Succeeded loss=0.25 (3/4 done)",
    ]
