"""The experiment loop, once: one pass over an Experiment, written against a port.

The experiment controller and local mode are adapters around ``ExperimentLoop``: each reads the
Experiment, its Trials and its Suggestion record from its own store (the controller's API caches;
the local work directory), calls ``run_pass`` and shows the outcome its own way (Events; a
progress bar). The decisions and the order of the writes live here, so the two cannot drift.

Order matters for restart safety: the Suggestion record (with the new trial names) is written
before any Trial is created from it, and Trials are created by those names, so a crash between
any two writes repeats work (the create finds the Trial) but never duplicates a Trial.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from katib_core import early_stopping, planning, suggestions
from katib_core.constants import SuggestionConditionType
from katib_core.errors import ValidationError
from katib_core.events import WARNING, Event
from katib_core.models import Experiment, ExperimentStatus, Suggestion, Trial


class ExperimentPort(Protocol):
    """Where an adapter keeps Experiments, Suggestions and Trials (all writes go through here)."""

    def save_suggestion(self, record: Suggestion, *, create: bool) -> Suggestion:
        """Create (``create``) or update the Suggestion record with its status; the stored copy."""

    def create_trials(self, namespace: str, trials: Sequence[Trial]) -> list[Trial]:
        """Create ``trials`` (one that exists already is left as it is); the ones created."""

    def save_status(self, experiment: Experiment, status: ExperimentStatus) -> Experiment:
        """Write the Experiment's status; the stored Experiment."""

    def objective_values(self, namespace: str, trial: str, metric: str) -> list[str]:
        """A trial's values of ``metric`` in report order (medianstop's input)."""

    def template(self, experiment: Experiment) -> Mapping[str, Any] | None:
        """The trial template of a ``trialTemplate.configMap`` (None: the Experiment has it inline)."""

    def event(self, experiment: Experiment, event: Event) -> None:
        """Post an Event about the Experiment (an adapter without Events may drop it)."""


class Algorithm(Protocol):
    """The suggestion algorithm (``katib_suggest.Suggester`` in-process)."""

    def suggest(self, request: suggestions.SuggestionRequest) -> suggestions.SuggestionReply: ...

    def forget(self, key: str) -> None: ...


@dataclass(frozen=True)
class Pass:
    """What one pass did."""

    experiment: Experiment
    trials: tuple[Trial, ...]
    suggestion: Suggestion
    #: Trials created in this pass.
    created: tuple[Trial, ...]
    #: Complete and no trial active: nothing changes until the spec does.
    finished: bool
    #: The algorithm refused the request (a permanent error): the Suggestion and Experiment are Failed.
    suggestion_error: str | None = None


class ExperimentLoop:
    """One pass at a time over any Experiment of ``port``; keeps what never changes between passes.

    Args:
        port: the adapter's store.
        algorithm: the suggestion algorithm.
        now: the current time, RFC 3339 (injected so tests can fix it).
        rng: trial-name randomness.
    """

    def __init__(
        self, port: ExperimentPort, algorithm: Algorithm, *, now: Callable[[], str], rng: random.Random | None = None
    ) -> None:
        self._port = port
        self._algorithm = algorithm
        self._now = now
        self._rng = rng or random.Random()
        #: (namespace/trial, metric) → its values; a succeeded trial's logs never change: read once.
        self._succeeded_values: dict[tuple[str, str], list[str]] = {}

    def run_pass(self, experiment: Experiment, trials: Sequence[Trial], record: Suggestion | None) -> Pass:
        """Plan ``experiment`` (with its Trials and Suggestion record, None if not created), ask the
        algorithm for what the plan requests, write the record, create Trials, write the status.

        Raises:
            ValidationError: a Trial cannot be rendered, or the template cannot be read (permanent).
        """
        now = self._now()
        template = self._port.template(experiment)
        plan = planning.plan_experiment(experiment, trials, record, now=now, template=template)
        if plan.suggestion_changed:
            record = self._port.save_suggestion(plan.suggestion, create=record is None)
        error = None
        if plan.request is not None:
            current = record or plan.suggestion
            try:
                reply = self._algorithm.suggest(plan.request)
            except ValidationError as exc:
                # As Katib: the Suggestion fails, so the Experiment does (planned again at once).
                error = str(exc)
                failed = suggestions.mark(
                    current, SuggestionConditionType.FAILED, suggestions.REASON_FAILED, error, now=now
                )
                record = self._port.save_suggestion(failed, create=False)
                self._port.event(plan.experiment, Event(WARNING, "SuggestionFailed", error))
                plan = planning.plan_experiment(experiment, trials, record, now=now, template=template)
            else:
                if suggestions.is_idle(reply, current):
                    if plan.summary.active or plan.trials_to_create:
                        # Waiting for running trials (hyperband's rung): no write, so no hot loop.
                        return self._finish(experiment, trials, plan, record)
                    reply = suggestions.SuggestionReply(exhausted=True)  # nothing runs: it never will answer
                taken = [t.metadata.name for t in trials if t.metadata and t.metadata.name]
                rules = early_stopping.median_stop_rules(plan.experiment, self._succeeded(plan.experiment, trials))
                recorded = suggestions.record(
                    current, plan.experiment, reply, taken=taken, rng=self._rng, now=now, early_stopping_rules=rules
                )
                record = self._port.save_suggestion(recorded, create=False)
                plan = planning.with_recorded(plan, record, template=template)
        return self._finish(experiment, trials, plan, record, error=error)

    def _finish(
        self,
        experiment: Experiment,
        trials: Sequence[Trial],
        plan: planning.ExperimentPlan,
        record: Suggestion | None,
        *,
        error: str | None = None,
    ) -> Pass:
        """Create the plan's Trials, write the status, post the events."""
        namespace = (experiment.metadata.namespace if experiment.metadata else None) or ""
        created = self._port.create_trials(namespace, plan.trials_to_create) if plan.trials_to_create else []
        if planning.status_changed(experiment.status, plan.status):
            experiment = self._port.save_status(experiment, plan.status)
        for event in plan.events:
            self._port.event(plan.experiment, event)
        if plan.finished and suggestions.is_succeeded(plan.suggestion):
            self._algorithm.forget(suggestions.experiment_key(plan.experiment))
        return Pass(
            experiment=experiment,
            trials=(*trials, *created),
            suggestion=record or plan.suggestion,
            created=tuple(created),
            finished=plan.finished,
            suggestion_error=error,
        )

    def _succeeded(self, experiment: Experiment, trials: Sequence[Trial]) -> list[list[str]]:
        """Per succeeded Trial, its objective values in report order (only with ``earlyStopping``)."""
        metric, names = early_stopping.succeeded_trials(experiment, trials)
        if not metric:
            return []
        namespace = (experiment.metadata.namespace if experiment.metadata else None) or ""
        found = []
        for name in names:
            key = (f"{namespace}/{name}", metric)
            if key not in self._succeeded_values:
                self._succeeded_values[key] = self._port.objective_values(namespace, name, metric)
            found.append(self._succeeded_values[key])
        return found


__all__ = ["Algorithm", "ExperimentLoop", "ExperimentPort", "Pass"]
