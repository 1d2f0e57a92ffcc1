"""From an Experiment and one parameter assignment to a Trial: names, labels, runSpec.

Katib's rules: docs/katib-compat.md#trial-rendering.

``render_run_spec`` fills the trial template: every ``${trialParameters.<name>}`` becomes the value
its ``reference`` points to — a parameter of the assignment, or trial metadata
(``${trialSpec.Name}``, ``${trialSpec.Namespace}``, ``${trialSpec.Kind}``, ``${trialSpec.APIVersion}``,
``${trialSpec.Labels[key]}``, ``${trialSpec.Annotations[key]}``; labels and annotations are the
rendered job's). Substitution walks the JSON strings (keys and values), so a value with quotes
can never break the document. Called by the experiment controller and local mode.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable, Container, Mapping, Sequence
from typing import Any, Final

from katib_core import constants
from katib_core.errors import ValidationError
from katib_core.models import Experiment, ObjectMeta, ParameterAssignment, Trial, TrialAssignment, TrialSpec

#: Katib's trial-name suffix alphabet (no vowels, no look-alikes) and length.
NAME_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"
NAME_SUFFIX_LENGTH: Final = 8

_PLACEHOLDER = re.compile(r"\$\{trialParameters\.([^}]+)\}")
_META = re.compile(r"\$\{trialSpec\.(Name|Namespace|Kind|APIVersion|Labels\[([^\]]+)\]|Annotations\[([^\]]+)\])\}")


def new_trial_name(experiment_name: str, *, taken: Container[str], rng: random.Random) -> str:
    """``<experiment>-<8 characters of NAME_ALPHABET>``, not in ``taken``."""
    while True:
        suffix = "".join(rng.choice(NAME_ALPHABET) for _ in range(NAME_SUFFIX_LENGTH))
        name = f"{experiment_name}-{suffix}"
        if name not in taken:
            return name


def trial_labels(experiment: Experiment, assignment: TrialAssignment | None = None) -> dict[str, str]:
    """The Experiment's labels, ``katib.kubeflow.org/experiment=<name>``, then the suggestion's labels."""
    meta = experiment.metadata or ObjectMeta()
    labels = dict(meta.labels or {})
    labels[constants.EXPERIMENT_LABEL] = meta.name or ""
    if assignment is not None:
        labels.update(assignment.labels or {})
    return labels


def render_run_spec(
    experiment: Experiment,
    template: Mapping[str, Any],
    *,
    trial_name: str,
    namespace: str,
    assignments: Sequence[ParameterAssignment],
) -> dict[str, Any]:
    """The trial's job: ``template`` with its placeholders filled and name/namespace set.

    Raises:
        ValidationError: a trial parameter's reference is neither an assigned parameter nor trial
            metadata, or names a label/annotation the job does not have.
    """
    spec = experiment.spec
    trial_parameters = (spec.trial_template.trial_parameters if spec and spec.trial_template else None) or []
    values = {a.name: a.value or "" for a in assignments if a.name}
    direct: dict[str, str] = {}
    meta_refs: dict[str, re.Match[str]] = {}
    for index, parameter in enumerate(trial_parameters):
        reference = parameter.reference or ""
        if parameter.name is None:
            raise ValidationError(f"spec.trialTemplate.trialParameters[{index}].name", "is required")
        if reference in values:
            direct[parameter.name] = values[reference]
            continue
        match = _META.fullmatch(reference)
        if match is None:
            raise ValidationError(
                f"spec.trialTemplate.trialParameters[{index}].reference",
                f"{reference!r} is neither a parameter of the assignment {sorted(values)} nor trial metadata",
            )
        meta_refs[parameter.name] = match
    rendered: dict[str, Any] = _substitute(copy.deepcopy(dict(template)), lambda name: direct.get(name))
    metadata = rendered.setdefault("metadata", {})
    metadata["name"] = trial_name
    metadata["namespace"] = namespace
    if meta_refs:
        resolved = {name: _meta_value(match, rendered, trial_name, namespace) for name, match in meta_refs.items()}
        rendered = _substitute(rendered, lambda name: resolved.get(name))
    return rendered


def _meta_value(match: re.Match[str], job: Mapping[str, Any], trial_name: str, namespace: str) -> str:
    field, label, annotation = match.group(1), match.group(2), match.group(3)
    if field == "Name":
        return trial_name
    if field == "Namespace":
        return namespace
    if field == "Kind":
        return str(job.get("kind", ""))
    if field == "APIVersion":
        return str(job.get("apiVersion", ""))
    metadata = job.get("metadata") or {}
    source, key = ("labels", label) if label is not None else ("annotations", annotation)
    found = (metadata.get(source) or {}).get(key)
    if found is None:
        raise ValidationError(
            "spec.trialTemplate.trialSpec", f"the job has no {source[:-1]} {key!r} for {match.group(0)}"
        )
    return str(found)


def _substitute(value: Any, lookup: Callable[[str], str | None]) -> Any:
    if isinstance(value, str):
        if "${" not in value:
            return value
        return _PLACEHOLDER.sub(lambda m: _or_keep(lookup(m.group(1)), m.group(0)), value)
    if isinstance(value, dict):
        return {_substitute(k, lookup): _substitute(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(item, lookup) for item in value]
    return value


def _or_keep(found: str | None, original: str) -> str:
    return original if found is None else found


def build_trial(
    experiment: Experiment,
    assignment: TrialAssignment,
    *,
    template: Mapping[str, Any] | None = None,
) -> Trial:
    """The Trial for ``assignment`` (its ``name`` must be set): spec copied from the Experiment, runSpec rendered.

    ``template`` is the trial job template; default ``spec.trialTemplate.trialSpec`` (a shell that
    reads templates from ConfigMaps passes the loaded one). The Trial is owned by the Experiment
    when the Experiment has a uid, and carries the ``clean-metrics-in-db`` finalizer from the start.

    Raises:
        ValidationError: no template, or a placeholder that cannot be filled.
    """
    if not assignment.name:
        raise ValidationError("assignment.name", "is required")
    meta = experiment.metadata or ObjectMeta()
    spec = experiment.spec
    trial_template = spec.trial_template if spec else None
    if template is None:
        template = trial_template.trial_spec if trial_template else None
    if not template:
        raise ValidationError("spec.trialTemplate.trialSpec", "is required to render a trial")
    namespace = meta.namespace or "default"
    run_spec = render_run_spec(
        experiment,
        template,
        trial_name=assignment.name,
        namespace=namespace,
        assignments=assignment.parameter_assignments or [],
    )
    owners = None
    if meta.uid:
        owners = [
            {
                "apiVersion": experiment.api_version or constants.API_VERSION,
                "kind": constants.EXPERIMENT_KIND,
                "name": meta.name,
                "uid": meta.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return Trial(
        metadata=ObjectMeta(
            name=assignment.name,
            namespace=namespace,
            labels=trial_labels(experiment, assignment),
            owner_references=owners,
            finalizers=[constants.CLEAN_METRICS_FINALIZER],
        ),
        spec=TrialSpec(
            objective=spec.objective.model_copy(deep=True) if spec and spec.objective else None,
            parameter_assignments=[a.model_copy() for a in assignment.parameter_assignments or []],
            early_stopping_rules=[r.model_copy() for r in assignment.early_stopping_rules or []] or None,
            run_spec=run_spec,
            retain_run=bool(trial_template.retain) if trial_template else False,
            metrics_collector=(
                spec.metrics_collector_spec.model_copy(deep=True) if spec and spec.metrics_collector_spec else None
            ),
            primary_pod_labels=dict(trial_template.primary_pod_labels or {}) or None if trial_template else None,
            primary_container_name=trial_template.primary_container_name if trial_template else None,
            success_condition=trial_template.success_condition if trial_template else None,
            failure_condition=trial_template.failure_condition if trial_template else None,
            labels=dict(assignment.labels) if assignment.labels else None,
        ),
    )


#: Job kinds whose Pod template we know (``apiVersion``, ``kind``) → path of the template.
_POD_TEMPLATES: Final[Mapping[tuple[str, str], tuple[str, ...]]] = {("batch/v1", "Job"): ("spec", "template")}


def job_object(
    run_spec: Mapping[str, Any], *, trial_name: str, trial_namespace: str, experiment: str | None
) -> dict[str, Any]:
    """The job the trial controller creates from a Trial's ``runSpec`` (the owner reference is the shell's).

    The job gets the labels ``katib.kubeflow.org/trial`` and ``…/experiment``. So does the Pod
    template of a kind whose template we know (``batch/v1`` Job): its Pods then say which Trial
    they run, and the pod webhook registered for such Pods (``failurePolicy: Fail``) injects
    ``KATIB_TRIAL_NAME`` before they can start, even while the webhook is briefly unreachable.
    ``run_spec`` is not changed.
    """
    body: dict[str, Any] = copy.deepcopy(dict(run_spec))
    labels = {constants.TRIAL_LABEL: trial_name}
    if experiment:
        labels[constants.EXPERIMENT_LABEL] = experiment
    meta = body.setdefault("metadata", {})
    meta["namespace"] = meta.get("namespace") or trial_namespace
    meta["labels"] = {**labels, **(meta.get("labels") or {}), constants.TRIAL_LABEL: trial_name}
    path = _POD_TEMPLATES.get((str(body.get("apiVersion")), str(body.get("kind"))))
    if path is not None:
        template = body
        for key in path:
            template = template.setdefault(key, {}) if isinstance(template, dict) else {}
        if isinstance(template, dict):
            pod_meta = template.setdefault("metadata", {})
            pod_meta["labels"] = {**labels, **(pod_meta.get("labels") or {}), constants.TRIAL_LABEL: trial_name}
    return body
