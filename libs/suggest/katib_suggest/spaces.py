"""Katib search spaces as optuna distributions, and assignments to and from their values.

int and double map to optuna's Int/FloatDistribution (``step``; ``logUniform`` → ``log=True``),
discrete and categorical to a CategoricalDistribution of their strings, as Katib's optuna service
does. ``grid_points`` enumerates a space for the grid algorithm.
"""

from __future__ import annotations

import decimal
import itertools
from collections.abc import Iterator, Sequence
from typing import Any, Final

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from katib_core import constants
from katib_core.errors import ValidationError
from katib_core.models import ParameterAssignment, ParameterSpec

ParameterType = constants.ParameterType
Distribution = constants.Distribution
#: Grids larger than this are refused (they would never be explored anyway).
MAX_GRID: Final = 1_000_000


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
    if distribution not in (Distribution.UNIFORM, Distribution.LOG_UNIFORM):
        raise ValidationError(
            f"{where}.feasibleSpace.distribution", f"{distribution!r} is not supported by the optuna samplers"
        )
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


def encode(name: str, value: Any, distribution: BaseDistribution) -> ParameterAssignment:
    """An optuna parameter value as Katib's assignment string."""
    if isinstance(distribution, IntDistribution):
        text = str(int(value))
    elif isinstance(distribution, FloatDistribution):
        text = str(float(value))
    else:
        text = str(value)
    return ParameterAssignment(name=name, value=text)


def decode(value: str, distribution: BaseDistribution) -> Any:
    """Katib's assignment string as an optuna parameter value; ValueError if it does not fit."""
    if isinstance(distribution, IntDistribution):
        return int(float(value))
    if isinstance(distribution, FloatDistribution):
        return float(value)
    if isinstance(distribution, CategoricalDistribution):
        if value not in distribution.choices:
            raise ValueError(f"{value!r} is not one of {distribution.choices}")
        return value
    raise ValueError(f"unknown distribution {distribution!r}")


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
