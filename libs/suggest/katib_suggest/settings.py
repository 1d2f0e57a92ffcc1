"""Katib's algorithm settings (``spec.algorithm.algorithmSettings``) for the in-process algorithms.

``parse`` validates them the way Katib's suggestion services do (``ValidateAlgorithmSettings``)
and returns typed settings; every problem is a ``ValidationError`` naming the setting.
Setting names are Katib's: ``random_state``, ``n_startup_trials``, ``n_ei_candidates``, ``sigma``,
``restart_strategy``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from katib_core.errors import ValidationError
from katib_core.models import AlgorithmSpec

_FIELD: Final = "spec.algorithm.algorithmSettings"


@dataclass(frozen=True, slots=True)
class Settings:
    """Parsed settings; None means the sampler's default."""

    algorithm: str
    random_state: int | None = None
    n_startup_trials: int | None = None
    n_ei_candidates: int | None = None
    sigma: float | None = None
    restart_strategy: str | None = None


def _non_negative_int(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValidationError(f"{_FIELD}.{name}", f"{text!r} is not an integer") from None
    if value < 0:
        raise ValidationError(f"{_FIELD}.{name}", f"{value} should be greater than or equal to zero")
    return value


def _positive_float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValidationError(f"{_FIELD}.{name}", f"{text!r} is not a number") from None
    if not value > 0:  # optuna's CMA-ES needs a positive sigma0 (Katib lets 0 through, then fails)
        raise ValidationError(f"{_FIELD}.{name}", f"{value} should be greater than zero")
    return value


def _restart(name: str, text: str) -> str | None:
    if text in ("None", "none", ""):
        return None
    if text not in ("ipop", "bipop"):
        raise ValidationError(
            f"{_FIELD}.{name}", f"restart_strategy {text!r} is not supported: use ipop, bipop or none"
        )
    return text


_Parser = Callable[[str, str], object]
_TPE: Final[Mapping[str, _Parser]] = {
    "random_state": _non_negative_int,
    "n_startup_trials": _non_negative_int,
    "n_ei_candidates": _non_negative_int,
}
#: Settings each algorithm accepts.
SCHEMAS: Final[Mapping[str, Mapping[str, _Parser]]] = {
    "random": {"random_state": _non_negative_int},
    "grid": {"random_state": _non_negative_int},
    "tpe": _TPE,
    "multivariate-tpe": _TPE,
    "cmaes": {"random_state": _non_negative_int, "sigma": _positive_float, "restart_strategy": _restart},
    "sobol": {"random_state": _non_negative_int},
}
ALGORITHMS: Final = tuple(SCHEMAS)


def parse(algorithm: AlgorithmSpec | None) -> Settings:
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
        if key in values:
            raise ValidationError(f"{_FIELD}[{index}].name", f"setting {key!r} is given twice")
        values[key] = parser(key, setting.value or "")
    return Settings(algorithm=name, **values)  # type: ignore[arg-type]
