"""Katib search spaces as optuna distributions, and assignments to and from their values.

int and double map to optuna's Int/FloatDistribution (``step``; ``logUniform`` → ``log=True``),
discrete and categorical to a CategoricalDistribution of their strings, as Katib's optuna service
does. ``normal``/``logNormal`` (which optuna lacks) are sampled in quantile space: optuna sees a
uniform ``u`` in (0, 1) and the assignment is ``mu + sigma * Φ⁻¹(u)`` (of ``log x`` for
logNormal), with Katib's ``mu = (min + max) / 2`` and ``sigma = (max - min) / 6``; docs/algorithms.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any, Final

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from katib_core import constants
from katib_core.errors import ValidationError
from katib_core.models import ParameterAssignment, ParameterSpec

ParameterType = constants.ParameterType
Distribution = constants.Distribution
#: Quantiles kept away from 0 and 1, where Φ⁻¹ is infinite (±7 sigma).
_EDGE: Final = 1e-12
_STANDARD_NORMAL: Final = statistics.NormalDist()


class QuantileNormal(FloatDistribution):
    """A normal or log-normal parameter, as optuna samples it: uniform quantiles in (0, 1)."""

    def __init__(self, *, mu: float, sigma: float, log: bool, integral: bool, step: float | None) -> None:
        super().__init__(_EDGE, 1 - _EDGE)
        self.mu, self.sigma, self.log_normal, self.integral, self.quantum = mu, sigma, log, integral, step

    def value(self, quantile: float) -> float:
        """The parameter value at ``quantile`` (rounded to the step, or to an integer)."""
        x = self.mu + self.sigma * _STANDARD_NORMAL.inv_cdf(min(max(quantile, _EDGE), 1 - _EDGE))
        if self.log_normal:
            x = math.exp(x)
        if self.quantum:
            x = round(x / self.quantum) * self.quantum
        return float(round(x)) if self.integral else x

    def quantile(self, value: float) -> float:
        """The quantile of an assigned ``value`` (``ValueError`` if it cannot have come from here)."""
        if self.log_normal:
            if value <= 0:
                raise ValueError(f"{value} is not positive")
            value = math.log(value)
        if self.sigma == 0:
            return 0.5
        return min(max(_STANDARD_NORMAL.cdf((value - self.mu) / self.sigma), _EDGE), 1 - _EDGE)


def distributions(parameters: Sequence[ParameterSpec] | None) -> dict[str, BaseDistribution]:
    """One optuna distribution per parameter, in order.

    Raises:
        ValidationError: a parameter the algorithms cannot sample (bad bounds, normal distributions…).
    """
    result: dict[str, BaseDistribution] = {}
    if not parameters:
        raise ValidationError("spec.parameters", "the algorithm needs at least one parameter")
    for index, parameter in enumerate(parameters):
        where = f"spec.parameters[{index}]"
        name = parameter.name or ""
        if not name:
            raise ValidationError(f"{where}.name", "is required")
        if name in result:
            raise ValidationError(f"{where}.name", f"duplicated parameter name {name!r}")
        result[name] = _distribution(parameter, where)
    return result


def _distribution(parameter: ParameterSpec, where: str) -> BaseDistribution:
    space = parameter.feasible_space
    kind = parameter.parameter_type
    distribution = (space.distribution if space else None) or Distribution.UNIFORM
    if kind in (ParameterType.CATEGORICAL, ParameterType.DISCRETE):
        choices = list((space.list if space else None) or [])
        if not choices:
            raise ValidationError(f"{where}.feasibleSpace.list", f"must list the values of a {kind} parameter")
        return CategoricalDistribution(choices)
    if kind not in (ParameterType.INT, ParameterType.DOUBLE) or space is None:
        raise ValidationError(f"{where}.parameterType", f"{kind!r} cannot be sampled")
    if distribution in (Distribution.NORMAL, Distribution.LOG_NORMAL):
        return _normal(space.min or "", space.max or "", space.step, distribution, kind, where)
    if distribution not in (Distribution.UNIFORM, Distribution.LOG_UNIFORM):
        raise ValidationError(f"{where}.feasibleSpace.distribution", f"{distribution!r} cannot be sampled")
    log = distribution == Distribution.LOG_UNIFORM
    try:
        if kind == ParameterType.INT:
            low, high = int(space.min or ""), int(space.max or "")
            step = int(space.step) if space.step else 1
            if log:
                if space.step and step != 1:
                    raise ValidationError(f"{where}.feasibleSpace.step", "a logUniform parameter cannot have a step")
                return IntDistribution(max(1, low), high, log=True)
            return IntDistribution(low, high, step=step)
        flow, fhigh = float(space.min or ""), float(space.max or "")
        fstep = float(space.step) if space.step else None
        if log:
            if fstep is not None:
                raise ValidationError(f"{where}.feasibleSpace.step", "a logUniform parameter cannot have a step")
            return FloatDistribution(max(1e-10, flow), fhigh, log=True)
        return FloatDistribution(flow, fhigh, step=fstep)
    except ValidationError:
        raise
    except ValueError as exc:
        raise ValidationError(f"{where}.feasibleSpace", f"cannot be sampled: {exc}") from None


def _normal(low: str, high: str, step: str | None, distribution: str, kind: str, where: str) -> QuantileNormal:
    try:
        lo, hi = float(low), float(high)
        quantum = float(step) if step else None
        if distribution == Distribution.LOG_NORMAL:
            lo, hi = math.log(lo), math.log(hi)
    except ValueError as exc:
        raise ValidationError(f"{where}.feasibleSpace", f"cannot be sampled: {exc}") from None
    return QuantileNormal(
        mu=(lo + hi) / 2,
        sigma=(hi - lo) / 6,
        log=distribution == Distribution.LOG_NORMAL,
        integral=kind == ParameterType.INT,
        step=quantum,
    )


def encode(name: str, value: Any, distribution: BaseDistribution) -> ParameterAssignment:
    """An optuna parameter value as Katib's assignment string."""
    if isinstance(distribution, QuantileNormal):
        x = distribution.value(float(value))
        text = str(int(x)) if distribution.integral else str(x)
    elif isinstance(distribution, IntDistribution):
        text = str(int(value))
    elif isinstance(distribution, FloatDistribution):
        text = str(float(value))
    else:
        text = str(value)
    return ParameterAssignment(name=name, value=text)


def decode(value: str, distribution: BaseDistribution) -> Any:
    """Katib's assignment string as an optuna parameter value; ValueError if it does not fit."""
    if isinstance(distribution, QuantileNormal):
        return distribution.quantile(float(value))
    if isinstance(distribution, IntDistribution):
        return int(float(value))
    if isinstance(distribution, FloatDistribution):
        return float(value)
    if isinstance(distribution, CategoricalDistribution):
        if value not in distribution.choices:
            raise ValueError(f"{value!r} is not one of {distribution.choices}")
        return value
    raise ValueError(f"unknown distribution {distribution!r}")
