"""Katib's ``bayesianoptimization`` on scikit-learn's regressors, as a pure function of the request.

Katib v0.19 runs this algorithm with scikit-optimize, which is unmaintained; this module keeps its
settings and their meaning (``base_estimator``, ``n_initial_points``, ``acq_func``,
``acq_optimizer``, ``random_state``) on maintained scikit-learn models. ``suggest`` rebuilds
everything from ``request.issued`` and ``request.history`` on each call, so it needs no memory:

- Every parameter lives in a unit cube: uniform/logUniform int and double scaled linearly (on
  ``log`` for logUniform) and snapped to ``step``; ``normal``/``logNormal`` as quantiles (the
  mapping ``katib_suggest.spaces`` gives the other algorithms) within ±3 sigma, i.e. ``[min,
  max]``; ``discrete`` as the index of its
  value in numeric order; ``categorical`` one-hot.
- Succeeded/EarlyStopped trials with an objective value are observations; Failed, Killed and
  value-less trials are left out, as Katib's service leaves them out; running (and not yet
  created) trials are pending points, each told the best value seen so far (skopt's constant liar,
  ``cl_min``), so a batch of ``count`` and the trials still running are not asked twice.
- The first ``n_initial_points`` assignments (and any while no trial has a value) are random.
- ``gp_hedge`` chooses among LCB, EI and PI by a softmax of their gains, which are replayed from
  the history on every call (the last ``HEDGE_WINDOW`` steps) instead of living in a process.

With ``random_state`` an answer depends only on the seed and the history: every random draw is
seeded from ``random_state`` and the position of the assignment (or step) it is for.
"""

from __future__ import annotations

import math
import secrets
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np  # pants: no-infer-dep (scikit-learn requires it)
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from scipy import optimize, stats  # type: ignore[import-untyped]
from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Kernel, Matern, WhiteKernel

from katib_core import aggregation, constants, search_algorithms, trial_conditions
from katib_core.models import ParameterAssignment, ParameterSpec
from katib_core.suggestions import SuggestionReply, SuggestionRequest
from katib_suggest import outcomes, spaces

Array = np.ndarray
ParameterType = constants.ParameterType

DEFAULT_BASE_ESTIMATOR: Final = "GP"
DEFAULT_N_INITIAL_POINTS: Final = 10
DEFAULT_ACQ_FUNC: Final = "gp_hedge"
DEFAULT_ACQ_OPTIMIZER: Final = "auto"
#: Random candidates the acquisition function is evaluated on (skopt's ``n_points``).
CANDIDATES: Final = 10_000
#: Best candidates L-BFGS-B starts from (skopt's ``n_restarts_optimizer``).
LBFGS_STARTS: Final = 5
#: Steps of the history ``gp_hedge`` replays to weigh its acquisition functions, and the
#: candidates each replayed step proposes from.
HEDGE_WINDOW: Final = 16
HEDGE_CANDIDATES: Final = 1_000
KAPPA: Final = 1.96  # LCB's exploration weight (skopt's default)
XI: Final = 0.01  # EI's and PI's improvement margin, in standard deviations of the observed values
HEDGE_ETA: Final = 1.0
#: The quantile of -3 sigma: normal/logNormal parameters stay within [min, max].
NORMAL_TAIL: Final = 0.0013498980316301
_STEP: Final = 1e-6  # L-BFGS-B's finite-difference step in the unit cube
_PORTFOLIO: Final = ("LCB", "EI", "PI")
#: Katib admits EIps and PIps (EI and PI per second); trial durations are not part of the
#: history, so with every trial taking the same time they rank points as EI and PI do.
_ACQ_ALIASES: Final = {"EIps": "EI", "PIps": "PI"}


def _array(x: Any) -> Array:
    return np.asarray(x, dtype=float)


# -- the unit cube -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    """One parameter's columns in the unit cube, and its values to and from them."""

    name: str
    distribution: BaseDistribution
    choices: tuple[str, ...] = ()  # discrete (ordered, one column) or categorical (one-hot)
    one_hot: bool = False

    @property
    def width(self) -> int:
        return len(self.choices) if self.one_hot else 1

    def snap(self, u: Array) -> Array:
        """Columns ``u`` (n by width) moved to the nearest point the parameter can take."""
        if self.one_hot:
            return _array(np.eye(len(self.choices))[np.argmax(u, axis=1)])
        x = np.clip(u[:, 0], 0.0, 1.0)
        if self.choices:
            k = len(self.choices)
            return _array(((np.minimum(np.floor(x * k), k - 1) + 0.5) / k)[:, None])
        d = self.distribution
        if isinstance(d, spaces.QuantileNormal):
            # Within ±3 sigma (Katib's min and max): acquisition optima sit on the cube's faces,
            # which the quantile map would put 7 sigma out.
            x = np.clip(x, NORMAL_TAIL, 1 - NORMAL_TAIL)
            if not (d.integral or d.quantum):
                return _array(x[:, None])
            return np.array([d.quantile(d.value(q)) for q in x])[:, None]
        if isinstance(d, IntDistribution | FloatDistribution):
            return self._unit(self._value(x))[:, None]
        raise ValueError(f"unknown distribution {d!r}")

    def _value(self, x: Array) -> Array:
        d = self.distribution
        assert isinstance(d, IntDistribution | FloatDistribution)
        if d.log:
            v = np.exp(math.log(d.low) + x * (math.log(d.high) - math.log(d.low)))
        else:
            v = d.low + x * (d.high - d.low)
        if d.step is not None:
            v = d.low + np.round((v - d.low) / d.step) * d.step
            top = d.low + math.floor((d.high - d.low) / d.step + 1e-9) * d.step
            v = np.minimum(v, top)
        elif isinstance(d, IntDistribution):
            v = np.round(v)
        return np.clip(v, d.low, d.high)

    def _unit(self, v: Array) -> Array:
        d = self.distribution
        assert isinstance(d, IntDistribution | FloatDistribution)
        if d.high == d.low:
            return np.full_like(v, 0.5, dtype=float)
        if d.log:
            return _array((np.log(v) - math.log(d.low)) / (math.log(d.high) - math.log(d.low)))
        return (v - d.low) / (d.high - d.low)

    def text(self, u: Array) -> str:
        """The assignment string at (snapped) columns ``u``."""
        if self.one_hot:
            return self.choices[int(np.argmax(u))]
        if self.choices:
            return self.choices[min(int(u[0] * len(self.choices)), len(self.choices) - 1)]
        d = self.distribution
        if isinstance(d, spaces.QuantileNormal):
            return spaces.encode(self.name, float(u[0]), d).value or ""
        value = float(self._value(np.array([u[0]]))[0])
        if isinstance(d, IntDistribution):
            return str(int(round(value)))
        return str(float(f"{value:.15g}"))

    def columns(self, text: str) -> Array:
        """The columns of assignment string ``text`` (ValueError if the parameter cannot take it)."""
        if self.choices:
            if text not in self.choices:
                raise ValueError(f"{text!r} is not one of {self.choices}")
            index = self.choices.index(text)
            if self.one_hot:
                return _array(np.eye(len(self.choices))[index])
            return np.array([(index + 0.5) / len(self.choices)])
        d = self.distribution
        value = float(text)
        if isinstance(d, spaces.QuantileNormal):
            return np.array([d.quantile(value)])
        assert isinstance(d, IntDistribution | FloatDistribution)
        if not (d.low - 1e-9 * abs(d.low) - 1e-12 <= value <= d.high + 1e-9 * abs(d.high) + 1e-12):
            raise ValueError(f"{value} is outside [{d.low}, {d.high}]")
        return _array(self.snap(self._unit(np.array([value]))[:, None])[0])


def _axes(parameters: Sequence[ParameterSpec] | None) -> list[_Axis]:
    distributions = spaces.distributions(parameters)
    axes = []
    for parameter, (name, distribution) in zip(parameters or (), distributions.items(), strict=True):
        if isinstance(distribution, CategoricalDistribution):
            choices = tuple(str(c) for c in distribution.choices)
            if parameter.parameter_type == ParameterType.DISCRETE:
                axes.append(_Axis(name, distribution, tuple(sorted(choices, key=_numeric_order))))
            else:
                axes.append(_Axis(name, distribution, choices, one_hot=True))
        else:
            axes.append(_Axis(name, distribution))
    return axes


def _numeric_order(text: str) -> tuple[int, float, str]:
    try:
        return 0, float(text), text
    except ValueError:
        return 1, 0.0, text


def _snap(axes: Sequence[_Axis], x: Array) -> Array:
    parts, at = [], 0
    for axis in axes:
        parts.append(axis.snap(x[:, at : at + axis.width]))
        at += axis.width
    return np.hstack(parts)


def _texts(axes: Sequence[_Axis], row: Array) -> tuple[ParameterAssignment, ...]:
    result, at = [], 0
    for axis in axes:
        result.append(ParameterAssignment(name=axis.name, value=axis.text(row[at : at + axis.width])))
        at += axis.width
    return tuple(result)


def _row(axes: Sequence[_Axis], values: dict[str, str]) -> Array:
    return np.concatenate([axis.columns(values[axis.name]) for axis in axes])


# -- surrogate models -------------------------------------------------------------------------


class _Model(Protocol):
    def predict(self, x: Array) -> tuple[Array, Array]: ...


@dataclass(frozen=True)
class _Gp:
    regressor: GaussianProcessRegressor

    def predict(self, x: Array) -> tuple[Array, Array]:
        mu, sd = self.regressor.predict(x, return_std=True)
        return mu, sd


@dataclass(frozen=True)
class _Forest:
    regressor: RandomForestRegressor | ExtraTreesRegressor

    def predict(self, x: Array) -> tuple[Array, Array]:
        # The spread of the trees' predictions stands in for the model's uncertainty.
        per_tree = np.stack([tree.predict(x) for tree in self.regressor.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)


@dataclass(frozen=True)
class _Quantiles:
    low: GradientBoostingRegressor
    median: GradientBoostingRegressor
    high: GradientBoostingRegressor

    def predict(self, x: Array) -> tuple[Array, Array]:
        # skopt's GBRT: the 16th and 84th percentiles are one standard deviation either side.
        return self.median.predict(x), np.maximum(self.high.predict(x) - self.low.predict(x), 0.0) / 2


def _gp_kernel(width: int) -> Kernel:
    return ConstantKernel(1.0, (0.01, 1000.0)) * Matern(
        length_scale=np.ones(width), length_scale_bounds=(0.01, 100.0), nu=2.5
    ) + WhiteKernel(1e-2, (1e-6, 1.0))


def _fit(estimator: str, x: Array, y: Array, seed: int, kernel: Kernel | None = None) -> tuple[_Model, Kernel | None]:
    """``estimator`` fit to ``(x, y)``; for GP also its fitted kernel (refits with ``kernel`` keep it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if estimator == "GP":
            gp = GaussianProcessRegressor(
                kernel=kernel if kernel is not None else _gp_kernel(x.shape[1]),
                normalize_y=True,
                optimizer=None if kernel is not None else "fmin_l_bfgs_b",
                n_restarts_optimizer=0 if kernel is not None else 2,
                random_state=seed,
            ).fit(x, y)
            return _Gp(gp), gp.kernel_
        if estimator in ("RF", "ET"):
            forest_type = RandomForestRegressor if estimator == "RF" else ExtraTreesRegressor
            forest = forest_type(n_estimators=100, min_samples_leaf=3, random_state=seed).fit(x, y)
            return _Forest(forest), None
        low, median, high = (
            GradientBoostingRegressor(loss="quantile", alpha=alpha, n_estimators=30, random_state=seed).fit(x, y)
            for alpha in (0.16, 0.5, 0.84)
        )
        return _Quantiles(low, median, high), None


# -- acquisition -----------------------------------------------------------------------------


def _acquisition(name: str, mu: Array, sd: Array, best: float) -> Array:
    """Lower is better (skopt's convention): LCB, or minus EI or PI below ``best``."""
    if name == "LCB":
        return mu - KAPPA * sd
    sd = np.maximum(sd, 1e-12)
    z = (best - XI - mu) / sd
    if name == "EI":
        return _array(-((best - XI - mu) * stats.norm.cdf(z) + sd * stats.norm.pdf(z)))
    return _array(-stats.norm.cdf(z))


def _propose(
    model: _Model,
    functions: Sequence[str],
    best: float,
    candidates: Array,
    taken: set[bytes],
    axes: Sequence[_Axis],
    lbfgs: bool,
) -> list[Array]:
    """For each acquisition function, the (snapped) point minimizing it, avoiding ``taken`` points."""
    mu, sd = model.predict(candidates)
    free = np.array([_key(c) not in taken for c in candidates])
    proposals = []
    for name in functions:
        values = _acquisition(name, mu, sd, best)
        if free.any():
            values = np.where(free, values, np.inf)
        order = np.argsort(values)
        chosen, chosen_value = candidates[order[0]], values[order[0]]
        if lbfgs:
            for start in candidates[order[:LBFGS_STARTS]]:
                point, value = _lbfgs(model, name, best, start, axes)
                if value < chosen_value and _key(point) not in taken:
                    chosen, chosen_value = point, value
        proposals.append(chosen)
    return proposals


def _lbfgs(model: _Model, name: str, best: float, start: Array, axes: Sequence[_Axis]) -> tuple[Array, float]:
    def objective(x: Array) -> tuple[float, Array]:
        # The value and its forward differences from one prediction (the model's calls dominate).
        h = np.where(x + _STEP <= 1.0, _STEP, -_STEP)
        points = np.vstack([x, x + np.diag(h)])
        mu, sd = model.predict(points)
        values = _acquisition(name, mu, sd, best)
        return float(values[0]), (values[1:] - values[0]) / h

    found = optimize.minimize(objective, start, jac=True, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(start))
    point = _snap(axes, found.x[None, :])[0]
    mu, sd = model.predict(point[None, :])
    return point, float(_acquisition(name, mu, sd, best)[0])


def _key(row: Array) -> bytes:
    return bytes(np.round(row, 9).tobytes())


# -- the algorithm ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _History:
    observed_x: Array  # in issue order
    observed_y: Array  # minimized: the objective, negated when maximizing
    pending_x: list[Array]


def _history(request: SuggestionRequest, axes: Sequence[_Axis]) -> _History:
    spec = request.experiment.spec
    objective = spec.objective if spec else None
    metric = objective.objective_metric_name if objective else None
    sign = -1.0 if objective is not None and objective.type == constants.ObjectiveType.MAXIMIZE else 1.0
    trials = {trial.name: trial for trial in request.history}
    xs, ys, pending = [], [], []
    for assignment in request.issued:
        try:
            row = _row(axes, {a.name or "": a.value or "" for a in assignment.parameter_assignments or []})
        except (KeyError, ValueError):
            continue  # not from this search space (edited, or foreign): nothing to learn from it
        trial = trials.get(assignment.name or "")
        condition = trial.condition if trial else None
        if trial is not None and condition in outcomes.OBSERVED:
            value = aggregation.parse_number(trial.metric(metric) or "")
            if value is not None and math.isfinite(value):
                xs.append(row)
                ys.append(sign * value)
        elif condition not in trial_conditions.COMPLETED_TYPES:
            pending.append(row)
    width = sum(axis.width for axis in axes)
    return _History(np.array(xs).reshape(-1, width), np.array(ys, dtype=float), pending)


def suggest(request: SuggestionRequest, parsed: search_algorithms.Settings) -> SuggestionReply:
    """``request.count`` new assignments by Bayesian optimization (see the module docstring)."""
    spec = request.experiment.spec
    axes = _axes(spec.parameters if spec else None)
    estimator = parsed.base_estimator or DEFAULT_BASE_ESTIMATOR
    n_initial = DEFAULT_N_INITIAL_POINTS if parsed.n_initial_points is None else parsed.n_initial_points
    function = _ACQ_ALIASES.get(parsed.acq_func or DEFAULT_ACQ_FUNC, parsed.acq_func or DEFAULT_ACQ_FUNC)
    lbfgs = search_algorithms.bayesopt_optimizer(parsed, spec.parameters if spec else None) == "lbfgs"
    root = parsed.random_state if parsed.random_state is not None else secrets.randbits(63)
    history = _history(request, axes)
    width = sum(axis.width for axis in axes)
    issued = len(request.issued)

    # Standardized values, so that EI's margin and the hedge's gains do not depend on the scale.
    ys = history.observed_y
    scale = float(ys.std()) if len(ys) > 1 and ys.std() > 0 else 1.0
    ys = (ys - (ys.mean() if len(ys) else 0.0)) / scale
    believed = list(history.pending_x)
    taken = {_key(r) for r in [*history.observed_x, *believed]}
    rng = np.random.default_rng([root, 1, issued])
    kernel: Kernel | None = None
    gains: Array | None = None
    rows: list[Array] = []
    for position in range(issued, issued + request.count):
        if position < n_initial or len(ys) == 0:
            row = _snap(axes, np.random.default_rng([root, 0, position]).random((1, width)))[0]
        else:
            seed = int(rng.integers(2**31))
            if estimator == "GP" and kernel is None:
                _, kernel = _fit(estimator, history.observed_x, ys, seed)
            lie = float(ys.min())
            x = np.vstack([history.observed_x, *believed]) if believed else history.observed_x
            y = np.concatenate([ys, np.full(len(believed), lie)])
            model, _ = _fit(estimator, x, y, seed, kernel)
            candidates = _snap(axes, rng.random((CANDIDATES, width)))
            if function == "gp_hedge":
                if gains is None:
                    gains = _hedge_gains(estimator, history.observed_x, ys, n_initial, root, kernel, axes)
                proposals = _propose(model, _PORTFOLIO, lie, candidates, taken, axes, lbfgs)
                weights = np.exp(HEDGE_ETA * (gains - gains.max()))
                row = proposals[int(rng.choice(len(proposals), p=weights / weights.sum()))]
            else:
                row = _propose(model, (function,), lie, candidates, taken, axes, lbfgs)[0]
        rows.append(row)
        believed.append(row)
        taken.add(_key(row))
    return SuggestionReply(assignments=tuple(_texts(axes, row) for row in rows))


def _hedge_gains(
    estimator: str, x: Array, y: Array, n_initial: int, root: int, kernel: Kernel | None, axes: Sequence[_Axis]
) -> Array:
    """skopt's ``gp_hedge`` gains, replayed: after each observation (in issue order) the model
    refit on what was known then scores what each acquisition function proposed one step before;
    lower predicted values mean larger gains."""
    gains = np.zeros(len(_PORTFOLIO))
    first = max(1, min(n_initial, len(y)), len(y) - HEDGE_WINDOW)
    previous: list[Array] | None = None
    for step in range(first, len(y) + 1):
        model, _ = _fit(estimator, x[:step], y[:step], root % 2**31, kernel)
        if previous is not None:
            gains -= model.predict(np.vstack(previous))[0]
        if step < len(y):
            rng = np.random.default_rng([root, 2, step])
            candidates = _snap(axes, rng.random((HEDGE_CANDIDATES, x.shape[1])))
            previous = _propose(model, _PORTFOLIO, float(y[:step].min()), candidates, set(), axes, lbfgs=False)
    return gains


__all__ = ["suggest"]
