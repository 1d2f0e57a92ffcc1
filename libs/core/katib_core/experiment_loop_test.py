"""The experiment loop against an in-memory port and a scripted algorithm: what an algorithm's
waiting, names and returned settings do to the record (hyperband and PBT rely on these)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from katib_core import suggestions, testing
from katib_core.constants import TrialConditionType
from katib_core.events import Event
from katib_core.experiment_loop import ExperimentLoop
from katib_core.models import AlgorithmSetting, Experiment, ExperimentStatus, ParameterAssignment, Suggestion, Trial


class Port:
    def __init__(self) -> None:
        self.suggestion_writes = 0
        self.record: Suggestion | None = None
        self.trials: list[Trial] = []

    def save_suggestion(self, record: Suggestion, *, create: bool) -> Suggestion:
        self.suggestion_writes += 1
        self.record = record
        return record

    def create_trials(self, namespace: str, trials: Sequence[Trial]) -> list[Trial]:
        self.trials.extend(trials)
        return list(trials)

    def save_status(self, experiment: Experiment, status: ExperimentStatus) -> Experiment:
        return experiment.model_copy(update={"status": status})

    def objective_values(self, namespace: str, trial: str, metric: str) -> list[str]:
        return []

    def template(self, experiment: Experiment) -> Mapping[str, Any] | None:
        return None

    def event(self, experiment: Experiment, event: Event) -> None:
        pass


class Script:
    """Answers the queued replies in order and keeps each request it was given."""

    def __init__(self, *replies: suggestions.SuggestionReply) -> None:
        self.replies = list(replies)
        self.requests: list[suggestions.SuggestionRequest] = []

    def suggest(self, request: suggestions.SuggestionRequest) -> suggestions.SuggestionReply:
        self.requests.append(request)
        return self.replies.pop(0)

    def forget(self, key: str) -> None:
        pass


def _point(value: str) -> tuple[ParameterAssignment, ...]:
    return (ParameterAssignment(name="lr", value=value),)


def _loop(script: Script) -> tuple[ExperimentLoop, Port]:
    port = Port()
    return ExperimentLoop(port, script, now=lambda: testing.T0, rng=random.Random(0)), port


def test_names_labels_and_settings_of_a_reply_reach_the_trials_and_the_next_request() -> None:
    experiment = testing.experiment(max_trials=4, parallel=2, algorithm="random")
    script = Script(
        suggestions.SuggestionReply(
            assignments=(_point("0.02"), _point("0.03")),
            trial_names=("exp-g0-a", "exp-g0-b"),
            labels=({"gen": "0"}, {"gen": "0"}),
            algorithm_settings=(AlgorithmSetting(name="state", value="1"),),
        ),
        suggestions.SuggestionReply(assignments=(_point("0.04"),)),
    )
    loop, port = _loop(script)
    first = loop.run_pass(experiment, [], None)
    assert [t.metadata.name for t in first.created if t.metadata] == ["exp-g0-a", "exp-g0-b"]
    assert all(t.metadata and (t.metadata.labels or {}).get("gen") == "0" for t in first.created)
    done = testing.trial("exp-g0-a", TrialConditionType.SUCCEEDED, loss="0.5")
    running = testing.trial("exp-g0-b", TrialConditionType.RUNNING)
    loop.run_pass(first.experiment, [done, running], first.suggestion)
    shown = script.requests[1].experiment
    assert shown.spec is not None
    assert shown.spec.algorithm is not None
    assert ("state", "1") in [(s.name, s.value) for s in shown.spec.algorithm.algorithm_settings or ()]


def test_an_empty_answer_while_trials_run_writes_nothing_and_asks_again_later() -> None:
    experiment = testing.experiment(max_trials=4, parallel=2)
    script = Script(
        suggestions.SuggestionReply(assignments=(_point("0.02"), _point("0.03"))),
        suggestions.SuggestionReply(),  # waiting for the running trial
        suggestions.SuggestionReply(assignments=(_point("0.05"),)),
    )
    loop, port = _loop(script)
    first = loop.run_pass(experiment, [], None)
    names = [t.metadata.name or "" for t in first.created if t.metadata]
    writes = port.suggestion_writes
    trials = [testing.trial(names[0], TrialConditionType.SUCCEEDED, loss="0.5"), testing.trial(names[1], "Running")]
    waiting = loop.run_pass(first.experiment, trials, first.suggestion)
    assert port.suggestion_writes == writes
    assert not waiting.created
    assert not waiting.finished
    assert not suggestions.is_exhausted(waiting.suggestion)
    again = loop.run_pass(waiting.experiment, trials, waiting.suggestion)
    assert len(again.created) == 1
    assert len(script.requests) == 3


def test_an_empty_answer_with_nothing_running_ends_the_search() -> None:
    experiment = testing.experiment(max_trials=4, parallel=2)
    script = Script(suggestions.SuggestionReply(assignments=(_point("0.02"),)), suggestions.SuggestionReply())
    loop, port = _loop(script)
    first = loop.run_pass(experiment, [], None)
    name = first.created[0].metadata.name if first.created[0].metadata else ""
    ended = loop.run_pass(
        first.experiment, [testing.trial(name or "", TrialConditionType.SUCCEEDED, loss="0.1")], first.suggestion
    )
    assert suggestions.is_exhausted(ended.suggestion)
