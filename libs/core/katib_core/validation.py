"""Rules an Experiment must follow, checked before anything is sent or stored.

Each check raises ``ValidationError`` naming the offending field (``spec.parameters[1].feasibleSpace.min``).
The SDK runs them client-side; the admission webhook builds its ``/validate-experiment`` answer on
the same functions (Katib's rules: katib-compat §8.2).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from katib_core import constants
from katib_core.errors import ValidationError
from katib_core.models import Experiment, FeasibleSpace, ObjectiveSpec, ParameterSpec

#: Katib's experiment name rule (also a DNS label), at most 40 characters.
_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
MAX_NAME_LENGTH = 40
_NUMERIC_TYPES = (constants.ParameterType.INT, constants.ParameterType.DOUBLE)
_LISTED_TYPES = (constants.ParameterType.CATEGORICAL, constants.ParameterType.DISCRETE)


def check_experiment_name(name: str | None, *, field: str = "metadata.name") -> str:
    """Return ``name`` if Katib accepts it as an Experiment name."""
    if not name:
        raise ValidationError(field, "must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationError(field, f"{name!r} is {len(name)} characters long, the limit is {MAX_NAME_LENGTH}")
    if _NAME.fullmatch(name) is None:
        raise ValidationError(
            field,
            f"{name!r} must be lowercase letters, digits and '-', start with a letter and end with one or a digit",
        )
    return name


def check_objective(objective: ObjectiveSpec | None, *, field: str = "spec.objective") -> None:
    """Type is minimize/maximize, the objective metric is named, and not repeated as additional."""
    if objective is None:
        raise ValidationError(field, "is required")
    if objective.type not in tuple(constants.ObjectiveType):
        raise ValidationError(f"{field}.type", f"{objective.type!r} must be 'minimize' or 'maximize'")
    if not objective.objective_metric_name:
        raise ValidationError(f"{field}.objectiveMetricName", "is required")
    if objective.goal is not None and not math.isfinite(objective.goal):
        raise ValidationError(f"{field}.goal", f"{objective.goal!r} must be a finite number")
    for index, name in enumerate(objective.additional_metric_names or ()):
        if not name:
            raise ValidationError(f"{field}.additionalMetricNames[{index}]", "must not be empty")
        if name == objective.objective_metric_name:
            raise ValidationError(
                f"{field}.additionalMetricNames[{index}]", f"{name!r} must not repeat the objective metric"
            )


def check_parameters(parameters: Sequence[ParameterSpec] | None, *, field: str = "spec.parameters") -> None:
    """Each parameter is named once, has a known type and a feasible space that fits it."""
    if not parameters:
        raise ValidationError(field, "must list at least one parameter")
    seen: set[str] = set()
    for index, parameter in enumerate(parameters):
        where = f"{field}[{index}]"
        if not parameter.name:
            raise ValidationError(f"{where}.name", "is required")
        if parameter.name in seen:
            raise ValidationError(f"{where}.name", f"{parameter.name!r} is declared twice")
        seen.add(parameter.name)
        _check_parameter(parameter, where)


def _check_parameter(parameter: ParameterSpec, where: str) -> None:
    kind = parameter.parameter_type
    if kind not in tuple(constants.ParameterType):
        known = ", ".join(repr(str(t)) for t in constants.ParameterType)
        raise ValidationError(f"{where}.parameterType", f"{kind!r} must be one of {known}")
    space = parameter.feasible_space
    if space is None or not space.to_api():
        raise ValidationError(f"{where}.feasibleSpace", "must not be empty")
    if space.distribution and space.distribution not in tuple(constants.Distribution):
        raise ValidationError(f"{where}.feasibleSpace.distribution", f"{space.distribution!r} is not a distribution")
    if kind in _NUMERIC_TYPES:
        _check_range(space, kind, where)
    elif kind in _LISTED_TYPES:
        _check_list(space, kind, where)


def _check_range(space: FeasibleSpace, kind: str, where: str) -> None:
    if space.list:
        raise ValidationError(f"{where}.feasibleSpace.list", f"must be empty for a {kind} parameter")
    integral = kind == constants.ParameterType.INT
    low = _number(space.min, f"{where}.feasibleSpace.min", integral=integral)
    high = _number(space.max, f"{where}.feasibleSpace.max", integral=integral)
    if low > high:
        raise ValidationError(f"{where}.feasibleSpace", f"min {space.min} is greater than max {space.max}")
    if space.step is not None and _number(space.step, f"{where}.feasibleSpace.step", integral=False) <= 0:
        raise ValidationError(f"{where}.feasibleSpace.step", f"{space.step!r} must be positive")


def _check_list(space: FeasibleSpace, kind: str, where: str) -> None:
    for name in ("min", "max", "step"):
        if getattr(space, name) is not None:
            raise ValidationError(f"{where}.feasibleSpace.{name}", f"must be empty for a {kind} parameter")
    if not space.list:
        raise ValidationError(f"{where}.feasibleSpace.list", f"must list the values of a {kind} parameter")
    if kind == constants.ParameterType.DISCRETE:
        for index, value in enumerate(space.list):
            _number(value, f"{where}.feasibleSpace.list[{index}]", integral=False)


def _number(text: str | None, field: str, *, integral: bool) -> float:
    if text is None or text == "":
        raise ValidationError(field, "is required")
    try:
        value = int(text) if integral else float(text)
    except ValueError:
        raise ValidationError(field, f"{text!r} is not {'an integer' if integral else 'a number'}") from None
    if not math.isfinite(value):
        raise ValidationError(field, f"{text!r} must be finite")
    return value


def check_trial_counts(
    *, max_trial_count: int | None, parallel_trial_count: int | None, max_failed_trial_count: int | None
) -> None:
    """Katib's budget rules: positive counts, and neither parallel nor failed above the maximum."""
    if max_trial_count is not None and max_trial_count <= 0:
        raise ValidationError("spec.maxTrialCount", f"{max_trial_count} must be greater than 0")
    if parallel_trial_count is not None and parallel_trial_count <= 0:
        raise ValidationError("spec.parallelTrialCount", f"{parallel_trial_count} must be greater than 0")
    if max_failed_trial_count is not None and max_failed_trial_count < 0:
        raise ValidationError("spec.maxFailedTrialCount", f"{max_failed_trial_count} must not be negative")
    if max_trial_count is not None:
        if max_failed_trial_count is not None and max_failed_trial_count > max_trial_count:
            raise ValidationError("spec.maxFailedTrialCount", f"{max_failed_trial_count} exceeds maxTrialCount")
        if parallel_trial_count is not None and parallel_trial_count > max_trial_count:
            raise ValidationError("spec.parallelTrialCount", f"{parallel_trial_count} exceeds maxTrialCount")


def check_experiment(experiment: Experiment) -> None:
    """The checks a client can make without cluster state: name, objective, parameters, budget."""
    meta = experiment.metadata
    if meta is None or not (meta.name or meta.generate_name):
        raise ValidationError("metadata.name", "an Experiment needs a name or generateName")
    if meta.name:
        check_experiment_name(meta.name)
    spec = experiment.spec
    if spec is None:
        raise ValidationError("spec", "is required")
    check_objective(spec.objective)
    if spec.nas_config is None:
        check_parameters(spec.parameters)
    elif spec.parameters:
        raise ValidationError("spec.parameters", "must be empty when spec.nasConfig is set")
    check_trial_counts(
        max_trial_count=spec.max_trial_count,
        parallel_trial_count=spec.parallel_trial_count,
        max_failed_trial_count=spec.max_failed_trial_count,
    )
