"""Search-space helpers for ``KatibClient.tune(parameters=...)``: ``katib.search.double(0.1, 0.2)``.

Each returns a ``ParameterSpec`` (``katib_core.models``); numbers become strings as Katib stores
them. Unlike kubeflow-katib ≥ 0.18, ``categorical`` fills ``feasibleSpace.list`` (upstream puts
the values in ``distribution``, which Katib rejects: docs/katib-compat.md#search-helpers).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable

from katib_core import constants
from katib_core.errors import ValidationError
from katib_core.models import FeasibleSpace, ParameterSpec

__all__ = ["categorical", "discrete", "double", "int"]


def double(min: float, max: float, step: float | None = None, *, distribution: str | None = None) -> ParameterSpec:
    """A float between ``min`` and ``max`` (optionally on a ``step`` grid, or from a ``distribution``)."""
    return _numeric(constants.ParameterType.DOUBLE, min, max, step, distribution)


def int(  # - upstream's name
    min: builtins.int,
    max: builtins.int,
    step: builtins.int | None = None,
    *,
    distribution: str | None = None,
) -> ParameterSpec:
    """An integer between ``min`` and ``max`` inclusive (optionally every ``step``)."""
    return _numeric(constants.ParameterType.INT, min, max, step, distribution)


def categorical(list: Iterable[object]) -> ParameterSpec:  # - upstream's argument name
    """One of the values in ``list`` (as strings, in ``feasibleSpace.list``)."""
    return ParameterSpec(
        parameter_type=constants.ParameterType.CATEGORICAL, feasible_space=FeasibleSpace(list=_values(list))
    )


def discrete(list: Iterable[float]) -> ParameterSpec:
    """One of the numbers in ``list`` (Katib's ``discrete`` type)."""
    return ParameterSpec(
        parameter_type=constants.ParameterType.DISCRETE, feasible_space=FeasibleSpace(list=_values(list))
    )


def _numeric(kind: str, low: float, high: float, step: float | None, distribution: str | None) -> ParameterSpec:
    if distribution is not None and distribution not in tuple(constants.Distribution):
        known = ", ".join(str(d) for d in constants.Distribution)
        raise ValidationError("distribution", f"{distribution!r} must be one of {known}")
    space = FeasibleSpace(
        min=str(low), max=str(high), step=None if step is None else str(step), distribution=distribution
    )
    return ParameterSpec(parameter_type=kind, feasible_space=space)


def _values(values: Iterable[object]) -> builtins.list[str]:
    if isinstance(values, str):
        raise ValidationError("list", f"expected a list of values, got the string {values!r}")
    return [str(value) for value in values]
