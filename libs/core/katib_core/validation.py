"""Rules an Experiment must follow, checked before anything is sent or stored.

Each check raises ``ValidationError`` naming the offending field (``spec.parameters[1].feasibleSpace.min``).
The SDK runs the client-side subset (``check_experiment``); the admission webhook and local mode
run Katib's whole rule set (docs/katib-compat.md#validation-rules) with ``validate_experiment``, which reports every
problem at once (``InvalidExperimentError``), as Katib's validator does. What the rules need to know
about an installation (algorithms, configured collectors) comes in as ``ValidationSettings``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from katib_core import collector_validation, constants, search_algorithms, template_validation
from katib_core.constants import CollectorKind
from katib_core.errors import ValidationError
from katib_core.models import Experiment, FeasibleSpace, ObjectiveSpec, ParameterSpec, unknown_fields

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


def unknown_spec_fields(experiment: Experiment) -> list[str]:
    """``spec`` fields the Katib API does not define, each ``path: unknown field[; did you mean X?]``
    (``metadata`` and ``status`` hold Kubernetes' and the controllers' fields: not checked)."""
    if experiment.spec is None:
        return []
    return [
        f"{path}: unknown field" + (f"; did you mean {close}?" if close else "")
        for path, close in unknown_fields(experiment.spec, "spec")
    ]


def check_known_fields(experiment: Experiment) -> None:
    """Refuse an Experiment with fields Katib does not define (``parallelTrialCout: 2`` would
    otherwise run with the default), as kubectl's strict field validation does.

    Raises:
        ValidationError: naming the first unknown field (all of them in the message).
    """
    problems = unknown_spec_fields(experiment)
    if problems:
        field, _, reason = problems[0].partition(": ")
        more = f" (also: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        raise ValidationError(field, reason + more)


def check_experiment(experiment: Experiment) -> None:
    """The checks a client can make without cluster state: name, objective, parameters, budget.

    Unknown fields are not refused here: against a cluster, a newer Katib may define them (its
    API server decides); local mode, which is the API, refuses them (``check_known_fields``)."""
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


# -- Katib's whole rule set (the admission webhook, local mode) ---------------------------------

#: The suggestion algorithms pykatib runs in-process.
PYKATIB_ALGORITHMS: Final = frozenset(search_algorithms.ALGORITHMS)
#: The early-stopping algorithms pykatib runs.
PYKATIB_EARLY_STOPPING: Final = frozenset({"medianstop"})
#: Pull kinds whose sidecar is configured in a default install (Katib's katib-config has these).
DEFAULT_COLLECTOR_KINDS: Final = frozenset({CollectorKind.STDOUT, CollectorKind.FILE, CollectorKind.TENSORFLOW_EVENT})
RESUME_POLICIES: Final = frozenset({"", *constants.ResumePolicy})


@dataclass(frozen=True)
class ValidationSettings:
    """What an installation provides: the rules accept only names it can run."""

    algorithms: frozenset[str] = PYKATIB_ALGORITHMS
    early_stopping_algorithms: frozenset[str] = PYKATIB_EARLY_STOPPING
    #: Auto-injected pull kinds that have a sidecar image configured.
    collector_kinds: frozenset[str] = DEFAULT_COLLECTOR_KINDS


class InvalidExperimentError(ValidationError):
    """Every rule an Experiment breaks; ``field`` is the first one's, ``errors`` all of them."""

    def __init__(self, errors: Sequence[ValidationError]) -> None:
        super().__init__(errors[0].field, errors[0].reason)
        self.errors = tuple(errors)
        self.args = ("; ".join(str(e) for e in errors),)  # str(): every problem, each with its field


def validate_experiment(
    experiment: Experiment,
    *,
    old: Experiment | None = None,
    settings: ValidationSettings = ValidationSettings(),  # noqa: B008 - frozen, shared on purpose
    config_map_template: Mapping[str, Any] | None = None,
    convert_batch_job: template_validation.JobConverter | None = None,
) -> None:
    """Check ``experiment`` against Katib's whole rule set (CREATE; UPDATE when ``old`` is given).

    Args:
        experiment: the (defaulted) Experiment.
        old: the stored Experiment on UPDATE.
        settings: the algorithms and collectors this installation has.
        config_map_template: the trial template read from ``spec.trialTemplate.configMap``
            (its content is checked only when given).
        convert_batch_job: the typed round trip of a ``batch/v1`` Job; when given, fields it
            drops are reported as Katib does.

    Raises:
        InvalidExperimentError: with every problem found, each naming its field.
    """
    problems = experiment_problems(
        experiment,
        old=old,
        settings=settings,
        config_map_template=config_map_template,
        convert_batch_job=convert_batch_job,
    )
    if problems:
        raise InvalidExperimentError(problems)


def experiment_problems(
    experiment: Experiment,
    *,
    old: Experiment | None = None,
    settings: ValidationSettings = ValidationSettings(),  # noqa: B008
    config_map_template: Mapping[str, Any] | None = None,
    convert_batch_job: template_validation.JobConverter | None = None,
) -> list[ValidationError]:
    """The problems ``validate_experiment`` raises, as a list (empty when valid).

    An UPDATE that leaves the spec alone (labels, finalizers, a deletion) is not checked again:
    unlike Katib, a changed installation (an algorithm removed) cannot block the controller from
    removing its finalizer.
    """
    if old is not None and _spec_json(experiment) == _spec_json(old):
        return []
    problems: list[ValidationError] = []
    meta = experiment.metadata
    if meta is None or not (meta.name or meta.generate_name):
        problems.append(ValidationError("metadata.name", "an Experiment needs a name or generateName"))
    elif meta.name:
        _collect(problems, check_experiment_name, meta.name)
    spec = experiment.spec
    if spec is None:
        return [*problems, ValidationError("spec", "is required")]
    _collect(
        problems,
        check_trial_counts,
        max_trial_count=spec.max_trial_count,
        parallel_trial_count=spec.parallel_trial_count,
        max_failed_trial_count=spec.max_failed_trial_count,
    )
    if old is not None:
        problems += update_problems(experiment, old)
    before = len(problems)
    _collect(problems, check_objective, spec.objective)
    if len(problems) > before:
        return problems  # Katib stops at a broken objective: later rules depend on it
    _collect(problems, check_algorithm, spec.algorithm.algorithm_name if spec.algorithm else None, settings)
    if spec.early_stopping is not None:
        _collect(problems, check_early_stopping, spec.early_stopping.algorithm_name, settings)
    if (spec.resume_policy or "") not in RESUME_POLICIES:
        known = ", ".join(sorted(p for p in RESUME_POLICIES if p))
        problems.append(ValidationError("spec.resumePolicy", f"{spec.resume_policy!r} must be one of {known}"))
    problems += template_validation.trial_template_problems(
        experiment, config_map_template=config_map_template, convert_batch_job=convert_batch_job
    )
    if spec.nas_config is None:
        before = len(problems)
        _collect(problems, check_parameters, spec.parameters)
        name = spec.algorithm.algorithm_name if spec.algorithm else None
        if len(problems) == before and name in PYKATIB_ALGORITHMS and name in settings.algorithms:
            # What Katib asks the algorithm's service (ValidateAlgorithmSettings): the same rule
            # our suggester runs by, so nothing admitted here is refused later.
            _collect(problems, search_algorithms.check, experiment)
    elif spec.parameters:
        problems.append(ValidationError("spec.parameters", "must be empty when spec.nasConfig is set"))
    problems += collector_validation.metrics_collector_problems(spec.metrics_collector_spec, settings.collector_kinds)
    return problems


def _spec_json(experiment: Experiment) -> dict[str, Any]:
    return experiment.spec.to_api() if experiment.spec else {}


def _collect(problems: list[ValidationError], check: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    try:
        check(*args, **kwargs)
    except ValidationError as exc:
        problems.append(exc)


def check_algorithm(name: str | None, settings: ValidationSettings) -> None:
    """An algorithm is named and this installation runs it."""
    if not name:
        raise ValidationError("spec.algorithm.algorithmName", "is required")
    if name not in settings.algorithms:
        known = ", ".join(sorted(settings.algorithms))
        raise ValidationError("spec.algorithm.algorithmName", f"{name!r} is not a known algorithm ({known})")


def check_early_stopping(name: str | None, settings: ValidationSettings) -> None:
    """A set ``spec.earlyStopping`` names an early-stopping algorithm this installation runs."""
    if not name:
        raise ValidationError("spec.earlyStopping.algorithmName", "is required")
    if name not in settings.early_stopping_algorithms:
        known = ", ".join(sorted(settings.early_stopping_algorithms)) or "none"
        raise ValidationError(
            "spec.earlyStopping.algorithmName", f"{name!r} is not a known early-stopping algorithm ({known})"
        )


# -- UPDATE ------------------------------------------------------------------------------------

_EDITABLE: Final = ("parallelTrialCount", "maxTrialCount", "maxFailedTrialCount")


def update_problems(new: Experiment, old: Experiment) -> list[ValidationError]:
    """Katib's UPDATE rules: only the three counts may change, and a finished Experiment is
    restartable only when it reached maxTrialCount with resumePolicy LongRunning or FromVolume."""
    new_spec, old_spec = _spec_json(new), _spec_json(old)
    if new_spec == old_spec:
        return []
    problems: list[ValidationError] = []
    status = old.status
    completed = status is not None and (
        status.has_condition(constants.ExperimentConditionType.SUCCEEDED)
        or status.has_condition(constants.ExperimentConditionType.FAILED)
    )
    if completed and not _restartable(old):
        problems.append(
            ValidationError(
                "spec.resumePolicy",
                "a completed Experiment can be restarted only if it succeeded by reaching maxTrialCount"
                " and its resumePolicy is LongRunning or FromVolume",
            )
        )
    trials = (status.trials if status else None) or 0
    if new.spec and new.spec.max_trial_count is not None and new.spec.max_trial_count <= trials:
        problems.append(
            ValidationError(
                "spec.maxTrialCount", f"{new.spec.max_trial_count} must be greater than status.trials ({trials})"
            )
        )
    for key in _EDITABLE:
        new_spec.pop(key, None)
        old_spec.pop(key, None)
    if new_spec != old_spec:
        changed = sorted(k for k in {*new_spec, *old_spec} if new_spec.get(k) != old_spec.get(k))
        problems.append(
            ValidationError(
                "spec",
                "only spec.parallelTrialCount, spec.maxTrialCount and spec.maxFailedTrialCount are editable"
                f" (changed: {', '.join('spec.' + k for k in changed)})",
            )
        )
    return problems


def _restartable(old: Experiment) -> bool:
    status = old.status
    if status is None or not status.has_condition(constants.ExperimentConditionType.SUCCEEDED):
        return False
    reasons = {c.reason for c in status.conditions or () if c.type == constants.ExperimentConditionType.SUCCEEDED}
    policy = old.spec.resume_policy if old.spec else None
    return constants.ExperimentReason.MAX_TRIALS_REACHED in reasons and policy in (
        constants.ResumePolicy.LONG_RUNNING,
        constants.ResumePolicy.FROM_VOLUME,
    )
