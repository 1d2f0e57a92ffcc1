"""What each of pykatib's suggestion algorithms accepts: settings, search spaces, budgets.

One rule, two callers: the admission webhook and local mode admit an Experiment only if
``check`` passes, and the suggester (``katib_suggest``) runs exactly what ``check`` admits, so an
Experiment is never accepted and then refused at run time. Pure: no optuna here.

Setting names are Katib's (docs/algorithms.md): ``random_state`` everywhere; for ``tpe`` and
``multivariate-tpe`` Katib's optuna names (``n_startup_trials``, ``n_ei_candidates``) and Katib's
hyperopt names (``gamma``, ``prior_weight``, ``n_EI_candidates``); ``sigma`` and
``restart_strategy`` for ``cmaes``; Katib's skopt names (``base_estimator``, ``n_initial_points``,
``acq_func``, ``acq_optimizer``) for ``bayesianoptimization``. ``normal``/``logNormal``
parameters are sampled by every algorithm but ``grid`` (Katib v0.19 offers them only with its
hyperopt ``random`` and ``tpe``).
"""

from __future__ import annotations

import decimal
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from katib_core import constants
from katib_core.errors import ValidationError
from katib_core.models import AlgorithmSpec, Experiment, ParameterSpec

_FIELD: Final = "spec.algorithm.algorithmSettings"
ParameterType = constants.ParameterType
Distribution = constants.Distribution
#: Grids larger than this are refused (they would never be explored anyway).
MAX_GRID: Final = 1_000_000
_NORMALS: Final = frozenset({Distribution.NORMAL, Distribution.LOG_NORMAL})


@dataclass(frozen=True)
class Settings:
    """Parsed settings; None means the sampler's default."""

    algorithm: str
    random_state: int | None = None
    n_startup_trials: int | None = None
    n_ei_candidates: int | None = None
    gamma: float | None = None
    prior_weight: float | None = None
    sigma: float | None = None
    restart_strategy: str | None = None
    base_estimator: str | None = None
    n_initial_points: int | None = None
    acq_func: str | None = None
    acq_optimizer: str | None = None
    # hyperband (docs/algorithms.md#hyperband)
    resource_name: str | None = None
    eta: int | None = None
    r_l: float | None = None
    # pbt (docs/algorithms.md#pbt); check() requires the first three, as Katib v0.19 does
    suggestion_trial_dir: str | None = None
    n_population: int | None = None
    truncation_threshold: float | None = None
    resample_probability: float | None = None


def _non_negative_int(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValidationError(f"{_FIELD}.{name}", f"{text!r} is not an integer") from None
    if value < 0:
        raise ValidationError(f"{_FIELD}.{name}", f"{value} should be greater than or equal to zero")
    return value


def _positive_int(name: str, text: str) -> int:
    value = _non_negative_int(name, text)
    if value == 0:
        raise ValidationError(f"{_FIELD}.{name}", "should be greater than zero")
    return value


def _float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(f"{_FIELD}.{name}", f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValidationError(f"{_FIELD}.{name}", f"{text!r} must be finite")
    return value


def _positive_float(name: str, text: str) -> float:
    value = _float(name, text)
    if not value > 0:  # optuna's CMA-ES needs a positive sigma0 (Katib lets 0 through, then fails)
        raise ValidationError(f"{_FIELD}.{name}", f"{value} should be greater than zero")
    return value


def _fraction(name: str, text: str) -> float:
    value = _float(name, text)
    if not 0 < value < 1:
        raise ValidationError(f"{_FIELD}.{name}", f"{value} should be in the range of (0, 1)")
    return value


def _restart(name: str, text: str) -> str | None:
    if text in ("None", "none", ""):
        return None
    if text not in ("ipop", "bipop"):
        raise ValidationError(
            f"{_FIELD}.{name}", f"restart_strategy {text!r} is not supported: use ipop, bipop or none"
        )
    return text


def _one_of(*allowed: str) -> Callable[[str, str], str]:
    """A setting that takes one of ``allowed`` (Katib's skopt service's message when not)."""

    def parse(name: str, text: str) -> str:
        if text not in allowed:
            raise ValidationError(
                f"{_FIELD}.{name}",
                f"{name} {text} is not supported in Bayesian optimization: use {', '.join(allowed)}",
            )
        return text

    return parse


def _text(name: str, text: str) -> str:
    if not text:
        raise ValidationError(f"{_FIELD}.{name}", "must not be empty")
    return text


def _eta(name: str, text: str) -> int:
    value = _float(name, text)
    if value != int(value) or value < 2:
        # Katib v0.19 truncates to an integer and turns values <= 0 into 3 (1 divides by log 1 = 0).
        raise ValidationError(f"{_FIELD}.{name}", f"{text!r} should be an integer of at least 2")
    return int(value)


def _max_resource(name: str, text: str) -> float:
    value = _float(name, text)
    if value < 1:  # resources are assigned as integers: below 1 every rung would get 0
        raise ValidationError(f"{_FIELD}.{name}", f"{text!r} should be a number of at least 1")
    return value


def _population(name: str, text: str) -> int:
    value = _non_negative_int(name, text)
    if value < 5:
        raise ValidationError(f"{_FIELD}.{name}", f"{value} should be >= 5")
    return value


def _unit(name: str, text: str) -> float:
    value = _float(name, text)
    if not 0 <= value <= 1:
        raise ValidationError(f"{_FIELD}.{name}", f"{value} should be between 0 and 1, inclusive")
    return value


def _optional_unit(name: str, text: str) -> float | None:
    return None if text in ("", "None", "none", "null") else _unit(name, text)


def _state(name: str, text: str) -> None:
    """hyperband's state (Katib's names): a number, recomputed from the trials, so not kept."""
    _float(name, text)


#: hyperband's state settings as Katib v0.19 returns them; accepted, then derived from the trials.
HYPERBAND_STATE: Final = ("s_max", "b_l", "r", "n", "current_s", "current_i", "evaluating_trials")
#: Settings pbt's ValidateAlgorithmSettings requires in Katib v0.19.
PBT_REQUIRED: Final = ("suggestion_trial_dir", "n_population", "truncation_threshold")


_Parser = Callable[[str, str], object]
_TPE: Final[Mapping[str, _Parser]] = {
    "random_state": _non_negative_int,
    "n_startup_trials": _non_negative_int,
    "n_ei_candidates": _positive_int,
    "n_EI_candidates": _positive_int,  # Katib's hyperopt spelling
    "gamma": _fraction,
    "prior_weight": _positive_float,
}
#: Settings each algorithm accepts.
SCHEMAS: Final[Mapping[str, Mapping[str, _Parser]]] = {
    "random": {"random_state": _non_negative_int},
    "grid": {"random_state": _non_negative_int},
    "tpe": _TPE,
    "multivariate-tpe": _TPE,
    "cmaes": {"random_state": _non_negative_int, "sigma": _positive_float, "restart_strategy": _restart},
    "sobol": {"random_state": _non_negative_int},
    "bayesianoptimization": {
        "base_estimator": _one_of("GP", "RF", "ET", "GBRT"),
        "n_initial_points": _non_negative_int,
        "acq_func": _one_of("gp_hedge", "LCB", "EI", "PI", "EIps", "PIps"),
        "acq_optimizer": _one_of("auto", "sampling", "lbfgs"),
        "random_state": _non_negative_int,
    },
    "hyperband": {
        "resource_name": _text,
        "eta": _eta,
        "r_l": _max_resource,
        "random_state": _non_negative_int,
        **dict.fromkeys(HYPERBAND_STATE, _state),
    },
    "pbt": {
        "suggestion_trial_dir": _text,
        "n_population": _population,
        "truncation_threshold": _unit,
        "resample_probability": _optional_unit,
        "random_state": _non_negative_int,
    },
}
ALGORITHMS: Final = tuple(SCHEMAS)
#: Two spellings of one setting.
_ALIASES: Final = {"n_EI_candidates": "n_ei_candidates"}


def parse_settings(algorithm: AlgorithmSpec | None) -> Settings:
    """Typed settings of ``algorithm``.

    Raises:
        ValidationError: unknown algorithm, unknown or repeated setting, or a bad value.
    """
    name = (algorithm.algorithm_name if algorithm else None) or ""
    schema = SCHEMAS.get(name)
    if schema is None:
        raise ValidationError(
            "spec.algorithm.algorithmName", f"unknown algorithm name {name!r}; known: {', '.join(ALGORITHMS)}"
        )
    values: dict[str, object] = {}
    for index, setting in enumerate((algorithm.algorithm_settings if algorithm else None) or ()):
        key = setting.name or ""
        parser = schema.get(key)
        if parser is None:
            raise ValidationError(
                f"{_FIELD}[{index}].name",
                f"unknown setting {key!r} for algorithm {name}; known: {', '.join(schema) or 'none'}",
            )
        field = _ALIASES.get(key, key)
        if field in values:
            raise ValidationError(f"{_FIELD}[{index}].name", f"setting {key!r} is given twice")
        value = parser(key, setting.value or "")
        if key not in HYPERBAND_STATE:
            values[field] = value
    return Settings(algorithm=name, **values)  # type: ignore[arg-type]


def check(experiment: Experiment) -> Settings:
    """Whether the suggester can run ``experiment`` as written; its parsed settings if so.

    Assumes ``validation.check_parameters`` passed (names, types, numeric bounds).

    Raises:
        ValidationError: naming the setting or parameter field the algorithm cannot take.
    """
    spec = experiment.spec
    if spec is None:
        raise ValidationError("spec", "is required")
    settings = parse_settings(spec.algorithm)
    parameters = list(spec.parameters or ())
    for index, parameter in enumerate(parameters):
        _check_space(parameter, f"spec.parameters[{index}]", settings.algorithm)
    if settings.algorithm == "cmaes":
        numeric = [p for p in parameters if p.parameter_type in (ParameterType.INT, ParameterType.DOUBLE)]
        if len(numeric) < 2:
            raise ValidationError(
                "spec.parameters", "cmaes only supports two or more dimensional continuous search space"
            )
    if settings.algorithm == "bayesianoptimization":
        bayesopt_optimizer(settings, parameters)
    if settings.algorithm == "hyperband":
        _check_hyperband(experiment, settings)
    if settings.algorithm == "pbt":
        _check_pbt(experiment)
    if settings.algorithm == "grid":
        size = math.prod(len(values) for _, values in grid_axes(parameters))
        if spec.max_trial_count is not None and spec.max_trial_count > size:
            raise ValidationError(
                "spec.maxTrialCount",
                f"Max Trial Count: {spec.max_trial_count} > all possible search combinations: {size}",
            )
    return settings


def bayesopt_optimizer(settings: Settings, parameters: Sequence[ParameterSpec] | None) -> str:
    """How ``bayesianoptimization`` minimizes its acquisition function: ``lbfgs`` or ``sampling``.

    ``auto`` is skopt's rule: L-BFGS-B where the model has gradients (a GP over at least one
    int/double parameter), random sampling otherwise.

    Raises:
        ValidationError: ``lbfgs`` asked of a model without gradients (skopt refuses it when it
            builds its optimizer, after Katib v0.19's validator admitted it).
    """
    estimator = settings.base_estimator or "GP"
    numeric = any(p.parameter_type in (ParameterType.INT, ParameterType.DOUBLE) for p in parameters or ())
    has_gradients = estimator == "GP" and numeric
    optimizer = settings.acq_optimizer or "auto"
    if optimizer == "auto":
        return "lbfgs" if has_gradients else "sampling"
    if optimizer == "lbfgs" and not has_gradients:
        why = f"base_estimator {estimator} has no gradients" if estimator != "GP" else "no int or double parameter"
        raise ValidationError(f"{_FIELD}.acq_optimizer", f"lbfgs needs gradients ({why}): use sampling or auto")
    return optimizer


def hyperband_s_max(eta: int, r_l: float) -> int:
    """The number of brackets less one: the largest ``s`` with ``eta**s <= r_l``.

    Exact, where Katib v0.19's ``int(log(r_l) / log(eta))`` is one short for some powers (1000, 10).
    """
    s = 0
    while eta ** (s + 1) <= r_l * (1 + 1e-12):
        s += 1
    return s


def _check_hyperband(experiment: Experiment, settings: Settings) -> None:
    """Katib v0.19's hyperband ValidateAlgorithmSettings, and a resource that can hold a number."""
    spec = experiment.spec
    assert spec is not None
    for name in ("resource_name", "r_l"):
        if getattr(settings, name) is None:
            raise ValidationError(f"{_FIELD}.{name}", "must be set: hyperband needs resource_name and r_l")
    eta = settings.eta or 3
    assert settings.r_l is not None
    widest = eta ** hyperband_s_max(eta, settings.r_l)
    parallel = spec.parallel_trial_count if spec.parallel_trial_count is not None else 3  # Katib's default
    if parallel < widest:
        raise ValidationError(
            "spec.parallelTrialCount",
            f"must be not less than {widest} (eta**s_max: the first bracket's trials run at once)",
        )
    parameters = list(spec.parameters or ())
    found = next((p for p in parameters if p.name == settings.resource_name), None)
    if found is None:
        known = ", ".join(repr(p.name) for p in parameters)
        raise ValidationError(
            f"{_FIELD}.resource_name", f"{settings.resource_name!r} must be one of the parameters ({known})"
        )
    if found.parameter_type not in (ParameterType.INT, ParameterType.DOUBLE):
        raise ValidationError(
            f"{_FIELD}.resource_name",
            f"parameter {found.name!r} is {found.parameter_type}: the resource must be int or double",
        )


def _check_pbt(experiment: Experiment) -> None:
    """Katib v0.19's pbt ValidateAlgorithmSettings: its three settings must be given."""
    algorithm = experiment.spec.algorithm if experiment.spec else None
    given = {s.name for s in (algorithm.algorithm_settings if algorithm else None) or ()}
    missing = [name for name in PBT_REQUIRED if name not in given]
    if missing:
        raise ValidationError(_FIELD, f"pbt requires {', '.join(missing)}")


def _check_space(parameter: ParameterSpec, where: str, algorithm: str) -> None:
    space = parameter.feasible_space
    if parameter.parameter_type not in (ParameterType.INT, ParameterType.DOUBLE) or space is None:
        return
    distribution = space.distribution or Distribution.UNIFORM
    field = f"{where}.feasibleSpace"
    if distribution in _NORMALS and algorithm == "grid":
        raise ValidationError(f"{field}.distribution", f"{distribution} cannot be laid on a grid: use uniform")
    if distribution == Distribution.LOG_NORMAL and float(space.min or "0") <= 0:
        # logUniform clamps min to 1e-10 (1 for int) instead, as before; logNormal centres on log(min).
        raise ValidationError(f"{field}.min", f"logNormal needs min > 0 (it is {space.min})")
    if distribution == Distribution.LOG_UNIFORM and space.step:
        integral_one = parameter.parameter_type == ParameterType.INT and float(space.step) == 1
        if not integral_one:
            raise ValidationError(f"{field}.step", "a logUniform parameter cannot have a step")


def grid_axes(parameters: Sequence[ParameterSpec]) -> list[tuple[str, list[str]]]:
    """The values of each parameter on a grid (doubles need a ``step``; ints step 1 by default).

    Raises:
        ValidationError: a double without step, or a grid over ``MAX_GRID`` points.
    """
    axes: list[tuple[str, list[str]]] = []
    size = 1
    for index, parameter in enumerate(parameters):
        where = f"spec.parameters[{index}]"
        space = parameter.feasible_space
        kind = parameter.parameter_type
        if kind in (ParameterType.CATEGORICAL, ParameterType.DISCRETE):
            values = list((space.list if space else None) or [])
        elif kind in (ParameterType.INT, ParameterType.DOUBLE) and space is not None:
            if kind == ParameterType.DOUBLE and not space.step:
                raise ValidationError(
                    f"{where}.feasibleSpace.step", f"parameter {parameter.name!r}: the grid needs a step for doubles"
                )
            values = _steps(
                space.min or "", space.max or "", space.step or "1", integral=kind == ParameterType.INT, where=where
            )
        else:
            raise ValidationError(f"{where}.parameterType", f"{kind!r} cannot be on a grid")
        size *= max(1, len(values))
        if size > MAX_GRID:
            raise ValidationError("spec.parameters", f"the grid has more than {MAX_GRID} points")
        axes.append((parameter.name or "", values))
    return axes


def _steps(low: str, high: str, step: str, *, integral: bool, where: str) -> list[str]:
    try:
        start, stop, delta = decimal.Decimal(low), decimal.Decimal(high), decimal.Decimal(step)
    except decimal.InvalidOperation:
        raise ValidationError(
            f"{where}.feasibleSpace", f"min {low!r}, max {high!r}, step {step!r} must be numbers"
        ) from None
    if delta <= 0:
        raise ValidationError(f"{where}.feasibleSpace.step", f"{step!r} must be positive")
    values: list[str] = []
    current = start
    while current <= stop and len(values) <= MAX_GRID:
        values.append(str(int(current)) if integral else str(float(current)))
        current += delta
    return values


def grid_points(axes: Sequence[tuple[str, list[str]]]) -> Iterator[tuple[str, ...]]:
    """Every point of the grid, first parameter slowest."""
    return itertools.product(*(values for _, values in axes))


__all__ = [
    "ALGORITHMS",
    "MAX_GRID",
    "SCHEMAS",
    "Settings",
    "bayesopt_optimizer",
    "check",
    "grid_axes",
    "grid_points",
    "parse_settings",
]
