"""From a trial's rendered job to the command local mode runs (image ignored).

Finds the primary container in any job kind's pod template (Job, PyTorchJob, TrainJob, …),
resolves its env the way the kubelet would for what exists locally (literal values, ``$(VAR)``
expansion, the pod's metadata through ``fieldRef``), and refuses what cannot run here with a
clear message instead of running something else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from katib_core import constants
from katib_core.errors import ValidationError
from katib_core.models import Experiment, Trial
from pykatib_local.trial_process import Command, shell_argv

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")


#: Trial kinds whose work is not a pod template local mode could run as one process.
_UNRUNNABLE: dict[tuple[str, str], str] = {
    ("argoproj.io", "Workflow"): "an Argo Workflow",
    ("tekton.dev", "PipelineRun"): "a Tekton PipelineRun",
    ("trainer.kubeflow.org", "TrainJob"): "a Kubeflow Trainer TrainJob (its pods come from a runtime)",
}
_TEMPLATE = "spec.trialTemplate"


def check_runnable(experiment: Experiment) -> None:
    """Refuse, before anything is stored, an Experiment whose trials local mode cannot run.

    Raises:
        ValidationError: a ConfigMap template, an Argo/Tekton/TrainJob trial, no primary container
            in the trial's pod templates, or a primary container without ``command``.
    """
    spec = experiment.spec
    template = spec.trial_template if spec else None
    if template is None:
        return
    if template.config_map is not None:
        raise ValidationError(
            f"{_TEMPLATE}.configMap",
            "local mode reads no ConfigMaps: put the trial template under spec.trialTemplate.trialSpec",
        )
    run_spec = template.trial_spec or {}
    api_version, kind = str(run_spec.get("apiVersion") or ""), str(run_spec.get("kind") or "")
    what = _UNRUNNABLE.get((api_version.split("/")[0], kind))
    if what is not None:
        raise ValidationError(
            f"{_TEMPLATE}.trialSpec.kind",
            f"{api_version} {kind}: local mode cannot run {what}; it runs each trial as one process from a pod"
            " template (batch/v1 Job, PyTorchJob, TFJob, XGBoostJob, MPIJob, …). Run this Experiment on a cluster",
        )
    wanted = template.primary_container_name or constants.DEFAULT_PRIMARY_CONTAINER_NAME
    found = _find(run_spec, wanted, f"{_TEMPLATE}.trialSpec")
    if found is None:
        raise ValidationError(
            f"{_TEMPLATE}.primaryContainerName",
            f"no container {wanted!r} in the pod templates of the trial's {kind or 'object'}"
            f" (containers: {', '.join(_names(run_spec)) or 'none'})",
        )
    container, where = found
    if not container.get("command"):
        raise ValidationError(
            f"{where}.command",
            "local mode runs the container's command, and it has none (a cluster would run the image's"
            " ENTRYPOINT, which is not known here): write the program and its arguments under command",
        )


def primary_container(trial: Trial) -> tuple[dict[str, Any], dict[str, Any]]:
    """The primary container of the trial's job and its pod template's metadata.

    Raises:
        ValidationError: the job has no container named ``primaryContainerName``.
    """
    spec = trial.spec
    run_spec = (spec.run_spec if spec else None) or {}
    wanted = (spec.primary_container_name if spec else None) or constants.DEFAULT_PRIMARY_CONTAINER_NAME
    seen: list[str] = []
    for template in _pod_templates(run_spec):
        for container in (template.get("spec") or {}).get("containers") or []:
            if isinstance(container, dict):
                seen.append(str(container.get("name")))
                if container.get("name") == wanted:
                    return container, template.get("metadata") or {}
    raise ValidationError(
        "spec.trialTemplate.primaryContainerName",
        f"no container {wanted!r} in the trial's job (containers: {', '.join(seen) or 'none'})",
    )


def command_for(trial: Trial, *, extra_env: Mapping[str, str], default_cwd: Path | None = None) -> Command:
    """What to run for ``trial``: its primary container's command, args, env and workingDir
    (``default_cwd`` when it sets none, or names a directory that does not exist here)."""
    container, pod_meta = primary_container(trial)
    meta = trial.metadata
    trial_name = (meta.name if meta else None) or ""
    namespace = (meta.namespace if meta else None) or "default"
    labels = {
        **((meta.labels if meta else None) or {}),
        **(pod_meta.get("labels") or {}),
        constants.TRIAL_LABEL: trial_name,
    }
    fields = {
        "metadata.name": trial_name,
        "metadata.namespace": namespace,
        "spec.nodeName": "localhost",
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    env: dict[str, str] = {}
    for index, entry in enumerate(container.get("env") or []):
        where = f"trial container env[{index}]"
        name = entry.get("name")
        if not name:
            raise ValidationError(where, "has no name")
        if "value" in entry:
            env[name] = _expand(str(entry.get("value") or ""), {**env, **extra_env})
            continue
        source = entry.get("valueFrom") or {}
        field = (source.get("fieldRef") or {}).get("fieldPath")
        if field is None:
            raise ValidationError(
                f"{where}.valueFrom", "only fieldRef works in local mode (no Secrets or ConfigMaps here)"
            )
        env[name] = _field(field, fields, labels, pod_meta.get("annotations") or {}, where)
    env.update(extra_env)
    argv = tuple(_expand(arg, env) for arg in shell_argv(container.get("command"), container.get("args")))
    working = container.get("workingDir")
    cwd = Path(working) if working and Path(working).is_dir() else default_cwd
    return Command(argv=argv, env=env, cwd=cwd)


def gpu_limits(trial: Trial) -> Mapping[str, object]:
    container, _ = primary_container(trial)
    return ((container.get("resources") or {}).get("limits")) or {}


def image(trial: Trial) -> str | None:
    container, _ = primary_container(trial)
    return container.get("image")


def _pod_templates(node: Any, path: str = "") -> Iterator[dict[str, Any]]:
    for template, _ in _pod_templates_at(node, path):
        yield template


def _pod_templates_at(node: Any, path: str) -> Iterator[tuple[dict[str, Any], str]]:
    """Every pod template below ``node`` with its field path (``….spec.template``)."""
    if isinstance(node, dict):
        spec = node.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("containers"), list):
            yield node, path
        for key, value in node.items():
            yield from _pod_templates_at(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _pod_templates_at(item, f"{path}[{index}]")


def _find(run_spec: Mapping[str, Any], wanted: str, path: str) -> tuple[dict[str, Any], str] | None:
    for template, where in _pod_templates_at(run_spec, path):
        for index, container in enumerate(template["spec"]["containers"]):
            if isinstance(container, dict) and container.get("name") == wanted:
                return container, f"{where}.spec.containers[{index}]"
    return None


def _names(run_spec: Mapping[str, Any]) -> list[str]:
    return [
        str(c.get("name"))
        for template in _pod_templates(run_spec)
        for c in template["spec"]["containers"]
        if isinstance(c, dict)
    ]


def _field(
    path: str, fields: Mapping[str, str], labels: Mapping[str, str], annotations: Mapping[str, str], where: str
) -> str:
    if path in fields:
        return fields[path]
    match = _FIELD.fullmatch(path)
    if match:
        source = labels if match.group(1) == "labels" else annotations
        return str(source.get(match.group(2), ""))
    raise ValidationError(f"{where}.valueFrom.fieldRef.fieldPath", f"{path!r} is not available in local mode")


def _expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: known variables replaced, others left as written."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)
