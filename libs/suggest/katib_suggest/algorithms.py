"""Katib's suggestion algorithms in-process: ``random``, ``grid``, ``tpe``, ``multivariate-tpe``, ``cmaes``, ``sobol``.

``bayesianoptimization``, ``hyperband`` and ``pbt`` are pure functions of the request, in their own modules.

``Suggester.suggest(request)`` answers a ``katib_core.suggestions.SuggestionRequest`` the way
Katib's optuna suggestion service answers ``GetSuggestions``: finished trials are told to the
study (Succeeded/EarlyStopped with their objective value, Failed/Killed as failed), then
``count`` new assignments are asked for. One ``Suggester`` serves every Experiment of a process
and keeps each one's optuna study between calls; when it has none (a restart, another replica
led before) or the request does not extend what it knows, it rebuilds the study from
``request.issued``, so it never depends on its memory for correctness. With ``random_state`` the
answers depend only on the seed and the history: each batch is sampled with a seed derived from
``random_state`` and the number of assignments issued before it.
"""

from __future__ import annotations

import math
import random
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from katib_core import aggregation, constants, search_algorithms
from katib_core.errors import ValidationError
from katib_core.models import Experiment, ParameterAssignment
from katib_core.suggestions import SuggestionReply, SuggestionRequest, SuggestionTrial
from katib_suggest import bayesopt, hyperband, outcomes, pbt, spaces

#: Samplers whose next points do not depend on results: they are never told any.
_IGNORES_RESULTS: Final = frozenset({"random", "sobol"})


def validate_algorithm_settings(experiment: Experiment) -> None:
    """Katib's ``ValidateAlgorithmSettings`` for our algorithms: the same rule the webhook applies
    (``katib_core.search_algorithms.check``), then the search space as optuna will sample it.

    Raises:
        ValidationError: unknown algorithm or setting, a bad value, a search space the algorithm
            cannot sample (CMA-ES needs ≥ 2 int/double parameters; grid needs steps for doubles
            and no more trials than grid points).
    """
    search_algorithms.check(experiment)
    spaces.distributions(experiment.spec.parameters if experiment.spec else None)


@dataclass
class _Study:
    study: optuna.Study
    distributions: dict[str, BaseDistribution]
    names: list[str] = field(default_factory=list)  # issued names the study knows, in order
    numbers: dict[str, int] = field(default_factory=dict)
    pending: list[int] = field(default_factory=list)  # asked, not yet recorded under a name
    told: set[str] = field(default_factory=set)


class Suggester:
    """The in-process suggestion service (thread-safe; one per process, injected where needed).

    Args:
        max_studies: how many Experiments' studies to keep (least recently used are dropped and
            rebuilt from their history when needed again).
    """

    def __init__(self, *, max_studies: int = 64, quiet: bool = True) -> None:
        if quiet:  # optuna logs every created study and told trial at INFO
            optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._studies: OrderedDict[str, _Study] = OrderedDict()
        self._max = max_studies
        self._lock = threading.Lock()

    def suggest(self, request: SuggestionRequest) -> SuggestionReply:
        """New assignments for ``request`` (fewer, with ``exhausted``, when a grid runs out).

        Raises:
            ValidationError: the algorithm or its settings are invalid (a permanent failure).
        """
        experiment = request.experiment
        spec = experiment.spec
        if spec is None:
            raise ValidationError("spec", "is required")
        parsed = search_algorithms.parse_settings(spec.algorithm)
        if parsed.algorithm == "grid":
            return _grid(request, parsed)
        if parsed.algorithm == "hyperband":  # derived from the request: no study
            return hyperband.suggest(request, parsed)
        if parsed.algorithm == "pbt":  # derived from the request and the trials' labels
            return pbt.suggest(request, parsed)
        if parsed.algorithm == "bayesianoptimization":  # a pure function of the request: no study
            return bayesopt.suggest(request, parsed)
        with self._lock:
            state = self._sync(request, parsed, learn=parsed.algorithm not in _IGNORES_RESULTS)
            state.study.sampler = _sampler(parsed, len(request.issued))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                asked = [state.study.ask(fixed_distributions=state.distributions) for _ in range(request.count)]
            state.pending.extend(t.number for t in asked)
            return SuggestionReply(
                assignments=tuple(
                    tuple(spaces.encode(n, t.params[n], d) for n, d in state.distributions.items()) for t in asked
                )
            )

    def forget(self, key: str) -> None:
        """Drop an Experiment's study (it finished, or was deleted)."""
        with self._lock:
            self._studies.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        """Drop the studies whose key starts with ``prefix`` (e.g. ``namespace/name/``: every uid)."""
        with self._lock:
            for key in [k for k in self._studies if k.startswith(prefix)]:
                del self._studies[key]

    def _sync(self, request: SuggestionRequest, parsed: search_algorithms.Settings, *, learn: bool) -> _Study:
        key = request.key
        state = self._studies.get(key)
        issued = request.issued
        if state is not None and [a.name for a in issued[: len(state.names)]] != state.names:
            state = None
        if state is not None:
            for assignment in issued[len(state.names) :]:
                if not state.pending or not _same(state, state.pending[0], assignment.parameter_assignments or []):
                    state = None
                    break
                number = state.pending.pop(0)
                state.names.append(assignment.name or "")
                state.numbers[assignment.name or ""] = number
        if state is None:
            state = _rebuild(request, parsed)
        self._studies[key] = state
        self._studies.move_to_end(key)
        while len(self._studies) > self._max:
            self._studies.popitem(last=False)
        if learn:
            _tell(state, request)
        return state


def _direction(experiment: Experiment) -> Literal["minimize", "maximize"]:
    objective = experiment.spec.objective if experiment.spec else None
    return "maximize" if objective is not None and objective.type == constants.ObjectiveType.MAXIMIZE else "minimize"


def _sampler(parsed: search_algorithms.Settings, issued: int) -> optuna.samplers.BaseSampler:
    seed = None if parsed.random_state is None else outcomes.derived_seed(parsed.random_state, issued)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # optuna 4.9 deprecates TPE's gamma and prior_weight (Katib's hyperopt settings): see
        # docs/algorithms.md. The warning would repeat on every batch.
        warnings.filterwarnings("ignore", r"`(gamma|prior_weight)` has been deprecated", FutureWarning)
        if parsed.algorithm == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if parsed.algorithm in ("tpe", "multivariate-tpe"):
            kwargs: dict[str, Any] = {"seed": seed, "constant_liar": True}
            if parsed.n_startup_trials is not None:
                kwargs["n_startup_trials"] = parsed.n_startup_trials
            if parsed.n_ei_candidates is not None:
                kwargs["n_ei_candidates"] = parsed.n_ei_candidates
            if parsed.prior_weight is not None:
                kwargs["prior_weight"] = parsed.prior_weight
            if parsed.gamma is not None:
                kwargs["gamma"] = _hyperopt_gamma(parsed.gamma)
            # Explicit both ways: optuna 5 made multivariate the default, and Katib's tpe is not.
            kwargs["multivariate"] = parsed.algorithm == "multivariate-tpe"
            return optuna.samplers.TPESampler(**kwargs)
        if parsed.algorithm == "cmaes":
            return optuna.samplers.CmaEsSampler(
                seed=seed,
                sigma0=parsed.sigma,
                restart_strategy=parsed.restart_strategy,
                warn_independent_sampling=False,
            )
        if parsed.algorithm == "sobol":
            # The QMC sequence position lives in the study; the seed only scrambles, so it stays fixed.
            return optuna.samplers.QMCSampler(
                qmc_type="sobol",
                scramble=parsed.random_state is not None,
                seed=parsed.random_state,
                warn_independent_sampling=False,
                warn_asynchronous_seeding=False,
            )
    raise ValidationError("spec.algorithm.algorithmName", f"unknown algorithm name {parsed.algorithm!r}")


def _hyperopt_gamma(fraction: float) -> Callable[[int], int]:
    """hyperopt's split of n observations into ``ceil(gamma * sqrt(n))`` good ones (at most 25),
    which Katib's ``tpe`` setting ``gamma`` means; optuna takes the split as a function."""

    def good(n: int) -> int:
        return min(math.ceil(fraction * math.sqrt(n)), 25)

    return good


def _rebuild(request: SuggestionRequest, parsed: search_algorithms.Settings) -> _Study:
    spec = request.experiment.spec
    distributions = spaces.distributions(spec.parameters if spec else None)
    study = optuna.create_study(direction=_direction(request.experiment), sampler=_sampler(parsed, 0))
    state = _Study(study=study, distributions=distributions)
    for assignment in request.issued:
        values = {a.name: a.value or "" for a in assignment.parameter_assignments or []}
        try:
            params = {name: spaces.decode(values[name], d) for name, d in distributions.items()}
        except (KeyError, ValueError):
            continue  # not from this search space (edited, or foreign): nothing to learn from it
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, state=TrialState.RUNNING))
        number = study.trials[-1].number
        state.names.append(assignment.name or "")
        state.numbers[assignment.name or ""] = number
    if parsed.algorithm == "sobol" and state.numbers:
        _skip_sobol(study, distributions, len(state.numbers))
    return state


def _skip_sobol(study: optuna.Study, distributions: dict[str, BaseDistribution], issued: int) -> None:
    # optuna keeps the Sobol position as a study attribute: move it past the points already issued
    # (the first trial of a study is sampled independently, the rest from the sequence).
    sampler = study.sampler
    assert isinstance(sampler, optuna.samplers.QMCSampler)
    for _ in range(issued - 1):
        sampler._find_sample_id(study, dict(distributions))


def _same(state: _Study, number: int, assignments: Sequence[ParameterAssignment]) -> bool:
    # Compared as assignment strings: a normal parameter's quantile does not survive the round trip.
    params = state.study.trials[number].params
    given = {a.name: a.value for a in assignments}
    return all(n in given and spaces.encode(n, params[n], d).value == given[n] for n, d in state.distributions.items())


def _tell(state: _Study, request: SuggestionRequest) -> None:
    objective = request.experiment.spec.objective if request.experiment.spec else None
    metric = objective.objective_metric_name if objective else None
    for trial in request.history:
        if trial.name in state.told or trial.name not in state.numbers:
            continue
        outcome = _outcome(trial, metric)
        if outcome is None:
            continue
        number = state.numbers[trial.name]
        if state.study.trials[number].state == TrialState.RUNNING:
            value, failed = outcome
            if failed:
                state.study.tell(number, state=TrialState.FAIL)
            else:
                state.study.tell(number, value)
        state.told.add(trial.name)


def _outcome(trial: SuggestionTrial, metric: str | None) -> tuple[float, bool] | None:
    if trial.condition in outcomes.FAILED:
        return 0.0, True
    if trial.condition in outcomes.OBSERVED:
        value = aggregation.parse_number(trial.metric(metric) or "")
        return (0.0, True) if value is None or math.isnan(value) else (value, False)
    return None


def _grid(request: SuggestionRequest, parsed: search_algorithms.Settings) -> SuggestionReply:
    spec = request.experiment.spec
    axes = search_algorithms.grid_axes((spec.parameters if spec else None) or [])
    names = [name for name, _ in axes]
    seen = set()
    for assignment in request.issued:
        values = {a.name: a.value for a in assignment.parameter_assignments or []}
        seen.add(tuple(values.get(n) for n in names))
    points = list(search_algorithms.grid_points(axes))
    if parsed.random_state is not None:
        random.Random(parsed.random_state).shuffle(points)
    fresh = [p for p in points if p not in seen]
    chosen = fresh[: request.count]
    return SuggestionReply(
        assignments=tuple(
            tuple(ParameterAssignment(name=n, value=v) for n, v in zip(names, p, strict=True)) for p in chosen
        ),
        exhausted=len(fresh) <= request.count,
    )
