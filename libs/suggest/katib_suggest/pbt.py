"""Katib's ``pbt``: population-based training in generations of ``n_population`` trials (docs/algorithms.md#pbt).

Generation 0 is ``n_population`` random configurations. Once every trial of a generation is over,
the next one is planned from its results, as Katib's PBT service segments its pool: trials below
the ``truncation_threshold`` quantile are replaced (exploit: a random trial at or above the
``1 - truncation_threshold`` quantile lends its hyperparameters and its checkpoint), the others
are explored (each value multiplied by 0.8 or 1.2 and clamped, a categorical moved to a
neighbour — or, with ``resample_probability``, resampled with that probability). Each new trial
continues from its parent's checkpoint. A Failed or Killed trial is issued again (same
configuration, generation and parent).

Lineage travels as Katib's labels on each trial: ``pbt.suggestion.katib.kubeflow.org/generation``
and ``…/parent`` (the trial whose checkpoint it starts from), and the algorithm names its trials.
Like hyperband, the state is derived on every call from the issued assignments (their labels) and
the trials' outcomes: the plan of a generation is a pure function of the seed and the previous
generation's results, so re-deriving it after a restart gives the plan already issued.
"""

from __future__ import annotations

import math
import random
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from optuna.distributions import BaseDistribution

from katib_core import constants, rendering, search_algorithms
from katib_core.models import Experiment, ParameterAssignment, ParameterSpec, Trial, TrialAssignment
from katib_core.suggestions import SuggestionReply, SuggestionRequest
from katib_suggest import outcomes, spaces

GENERATION_LABEL: Final = "pbt.suggestion.katib.kubeflow.org/generation"
PARENT_LABEL: Final = "pbt.suggestion.katib.kubeflow.org/parent"
SUGGESTION_TRIAL_DIR: Final = "suggestion_trial_dir"
DEFAULT_TRIAL_DIR: Final = "/var/log/katib/checkpoints/"
DEFAULT_POPULATION: Final = 40
DEFAULT_TRUNCATION: Final = 0.2
ParameterType = constants.ParameterType


@dataclass(frozen=True)
class Slot:
    """One planned trial of a generation: its assignment values (parameter order) and parent ("" for none)."""

    values: tuple[tuple[str, str], ...]
    parent: str = ""


@dataclass(frozen=True)
class _Member:
    name: str
    slot: Slot
    score: float | None


def suggest(request: SuggestionRequest, parsed: search_algorithms.Settings) -> SuggestionReply:
    """The unissued (or failed) trials of the current generation; none, not exhausted, while it runs."""
    spec = request.experiment.spec
    parameters = list((spec.parameters if spec else None) or ())
    distributions = spaces.distributions(parameters)
    seed = outcomes.seed(request, parsed.random_state)
    known = outcomes.outcomes(request)
    generations: dict[int, list[TrialAssignment]] = {}
    for assignment in request.issued:
        generations.setdefault(_generation(assignment), []).append(assignment)
    generation = 0
    plan = [_random_slot(distributions, _rng(seed, 0, index)) for index in range(_population(parsed))]
    while True:
        entries = generations.get(generation, [])
        todo, pool, running = _progress(plan, entries, known, list(distributions))
        if todo or running:
            return _reply(request, todo[: request.count], generation, seed)
        plan = _next_generation(pool, parameters, distributions, parsed, random.Random(f"{seed}:{generation + 1}"))
        generation += 1


def _population(parsed: search_algorithms.Settings) -> int:
    return parsed.n_population if parsed.n_population is not None else DEFAULT_POPULATION


def _generation(assignment: TrialAssignment) -> int:
    """The generation label; 0 without one (an assignment this algorithm did not label)."""
    text = (assignment.labels or {}).get(GENERATION_LABEL, "0")
    return int(text) if text.isdigit() else 0


def _slot_of(assignment: TrialAssignment, order: list[str]) -> Slot:
    values = outcomes.values_of(assignment.parameter_assignments)
    return Slot(tuple((n, values.get(n, "")) for n in order), (assignment.labels or {}).get(PARENT_LABEL, ""))


def _progress(
    plan: Sequence[Slot], entries: Sequence[TrialAssignment], known: dict[str, outcomes.Outcome], order: list[str]
) -> tuple[list[Slot], list[_Member], bool]:
    """The plan's slots still to issue (never issued, or only failed), the finished members, whether any runs.

    Issued trials match slots by configuration and parent: identical slots are interchangeable.
    """
    done: Counter[Slot] = Counter()
    active: Counter[Slot] = Counter()
    pool = []
    for entry in entries:
        outcome = known[entry.name or ""]
        slot = _slot_of(entry, order)
        if outcome.state == "done":
            done[slot] += 1
            pool.append(_Member(entry.name or "", slot, outcome.score))
        elif outcome.state == "active":
            active[slot] += 1
    running = sum(active.values()) > 0
    todo = []
    for slot in plan:
        if done[slot] > 0:
            done[slot] -= 1
        elif active[slot] > 0:
            active[slot] -= 1
        else:
            todo.append(slot)
    return todo, pool, running


def _next_generation(
    pool: Sequence[_Member],
    parameters: Sequence[ParameterSpec],
    distributions: dict[str, BaseDistribution],
    parsed: search_algorithms.Settings,
    rng: random.Random,
) -> list[Slot]:
    """Katib's segmentation of a finished generation into exploited and explored trials."""
    population = _population(parsed)
    threshold = parsed.truncation_threshold if parsed.truncation_threshold is not None else DEFAULT_TRUNCATION
    finite = [m.score for m in pool if m.score is not None]
    floor = min(finite) - 1 if finite else 0.0  # a trial without a value ranks below every other
    score = {m.name: m.score if m.score is not None else floor for m in pool}
    ordered = sorted(score.values())
    lower, upper = _quantile(ordered, threshold), _quantile(ordered, 1 - threshold)
    exploit = [m for m in pool if score[m.name] < lower]
    explore = [m for m in pool if score[m.name] >= lower]
    donors = [m for m in pool if score[m.name] >= upper]
    rng.shuffle(exploit)
    rng.shuffle(explore)
    exploit = exploit[: int(population * threshold)]
    explore = explore[: population - len(exploit)]
    slots = []
    for _ in exploit:
        donor = rng.choice(donors)
        slots.append(Slot(donor.slot.values, donor.name))
    for member in explore:
        slots.append(Slot(_explore(member.slot.values, parameters, distributions, parsed, rng), member.name))
    return slots


def _quantile(ordered: Sequence[float], q: float) -> float:
    """numpy's default (linear) quantile of sorted values, as Katib's service computes it."""
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _explore(
    values: tuple[tuple[str, str], ...],
    parameters: Sequence[ParameterSpec],
    distributions: dict[str, BaseDistribution],
    parsed: search_algorithms.Settings,
    rng: random.Random,
) -> tuple[tuple[str, str], ...]:
    if parsed.resample_probability is None:
        by_name = {p.name: p for p in parameters}
        return tuple((name, _perturb(value, by_name[name], rng)) for name, value in values)
    fresh = dict(_random_slot(distributions, rng).values)
    return tuple((name, fresh[name] if rng.random() < parsed.resample_probability else value) for name, value in values)


def _perturb(value: str, parameter: ParameterSpec, rng: random.Random) -> str:
    """x0.8 or x1.2 within [min, max] (on the step's grid); a categorical's neighbour, cyclically."""
    space = parameter.feasible_space
    kind = parameter.parameter_type
    if kind in (ParameterType.CATEGORICAL, ParameterType.DISCRETE):
        choices = list((space.list if space else None) or [])
        if value not in choices:
            return rng.choice(choices)
        return choices[(choices.index(value) + rng.choice((-1, 1))) % len(choices)]
    assert space is not None
    low, high = float(space.min or "0"), float(space.max or "0")
    factor = rng.choice((0.8, 1.2))
    number = float(int(int(float(value)) * factor)) if kind == ParameterType.INT else float(value) * factor
    number = max(low, min(high, number))
    if space.step:
        step = float(space.step)
        number = min(high, low + round((number - low) / step) * step)
    return str(int(number)) if kind == ParameterType.INT else str(number)


def _random_slot(distributions: dict[str, BaseDistribution], rng: random.Random) -> Slot:
    drawn = outcomes.random_assignment(distributions, rng.randrange(2**31))
    return Slot(tuple((a.name or "", a.value or "") for a in drawn))


def _rng(seed: int, generation: int, index: int) -> random.Random:
    return random.Random(f"{seed}:{generation}:{index}")


def _reply(request: SuggestionRequest, slots: Sequence[Slot], generation: int, seed: int) -> SuggestionReply:
    experiment = (request.experiment.metadata.name if request.experiment.metadata else None) or "trial"
    taken = {a.name or "" for a in request.issued}
    names = []
    for index in range(len(slots)):
        rng = random.Random(f"{seed}:name:{len(request.issued) + index}")
        name = rendering.new_trial_name(experiment, taken=taken, rng=rng)
        taken.add(name)
        names.append(name if len(name) <= 63 else "")
    labels = tuple(
        {GENERATION_LABEL: str(generation), **({PARENT_LABEL: slot.parent} if slot.parent else {})} for slot in slots
    )
    return SuggestionReply(
        assignments=tuple(tuple(ParameterAssignment(name=n, value=v) for n, v in slot.values) for slot in slots),
        labels=labels,
        trial_names=tuple(names),
    )


def trial_dir(root: str | Path, experiment: str, trial: str) -> Path:
    """``<root>/<experiment>/<trial>``: Katib's layout of the suggestion volume, one directory per trial."""
    return Path(root) / experiment / trial


def prepare_trial_dir(root: str | Path, experiment: str, trial: str, parent: str | None) -> Path:
    """The trial's directory under ``root``, holding a copy of its parent's (empty without a parent).

    What Katib v0.19's PBT service does when it queues a trial; the trial then finds its parent's
    checkpoint in its own directory, which Katib mounts at ``suggestion_trial_dir``.
    """
    source = trial_dir(root, experiment, parent) if parent else None
    return copy_parent_dir(trial_dir(root, experiment, trial), source)


def copy_parent_dir(target: Path, parent: Path | None) -> Path:
    """``target`` afresh: a copy of ``parent`` when it is a directory, else empty (a restart starts over)."""
    if target.exists():
        shutil.rmtree(target)
    if parent is not None and parent.is_dir():
        shutil.copytree(parent, target)
    else:
        target.mkdir(parents=True)
    return target


@dataclass(frozen=True)
class Handover:
    """A trial's checkpoint hand-over: the path its template names, and whose directory it starts from."""

    path: str
    parent: str | None


def handover(experiment: Experiment, trial: Trial) -> Handover | None:
    """The hand-over for ``trial``, None when its Experiment sets no ``suggestion_trial_dir``.

    Katib v0.19's webhook keys the mount on that setting alone (not on the algorithm's name); the
    parent is the trial's PBT parent label (none in generation 0).
    """
    algorithm = experiment.spec.algorithm if experiment.spec else None
    settings = (algorithm.algorithm_settings if algorithm else None) or []
    path = next((s.value for s in settings if s.name == SUGGESTION_TRIAL_DIR and s.value), None)
    if path is None:
        return None
    labels = (trial.metadata.labels if trial.metadata else None) or {}
    return Handover(path, labels.get(PARENT_LABEL) or None)


def rewrite_path(text: str, path: str, local: str | Path) -> str:
    """``text`` with ``path`` (or a path under it) replaced by ``local``, where ``path`` stands as a path.

    What the mount does in a Pod, for the places local mode can see: ``--checkpoint=/ckpt/`` and
    ``/ckpt/model.pt`` change, ``/ckpt2`` and ``/data/ckpt`` do not. A trailing slash is kept.
    """
    base = path.rstrip("/") or "/"
    if base == "/":
        return text  # every absolute path is "under /": nothing sensible to rewrite
    pattern = re.compile(rf"(?<![\w./~-]){re.escape(base)}(?=/|$|[^\w.~-])")
    return pattern.sub(lambda _: str(local).rstrip("/") or "/", text)
