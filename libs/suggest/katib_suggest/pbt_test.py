from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from katib_core import search_algorithms, suggestions, testing
from katib_core.constants import TrialConditionType
from katib_core.models import Experiment, Trial, TrialAssignment
from katib_core.suggestions import SuggestionReply, SuggestionRequest, SuggestionTrial
from katib_suggest import Suggester, pbt

GEN, PARENT = pbt.GENERATION_LABEL, pbt.PARENT_LABEL
LR: dict[str, Any] = {"name": "lr", "parameterType": "double", "feasibleSpace": {"min": "0.0001", "max": "0.02"}}
OPT: dict[str, Any] = {"name": "opt", "parameterType": "categorical", "feasibleSpace": {"list": ["a", "b", "c", "d"]}}


def accuracy(values: dict[str, str]) -> float:
    return float(values["lr"])


@dataclass
class Loop:
    """The experiment loop's side: names and labels recorded as the reply gives them."""

    settings: dict[str, str] = field(default_factory=dict)
    objective: str = "maximize"
    parameters: list[dict[str, Any]] = field(default_factory=lambda: [LR, OPT])
    issued: list[TrialAssignment] = field(default_factory=list)
    trials: dict[str, SuggestionTrial] = field(default_factory=dict)

    def experiment(self) -> Experiment:
        settings = {"suggestion_trial_dir": "/tmp/ckpt", "n_population": "5", "truncation_threshold": "0.2"}
        return testing.experiment(
            "simple-pbt",
            algorithm="pbt",
            settings={**settings, **self.settings},
            parameters=self.parameters,
            parallel=5,
            max_trials=100,
            objective_type=self.objective,
        )

    def request(self, count: int) -> SuggestionRequest:
        experiment = self.experiment()
        return SuggestionRequest(
            experiment,
            tuple(self.trials.values()),
            tuple(self.issued),
            count,
            key=suggestions.experiment_key(experiment),
        )

    def ask(self, count: int = 100) -> SuggestionReply:
        reply = Suggester().suggest(self.request(count))  # a new one each time: nothing remembered
        assert len(reply.trial_names) == len(reply.labels) == len(reply.assignments)
        assert reply.exhausted is False
        for name, labels, assignment in zip(reply.trial_names, reply.labels, reply.assignments, strict=True):
            self.issued.append(TrialAssignment(name=name, parameter_assignments=list(assignment), labels=labels))
            pairs = tuple((a.name or "", a.value or "") for a in assignment)
            self.trials[name] = SuggestionTrial(name, pairs, TrialConditionType.RUNNING)
        return reply

    def finish(
        self, metric: Callable[[dict[str, str]], float] = accuracy, *, failed: frozenset[str] = frozenset()
    ) -> None:
        testing.finish_running(self.trials, metric, failed=failed)

    def generation(self, number: int) -> list[TrialAssignment]:
        return [a for a in self.issued if (a.labels or {}).get(GEN) == str(number)]


def values(assignment: TrialAssignment) -> dict[str, str]:
    return {a.name or "": a.value or "" for a in assignment.parameter_assignments or []}


def test_generation_zero_is_random_named_and_labelled_then_waits() -> None:
    loop = Loop()
    first = loop.ask(3)
    assert len(first.assignments) == 3
    assert all(name.startswith("simple-pbt-") and len(name) == len("simple-pbt-") + 8 for name in first.trial_names)
    assert first.labels == ({GEN: "0"},) * 3  # no parent in generation 0
    assert len(loop.ask(3).assignments) == 2  # the rest of the population
    assert loop.ask().assignments == ()  # the generation runs: waiting
    assert len({a.name for a in loop.issued}) == 5
    assert len({values(a)["lr"] for a in loop.issued}) == 5
    for assignment in loop.issued:
        assert 0.0001 <= float(values(assignment)["lr"]) <= 0.02
        assert values(assignment)["opt"] in {"a", "b", "c", "d"}


@pytest.mark.parametrize("objective", ["maximize", "minimize"])
def test_the_next_generation_exploits_the_best_and_explores_the_rest(objective: str) -> None:
    loop = Loop(objective=objective)
    loop.ask()
    loop.finish()
    ranked = sorted(loop.generation(0), key=lambda a: float(values(a)["lr"]), reverse=objective == "maximize")
    best, worst = ranked[0], ranked[-1]
    reply = loop.ask()
    assert len(reply.assignments) == 5
    children = loop.generation(1)
    assert len(children) == 5
    assert all(set((c.labels or {}).keys()) == {GEN, PARENT} for c in children)
    parents = [(c.labels or {})[PARENT] for c in children]
    # one exploit (int(5 * 0.2)): the worst is replaced by a copy of the best, checkpoint and all
    assert worst.name not in parents
    assert parents.count(best.name or "") == 2
    copies = [c for c in children if values(c) == values(best)]
    assert [(c.labels or {})[PARENT] for c in copies] == [best.name]
    # the others explore from their own checkpoint: lr x0.8 or x1.2 (clamped), opt to a neighbour
    by_name = {a.name: a for a in loop.generation(0)}
    for child in children:
        if child in copies:
            continue
        parent = values(by_name[(child.labels or {})[PARENT]])
        ratio = float(values(child)["lr"]) / float(parent["lr"])
        clamped = values(child)["lr"] in (LR["feasibleSpace"]["min"], LR["feasibleSpace"]["max"])
        assert clamped or ratio == pytest.approx(0.8) or ratio == pytest.approx(1.2)
        steps = ({"b", "d"}, {"a", "c"}, {"b", "d"}, {"a", "c"})  # cyclic neighbours
        assert values(child)["opt"] in steps[["a", "b", "c", "d"].index(parent["opt"])]


def test_generations_continue_and_stay_in_the_space() -> None:
    loop = Loop()
    for number in range(4):
        loop.ask()
        assert len(loop.generation(number)) == 5
        loop.finish()
    assert {(a.labels or {}).get(GEN) for a in loop.issued} == {"0", "1", "2", "3"}
    for assignment in loop.issued:
        assert 0.0001 <= float(values(assignment)["lr"]) <= 0.02
    # the population drifts to larger lr (the objective): generation 3's mean above generation 0's
    mean = [sum(float(values(a)["lr"]) for a in loop.generation(g)) / 5 for g in (0, 3)]
    assert mean[1] > mean[0]


def test_a_failed_trial_is_issued_again_with_its_lineage() -> None:
    loop = Loop()
    loop.ask()
    loop.finish()
    loop.ask()
    failed = loop.generation(1)[0]
    loop.finish(failed=frozenset({failed.name or ""}))
    retry = loop.ask()
    assert len(retry.assignments) == 1
    again = loop.issued[-1]
    assert again.name != failed.name
    assert values(again) == values(failed)
    assert again.labels == failed.labels
    assert loop.ask().assignments == ()  # the retry runs
    loop.finish()
    assert len(loop.ask().assignments) == 5  # generation 2


def test_answers_depend_only_on_the_request() -> None:
    loop = Loop(settings={"random_state": "3"})
    loop.ask()
    loop.finish()
    request = loop.request(100)
    first, second = Suggester().suggest(request), Suggester().suggest(request)
    assert first == second
    other = Loop(settings={"random_state": "3"})
    other.ask()
    assert [values(a) for a in other.issued] == [values(a) for a in loop.issued]
    assert [a.name for a in other.issued] == [a.name for a in loop.issued]


def test_without_random_state_the_experiment_seeds_it() -> None:
    one, two = Loop(), Loop()
    one.ask()
    two.ask()
    assert [values(a) for a in one.issued] == [values(a) for a in two.issued]  # same Experiment key


@pytest.mark.parametrize(("probability", "changed"), [("0", False), ("1", True)])
def test_resample_probability(probability: str, changed: bool) -> None:
    loop = Loop(settings={"resample_probability": probability}, parameters=[LR])
    loop.ask()
    loop.finish()
    loop.ask()
    by_name = {a.name: a for a in loop.generation(0)}
    explored = [c for c in loop.generation(1) if values(c) != values(by_name[(c.labels or {})[PARENT]])]
    if changed:  # resampled: any value of the space, not x0.8/x1.2
        assert len(explored) >= 3
        ratios = {
            round(float(values(c)["lr"]) / float(values(by_name[(c.labels or {})[PARENT]])["lr"]), 6) for c in explored
        }
        assert not ratios <= {0.8, 1.2}
    else:  # kept: explored children start from their parent with the same values
        assert explored == []


def test_an_int_with_a_step_stays_on_the_grid() -> None:
    layers = {"name": "layers", "parameterType": "int", "feasibleSpace": {"min": "2", "max": "20", "step": "2"}}
    loop = Loop(parameters=[layers])
    for _ in range(3):
        loop.ask()
        loop.finish(lambda v: float(v["layers"]))
    assert {int(values(a)["layers"]) % 2 for a in loop.issued} == {0}
    assert all(2 <= int(values(a)["layers"]) <= 20 for a in loop.issued)


def test_settings_parse_with_katibs_defaults() -> None:
    parsed = search_algorithms.parse_settings(Loop().experiment().spec.algorithm)  # type: ignore[union-attr]
    assert (parsed.n_population, parsed.truncation_threshold, parsed.resample_probability) == (5, 0.2, None)
    assert parsed.suggestion_trial_dir == "/tmp/ckpt"


def test_the_parents_checkpoint_is_copied_into_the_childs_directory(tmp_path: Path) -> None:
    root = tmp_path / "data"
    first = pbt.prepare_trial_dir(root, "exp", "exp-a", None)
    assert first == root / "exp" / "exp-a"
    assert first.is_dir()
    (first / "training.ckpt").write_text("step 20")
    child = pbt.prepare_trial_dir(root, "exp", "exp-b", "exp-a")
    assert (child / "training.ckpt").read_text() == "step 20"
    (child / "training.ckpt").write_text("step 40")
    assert (first / "training.ckpt").read_text() == "step 20"  # a copy: the parent keeps its own
    again = pbt.prepare_trial_dir(root, "exp", "exp-b", None)  # a retry starts clean
    assert list(again.iterdir()) == []


def labelled(name: str, labels: dict[str, str]) -> Trial:
    return Trial.from_api({"metadata": {"name": name, "namespace": "default", "labels": labels}})


def test_the_handover_names_the_setting_and_the_parent_label() -> None:
    experiment = Loop().experiment()
    child = labelled("simple-pbt-b", {GEN: "1", PARENT: "simple-pbt-a"})
    first = labelled("simple-pbt-a", {GEN: "0"})
    assert pbt.handover(experiment, child) == pbt.Handover("/tmp/ckpt", "simple-pbt-a")
    assert pbt.handover(experiment, first) == pbt.Handover("/tmp/ckpt", None)
    empty = Loop(settings={"suggestion_trial_dir": ""}).experiment()
    assert pbt.handover(empty, child) is None  # Katib's webhook mounts nothing then


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("--checkpoint=/var/ckpt/", "--checkpoint=/L/"),
        ("--checkpoint=/var/ckpt", "--checkpoint=/L"),
        ("/var/ckpt/model.pt", "/L/model.pt"),
        ("--in /var/ckpt --out /var/ckpt/x", "--in /L --out /L/x"),
        ("a:/var/ckpt:b", "a:/L:b"),
        ("/var/ckpt2", "/var/ckpt2"),  # another directory
        ("/var/ckpt.bak", "/var/ckpt.bak"),
        ("/data/var/ckpt", "/data/var/ckpt"),  # not the same path
        ("--lr=0.01", "--lr=0.01"),
    ],
)
def test_the_checkpoint_path_is_rewritten_where_it_stands_as_a_path(text: str, expected: str) -> None:
    assert pbt.rewrite_path(text, "/var/ckpt/", Path("/L")) == expected


def test_a_root_checkpoint_path_is_not_rewritten() -> None:
    assert pbt.rewrite_path("--checkpoint=/", "/", Path("/L")) == "--checkpoint=/"


def test_copy_parent_dir_copies_a_directory_and_starts_empty_without_one(tmp_path: Path) -> None:
    parent = tmp_path / "a"
    parent.mkdir()
    (parent / "training.ckpt").write_text("step 20")
    assert (pbt.copy_parent_dir(tmp_path / "b", parent) / "training.ckpt").read_text() == "step 20"
    assert list(pbt.copy_parent_dir(tmp_path / "c", tmp_path / "missing").iterdir()) == []
