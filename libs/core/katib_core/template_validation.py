"""Katib's trial-template rules (docs/katib-compat.md#validation-rules), part of ``validation.validate_experiment``.

The template (``trialSpec``, or the one read from the ConfigMap) must use exactly the declared
``${trialParameters.X}``, each referring to an Experiment parameter or to the Trial itself
(``${trialSpec.Name}``…); it must be an unnamed object with apiVersion and kind, and a batch/v1 Job
must survive the typed Job model unchanged (checked when a converter is given).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import pydantic

from katib_core import patches, quantities
from katib_core.errors import ValidationError
from katib_core.models import Experiment, first_error
from katib_core.models.experiments import TrialTemplate

#: ``${trialParameters.<name>}`` in a trial template.
PARAMETER_PLACEHOLDER: Final = "${{trialParameters.{}}}"
_ANY_PLACEHOLDER = re.compile(r"\$\{trialParameters\..+?\}")
#: Trial metadata a trial parameter may refer to instead of an Experiment parameter.
_META_REFERENCE = re.compile(r"\{trialSpec\.(.+)\}")
_META_INDEXED = re.compile(r"(.+)\[(.+)\]")
_META_KEYS: Final = frozenset({"Name", "Namespace", "Kind", "APIVersion", "Labels", "Annotations"})
_BATCH_JOB = ("batch/v1", "Job")

#: Returns a batch/v1 Job as it comes back from the typed Kubernetes model (unknown fields dropped).
JobConverter = Callable[[dict[str, Any]], dict[str, Any]]

_TEMPLATE = "spec.trialTemplate"


def trial_template_problems(
    experiment: Experiment,
    *,
    config_map_template: Mapping[str, Any] | None = None,
    convert_batch_job: JobConverter | None = None,
) -> list[ValidationError]:
    """Katib's trial-template rules (see ``validate_experiment`` for the arguments)."""
    spec = experiment.spec
    template = spec.trial_template if spec else None
    if template is None:
        return [ValidationError(_TEMPLATE, "is required")]
    problems: list[ValidationError] = []
    if not template.primary_container_name:
        problems.append(ValidationError(f"{_TEMPLATE}.primaryContainerName", "is required"))
    if not template.success_condition or not template.failure_condition:
        problems.append(ValidationError(_TEMPLATE, "successCondition and failureCondition are required"))
    if template.trial_parameters is None:
        return [*problems, ValidationError(f"{_TEMPLATE}.trialParameters", "is required")]
    if (template.trial_spec is None) == (template.config_map is None):
        return [*problems, ValidationError(_TEMPLATE, "exactly one of trialSpec and configMap must be set")]
    source: Mapping[str, Any] | None = template.trial_spec
    if template.config_map is not None:
        cm = template.config_map
        if not (cm.config_map_name and cm.config_map_namespace and cm.template_path):
            return [
                *problems,
                ValidationError(
                    f"{_TEMPLATE}.configMap", "configMapName, configMapNamespace and templatePath are required"
                ),
            ]
        source = config_map_template
    names = [p.name for p in (spec.parameters if spec else None) or () if p.name]
    problems += _trial_parameter_problems(template, names)
    if source is not None and not problems:
        problems += _template_content_problems(template, source, convert_batch_job)
    return problems


def _trial_parameter_problems(template: TrialTemplate, parameter_names: Sequence[str]) -> list[ValidationError]:
    problems: list[ValidationError] = []
    seen_names: set[str] = set()
    seen_refs: set[str] = set()
    for index, parameter in enumerate(template.trial_parameters or ()):
        where = f"{_TEMPLATE}.trialParameters[{index}]"
        name, reference = parameter.name or "", parameter.reference or ""
        if not name or not reference or "{" in name or "}" in name:
            problems.append(
                ValidationError(where, "name and reference are required, and name must not hold '{' or '}'")
            )
            continue
        if name in seen_names:
            problems.append(ValidationError(f"{where}.name", f"{name!r} is declared twice"))
            continue
        if reference in seen_refs:
            problems.append(ValidationError(f"{where}.reference", f"{reference!r} is referenced twice"))
            continue
        seen_names.add(name)
        seen_refs.add(reference)
        if parameter_names and not is_meta_reference(reference) and reference not in parameter_names:
            problems.append(
                ValidationError(
                    f"{where}.reference",
                    f"{reference!r} is not in spec.parameters ({', '.join(parameter_names)})",
                )
            )
    return problems


def is_meta_reference(reference: str) -> bool:
    """Whether a trial parameter refers to the Trial itself (``${trialSpec.Name}``, ``${trialSpec.Labels[k]}``…)."""
    match = _META_REFERENCE.search(reference)
    if match is None:
        return False
    key = match.group(1)
    indexed = _META_INDEXED.fullmatch(key)
    return key in _META_KEYS or (indexed is not None and indexed.group(1) in _META_KEYS)


def _template_content_problems(
    template: TrialTemplate, source: Mapping[str, Any], convert_batch_job: JobConverter | None
) -> list[ValidationError]:
    text = json.dumps(source, ensure_ascii=False)
    for index, parameter in enumerate(template.trial_parameters or ()):
        placeholder = PARAMETER_PLACEHOLDER.format(parameter.name)
        if placeholder not in text:
            return [
                ValidationError(
                    f"{_TEMPLATE}.trialParameters[{index}].name", f"{placeholder} is not used in the trial template"
                )
            ]
        text = text.replace(placeholder, "test-value")
    unknown = sorted(set(_ANY_PLACEHOLDER.findall(text)))
    if unknown:
        return [ValidationError(_TEMPLATE, f"{', '.join(unknown)} are not declared in trialParameters")]
    run_spec = json.loads(text)
    if not isinstance(run_spec, dict):
        return [ValidationError(_TEMPLATE, "the trial template must be an object")]
    problems: list[ValidationError] = []
    metadata = run_spec.get("metadata") or {}
    if metadata.get("name") or metadata.get("namespace"):
        problems.append(ValidationError(_TEMPLATE, "metadata.name and metadata.namespace must be omitted"))
    if not run_spec.get("apiVersion") or not run_spec.get("kind"):
        problems.append(ValidationError(_TEMPLATE, "apiVersion and kind are required"))
    if (run_spec.get("apiVersion"), run_spec.get("kind")) == _BATCH_JOB and convert_batch_job is not None:
        where = f"{_TEMPLATE}.trialSpec" if template.config_map is None else f"{_TEMPLATE}.configMap"
        problems += _batch_job_problems(run_spec, convert_batch_job, where)
    return problems


def _batch_job_problems(run_spec: dict[str, Any], convert: JobConverter, where: str) -> list[ValidationError]:
    try:
        # Quantities may be YAML numbers (``nvidia.com/gpu: 1``), as Kubernetes and Katib allow;
        # the typed Job model takes only strings.
        run_spec = quantities.normalize_resources(run_spec, field=where)
        typed = convert(run_spec)
    except ValidationError as exc:
        return [exc]
    except pydantic.ValidationError as exc:
        where, message = first_error(exc)
        return [ValidationError(_TEMPLATE, f"is not a valid batch/v1 Job: {where}: {message}")]
    except (TypeError, ValueError) as exc:
        return [ValidationError(_TEMPLATE, f"is not a valid batch/v1 Job: {str(exc).splitlines()[0]}")]
    for op in patches.diff(typed, run_spec):
        # Katib ignores resource lists: device plugins add resource names the typed model lacks.
        if op["op"] != "remove" and "/resources/limits/" not in op["path"] and "/resources/requests/" not in op["path"]:
            value = json.dumps(op.get("value"))[:80]
            return [
                ValidationError(_TEMPLATE, f"is not a valid batch/v1 Job: {op['path']} = {value} is not a Job field")
            ]
    return []
