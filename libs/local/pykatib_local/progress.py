"""How a running local Experiment shows itself: the CLI and the SDK's waits share this view.

In a terminal or a Jupyter notebook: a live bar (trials done of the budget, running and failed
counts, the best value so far). Anywhere else (a log file, CI, a pipe): one line per finished
trial, with its value or the reason it failed — nothing that redraws.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from katib_core import trial_conditions, trial_results
from pykatib_local import summaries
from pykatib_local.runner import Progress as RunProgress


class ProgressView:
    """``show(progress)`` after each runner pass; a context manager around the run."""

    def __init__(self, name: str, *, console: Console | None = None) -> None:
        self._name = name
        self._console = console or Console(stderr=True)
        self._live = self._console.is_terminal or self._console.is_jupyter
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._reported: set[str] = set()

    def __enter__(self) -> ProgressView:
        if self._live:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=self._console,
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(escape(self._name), total=None, detail="")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(kind, error, trace)
            self._bar = None

    def show(self, progress: RunProgress) -> None:
        counts = summaries.counts(progress.experiment, progress.trials)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=counts.budget, completed=counts.done, detail=counts.line)
            return
        metric = trial_results.objective_metric(progress.experiment)
        finished = [
            (name, trial)
            for trial in progress.trials
            if (name := (trial.metadata.name if trial.metadata else None) or "") not in self._reported
            and trial_conditions.is_completed(trial.status)
        ]
        budget = "" if counts.budget is None else f"/{counts.budget}"
        # Trials that finished between two snapshots each get their own running count.
        for done, (name, trial) in enumerate(finished, start=counts.done - len(finished) + 1):
            self._reported.add(name)
            (row,) = trial_results.trial_rows(progress.experiment, [trial])
            value = row.metrics.get(metric, "")
            outcome = f"{metric}={summaries.for_people(value)}" if value else row.reason
            self._console.print(
                f"{self._name}: trial {name} {row.status} {outcome} ({done}{budget} done)",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )


__all__ = ["ProgressView"]
