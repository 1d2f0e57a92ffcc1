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
from katib_core.models import Trial
from pykatib_local.trial_process import Command, shell_argv

_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")


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


def _pod_templates(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        spec = node.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("containers"), list):
            yield node
        for value in node.values():
            yield from _pod_templates(value)
    elif isinstance(node, list):
        for item in node:
            yield from _pod_templates(item)


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
