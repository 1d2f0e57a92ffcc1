from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from katib_core import search_algorithms, suggestions, testing
from katib_core.constants import TrialConditionType
from katib_core.errors import ValidationError
from katib_core.models import Experiment, TrialAssignment
from katib_core.suggestions import SuggestionReply, SuggestionRequest, SuggestionTrial
from katib_suggest import Suggester
from katib_suggest.hyperband import Rung, schedule

PARAMS: list[dict[str, Any]] = [
    {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.01", "max": "0.05"}},
    {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["sgd", "adam", "rms"]}},
    {"name": "epochs", "parameterType": "int", "feasibleSpace": {"min": "1", "max": "1"}},
]


def loss(values: dict[str, str]) -> float:
    """Lower for small lr, and with more epochs."""
    return float(values["lr"]) / int(values["epochs"])


@dataclass
class Loop:
    """The experiment loop's side, in memory: the record, the trials, the settings round trip."""

    settings: dict[str, str]
    objective: str = "minimize"
    suggester: Suggester = field(default_factory=Suggester)
    issued: list[TrialAssignment] = field(default_factory=list)
    trials: dict[str, SuggestionTrial] = field(default_factory=dict)
    state: dict[str, str] = field(default_factory=dict)

    def experiment(self) -> Experiment:
        return testing.experiment(
            algorithm="hyperband",
            settings={**self.settings, **self.state},
            parameters=PARAMS,
            parallel=100,
            max_trials=1000,
            objective_type=self.objective,
        )

    def ask(self, count: int) -> SuggestionReply:
        experiment = self.experiment()
        reply = self.suggester.suggest(
            SuggestionRequest(
                experiment,
                tuple(self.trials.values()),
                tuple(self.issued),
                count,
                key=suggestions.experiment_key(experiment),
            )
        )
        for assignment in reply.assignments:
            name = f"t{len(self.issued)}"
            self.issued.append(TrialAssignment(name=name, parameter_assignments=list(assignment)))
            pairs = tuple((a.name or "", a.value or "") for a in assignment)
            self.trials[name] = SuggestionTrial(name, pairs, TrialConditionType.RUNNING)
        if reply.algorithm_settings is not None:
            self.state.update({s.name or "": s.value or "" for s in reply.algorithm_settings})
        return reply

    def finish(self, metric: Callable[[dict[str, str]], float] = loss, *, failed: frozenset[str] = frozenset()) -> None:
        testing.finish_running(self.trials, metric, failed=failed)

    def values(self, start: int = 0) -> list[dict[str, str]]:
        return [{a.name or "": a.value or "" for a in t.parameter_assignments or []} for t in self.issued[start:]]


def settings(eta: str = "3", r_l: str = "9", **more: str) -> dict[str, str]:
    return {"resource_name": "epochs", "eta": eta, "r_l": r_l, "random_state": "5", **more}


@pytest.mark.parametrize(
    ("eta", "r_l", "expected"),
    [
        (3, 9, [(2, 0, 9, "1"), (2, 1, 3, "3"), (2, 2, 1, "9"), (1, 0, 5, "3"), (1, 1, 2, "9"), (0, 0, 3, "9")]),
        (2, 2, [(1, 0, 2, "1"), (1, 1, 1, "2"), (0, 0, 2, "2")]),  # Katib's hyperband example
        # r_l not a power of eta: the last rung of a bracket gets r_l itself
        (3, 10, [(2, 0, 9, "1"), (2, 1, 3, "3"), (2, 2, 1, "10"), (1, 0, 5, "3"), (1, 1, 2, "10"), (0, 0, 3, "10")]),
        (
            3,
            81,
            [
                *[(4, i, size, str(3**i)) for i, size in enumerate([81, 27, 9, 3, 1])],
                *[(3, i, size, str(3 ** (i + 1))) for i, size in enumerate([34, 12, 4, 2])],
                *[(2, i, size, str(3 ** (i + 2))) for i, size in enumerate([15, 5, 2])],
                *[(1, i, size, str(3 ** (i + 3))) for i, size in enumerate([8, 3])],
                (0, 0, 5, "81"),
            ],
        ),
        (3, 1, [(0, 0, 1, "1")]),
    ],
)
def test_brackets_sizes_and_resources(eta: int, r_l: float, expected: list[tuple[int, int, int, str]]) -> None:
    assert [(r.s, r.i, r.size, r.resource) for r in schedule(eta, r_l)] == expected


def test_ten_to_the_third() -> None:
    rungs = schedule(10, 1000)
    assert [(r.s, r.i, r.size, r.resource) for r in rungs[:4]] == [
        (3, 0, 1000, "1"),
        (3, 1, 100, "10"),
        (3, 2, 10, "100"),
        (3, 3, 1, "1000"),
    ]
    assert len(rungs) == 4 + 3 + 2 + 1


def test_s_max_is_exact_for_powers() -> None:
    assert search_algorithms.hyperband_s_max(10, 1000) == 3  # Katib v0.19's float log says 2
    assert search_algorithms.hyperband_s_max(3, 243) == 5
    assert search_algorithms.hyperband_s_max(3, 242.9) == 4
    assert search_algorithms.hyperband_s_max(2, 1.5) == 0


def test_a_whole_run_promotes_the_best_waits_for_rungs_and_ends_exhausted() -> None:
    loop = Loop(settings())
    rungs = schedule(3, 9)
    for number, rung in enumerate(rungs):
        start = len(loop.issued)
        reply = loop.ask(100)
        assert len(reply.assignments) == rung.size
        new = loop.values(start)
        assert {v["epochs"] for v in new} == {rung.resource}
        if rung.i == 0:
            assert len({(v["lr"], v["opt"]) for v in new}) == rung.size  # fresh random configurations
        else:  # the best of the rung before, by loss, best first
            before = loop.values(start - rungs[number - 1].size)[: rungs[number - 1].size]
            best = sorted(before, key=loss)[: rung.size]
            assert [(v["lr"], v["opt"]) for v in new] == [(v["lr"], v["opt"]) for v in best]
        assert reply.exhausted is (number == len(rungs) - 1)
        if number + 1 < len(rungs) and rungs[number + 1].i > 0:
            waiting = loop.ask(100)  # the rung runs: nothing to promote yet
            assert (waiting.assignments, waiting.exhausted) == ((), False)
        loop.finish()
    assert len(loop.issued) == 23
    final = loop.ask(5)
    assert (final.assignments, final.exhausted) == ((), True)
    assert loop.state["current_s"] == "-1"


def test_the_waiting_rung_and_katibs_state_settings() -> None:
    loop = Loop(settings())
    assert len(loop.ask(100).assignments) == 9
    katib = {
        "eta": "3",
        "s_max": "2",
        "r_l": "9.0",
        "b_l": "27.0",
        "r": "1.0",
        "n": "9",
        "current_s": "2",
        "current_i": "0",
        "resource_name": "epochs",
        "evaluating_trials": "9",
    }
    assert loop.state == katib
    # the state round-trips through the settings parser (the request's Experiment carries it)
    assert search_algorithms.parse_settings(loop.experiment().spec.algorithm).eta == 3  # type: ignore[union-attr]
    assert loop.ask(100).assignments == ()
    assert loop.state == katib  # waiting on the same 9
    loop.finish()
    loop.trials["t0"] = SuggestionTrial("t0", loop.trials["t0"].assignments, TrialConditionType.RUNNING)
    assert loop.ask(100).assignments == ()  # one trial of the rung still runs
    loop.finish()
    assert len(loop.ask(100).assignments) == 3
    assert (loop.state["current_s"], loop.state["current_i"], loop.state["evaluating_trials"]) == ("2", "1", "3")
    loop.finish()
    loop.ask(100)
    # the bracket's last rung issued: Katib moves on to the next bracket
    assert (loop.state["current_s"], loop.state["current_i"], loop.state["n"], loop.state["r"]) == (
        "1",
        "0",
        "5",
        "3.0",
    )


def test_promotion_follows_the_objective_direction() -> None:
    def accuracy(values: dict[str, str]) -> float:
        return float(values["lr"])

    loop = Loop(settings(), objective="maximize")
    loop.ask(100)
    first = loop.values()
    loop.finish(accuracy)
    loop.ask(100)
    promoted = [v["lr"] for v in loop.values(9)]
    assert promoted == sorted((v["lr"] for v in first), key=float, reverse=True)[:3]


def test_failed_trials_are_not_promoted_and_a_rung_may_shrink() -> None:
    loop = Loop(settings())
    loop.ask(100)
    loop.finish(failed=frozenset(f"t{i}" for i in range(8)))
    reply = loop.ask(100)
    assert [{a.name: a.value for a in x}["lr"] for x in reply.assignments] == [loop.values()[8]["lr"]]
    loop.finish()
    assert len(loop.ask(100).assignments) == 1  # the last rung of the bracket: the only survivor again
    loop.finish()
    assert {v["epochs"] for v in loop.values()[-1:]} == {"9"}
    assert len(loop.ask(100).assignments) == 5  # the next bracket


def test_small_batches_give_the_same_trials_as_one_big_batch() -> None:
    big, small = Loop(settings()), Loop(settings())
    for _ in range(5):
        while big.ask(100).assignments:
            pass
        while small.ask(2).assignments:
            pass
        big.finish()
        small.finish()
    assert small.values() == big.values()
    assert len(big.values()) == 9 + 3 + 1 + 5 + 2 + 3


def test_no_duplicate_after_the_state_is_lost_stale_or_replayed() -> None:
    reference = Loop(settings())
    for _ in range(4):
        reference.ask(100)
        reference.finish()

    lossy = Loop(settings(), suggester=Suggester())
    stale: dict[str, str] = {}
    for step in range(4):
        lossy.state = dict(stale) if step % 2 else {}  # lost, or the state of the first reply
        before = len(lossy.issued)
        lossy.ask(100)
        if step == 0:
            stale = dict(lossy.state)
        again = lossy.suggester.suggest(  # the same request once more (a reconcile retried): same answer
            SuggestionRequest(
                lossy.experiment(),
                tuple(lossy.trials.values()),
                tuple(lossy.issued[:before]),
                100,
                key=suggestions.experiment_key(lossy.experiment()),
            )
        )
        assert [list(a) for a in again.assignments] == [t.parameter_assignments for t in lossy.issued[before:]]
        lossy.finish()
    assert lossy.values() == reference.values()
    rungs = [(v["lr"], v["opt"], v["epochs"]) for v in lossy.values()]
    assert len(rungs) == len(set(rungs))


def test_a_trial_not_created_yet_counts_as_running() -> None:
    loop = Loop(settings())
    loop.ask(100)
    loop.finish()
    del loop.trials["t3"]  # issued, no Trial yet
    assert loop.ask(100).assignments == ()


def test_the_resource_must_be_a_parameter() -> None:
    loop = Loop(settings())
    loop.settings["resource_name"] = "batch"
    with pytest.raises(ValidationError, match="resource_name"):
        loop.ask(1)


def test_rung_is_a_value() -> None:
    assert Rung(0, 0, 3, "9") == schedule(3, 9)[-1]
