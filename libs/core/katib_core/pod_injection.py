"""What the pod webhook does to a Trial's Pod (docs/katib-compat.md#pod-injection), decided without I/O.

``mutate_pod(pod, trial, settings)`` returns the Pod as it should be created and
``pod_patch`` the JSON Patch to get there:

1. every Pod of the Trial gets the Trial's labels and ``katib.kubeflow.org/trial=<trial>``;
2. its primary container (``trial.spec.primaryContainerName``) gets ``KATIB_TRIAL_NAME`` (a
   fieldRef on that label) and ``KATIB_DB_MANAGER_ADDRESS`` — each only if not already set;
   a primary Pod without that container is rejected with Katib's message;
3. Pods that do not carry ``primaryPodLabels``, and **every Push trial**, stop there;
4. pull kinds get the collector sidecar with Katib's flags, ``shareProcessNamespace``, the
   ``metrics-volume`` emptyDir, and (StdOut, File, TensorFlowEvent) the wrapped command that
   redirects output and writes the ``completed`` marker the sidecar waits for.

Departures from Katib, on purpose: a non-primary Pod lacking the primary container is labelled,
not rejected; the original argv is shell-quoted (Katib joins it with spaces) and an ``sh -c``
script runs in a subshell so the redirect covers all of it; a failed command keeps its exit
status; the command of an image is never fetched from a registry (a Pod whose primary container
has no ``command`` cannot be wrapped and is rejected); a failure is marked ``failed`` at once, so
the sidecar needs no process to know it.
"""

from __future__ import annotations

import copy
import posixpath
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from katib_core import constants, early_stopping, patches, push_auth, stop_rules, training_markers
from katib_core.constants import CollectorKind, FileSystemKind
from katib_core.errors import ValidationError
from katib_core.models import MetricsCollectorSpec, Trial

Pod = dict[str, Any]

METRICS_VOLUME: Final = "metrics-volume"
#: Sidecar names: Katib calls the StdOut/File one a logger too.
LOGGER_COLLECTOR_NAME: Final = "metrics-logger-and-collector"
COLLECTOR_NAME: Final = "metrics-collector"
DEFAULT_METRICS_FILE: Final = "/var/log/katib/metrics.log"
#: Katib's katib-config defaults for every collector sidecar.
DEFAULT_RESOURCES: Final[Mapping[str, Mapping[str, str]]] = MappingProxyType(
    {
        "requests": MappingProxyType({"cpu": "50m", "memory": "10Mi", "ephemeral-storage": "500Mi"}),
        "limits": MappingProxyType({"cpu": "500m", "memory": "100Mi", "ephemeral-storage": "5Gi"}),
    }
)
#: Kinds whose training command is wrapped (output redirect, completion marker).
WRAPPED_KINDS: Final = frozenset({CollectorKind.STDOUT, CollectorKind.FILE, CollectorKind.TENSORFLOW_EVENT})
_SHELLS: Final = frozenset({"sh", "bash"})


class InjectionError(ValidationError):
    """The Pod cannot be admitted as the Trial needs it (the webhook denies it)."""


@dataclass(frozen=True)
class CollectorImage:
    """How to run the sidecar of one collector kind (an entry of katib-config's ``metricsCollectors``)."""

    image: str
    image_pull_policy: str = "IfNotPresent"
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_RESOURCES)
    #: ``-w``: wait for every process of the Pod, not only the training (None: collector default).
    wait_all_processes: bool | None = None
    #: Overrides the image's entrypoint when set.
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class InjectionSettings:
    """What the webhook was configured with."""

    #: Injected as ``KATIB_DB_MANAGER_ADDRESS`` and passed to sidecars as ``-s-db``.
    db_manager_address: str = constants.DEFAULT_DB_MANAGER_ADDRESS
    #: Sidecar per pull kind; a kind missing here cannot be injected.
    collectors: Mapping[str, CollectorImage] = field(default_factory=dict)
    #: ``-s-earlystop`` for trials with early-stopping rules (empty: none is passed).
    early_stopping_address: str = ""
    #: Copy the first container's ``securityContext`` to the sidecar.
    inject_security_context: bool = False
    #: Authenticated pushes: the container that reports (the primary for Push, the sidecar for
    #: pull kinds) gets ``KATIB_TRIAL_TOKEN`` from the trial's token Secret, which the trial
    #: controller creates before the job (``push_auth.trial_secret_name``; optional, so a Pod
    #: still starts without it and its reports are refused with UNAUTHENTICATED).
    push_token: bool = False


def trial_owner(obj: Mapping[str, Any]) -> str | None:
    """The name of the ``kubeflow.org/v1beta1`` Trial among ``obj``'s ownerReferences, if any.

    One rule for the pod webhook (which Pods are a trial's) and the trial controller (which jobs
    are): Katib v1beta1 owns them with exactly this apiVersion; other versions are not ours.
    """
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("kind") == constants.TRIAL_KIND and ref.get("apiVersion") == constants.API_VERSION:
            name = ref.get("name")
            if isinstance(name, str) and name:
                return name
    return None


def pod_patch(pod: Mapping[str, Any], trial: Trial, settings: InjectionSettings) -> patches.JsonPatch:
    """The JSON Patch from ``pod`` to ``mutate_pod(pod, trial, settings)``."""
    return patches.diff(pod, mutate_pod(pod, trial, settings))


def mutate_pod(pod: Mapping[str, Any], trial: Trial, settings: InjectionSettings) -> Pod:
    """``pod`` as the Trial needs it; ``pod`` itself is not changed.

    Raises:
        InjectionError: the primary container is missing from a primary Pod, or a pull-mode Pod
            cannot be wrapped or has no configured collector.
    """
    out: Pod = copy.deepcopy(dict(pod))
    spec = trial.spec
    name = (trial.metadata.name if trial.metadata else None) or ""
    metadata = out.setdefault("metadata", {})
    metadata["labels"] = {
        **(metadata.get("labels") or {}),
        **((trial.metadata.labels if trial.metadata else None) or {}),
        constants.TRIAL_LABEL: name,
    }
    primary_name = (spec.primary_container_name if spec else None) or ""
    containers: list[dict[str, Any]] = (out.setdefault("spec", {}).get("containers")) or []
    index = next((i for i, c in enumerate(containers) if c.get("name") == primary_name), None)
    primary_pod = is_primary_pod(pod, spec.primary_pod_labels if spec else None)
    if index is None:
        if not primary_pod:
            return out
        names = " ".join(str(c.get("name")) for c in containers)
        raise InjectionError(
            "spec.containers",
            f"Unable to find primary container {primary_name} in mutated pod containers [{names}]",
        )
    _add_env(containers[index], settings.db_manager_address)
    collector = spec.metrics_collector if spec else None
    kind = _kind(collector)
    if kind == CollectorKind.PUSH:
        _add_stop_rules_env(containers[index], trial)
        if settings.push_token:
            add_token_env(containers[index], name)
    if not primary_pod or kind == CollectorKind.PUSH:
        return out
    if any(c.get("name") in (LOGGER_COLLECTOR_NAME, COLLECTOR_NAME) for c in containers):
        return out  # injected already (a reinvocation)
    _inject_sidecar(out, index, trial, kind, collector or MetricsCollectorSpec(), settings)
    return out


def is_primary_pod(pod: Mapping[str, Any], primary_labels: Mapping[str, str] | None) -> bool:
    """Whether ``pod`` carries every primary-pod label (always, when none are set)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in (primary_labels or {}).items())


def _kind(collector: MetricsCollectorSpec | None) -> str:
    kind = collector.collector.kind if collector and collector.collector else None
    return kind or CollectorKind.STDOUT  # Katib's default collector


def _add_stop_rules_env(container: dict[str, Any], trial: Trial) -> None:
    """A Push trial's early-stopping rules, for the SDK to check on every report (no sidecar)."""
    spec = trial.spec
    rules = spec.early_stopping_rules if spec else None
    objective = spec.objective if spec else None
    if not rules or objective is None:
        return
    env: list[dict[str, Any]] = container.setdefault("env", [])
    present = {var.get("name") for var in env}
    wanted = {
        early_stopping.RULES_ENV: early_stopping.encode_rules(rules),
        early_stopping.OBJECTIVE_ENV: early_stopping.encode_objective(
            objective.objective_metric_name or "", objective.type or ""
        ),
    }
    env.extend({"name": name, "value": value} for name, value in wanted.items() if name not in present)


def _add_env(container: dict[str, Any], db_manager_address: str) -> None:
    env: list[dict[str, Any]] = container.setdefault("env", [])
    present = {var.get("name") for var in env}
    fieldpath = f"metadata.labels['{constants.TRIAL_LABEL}']"
    if constants.TRIAL_NAME_ENV not in present:
        env.append({"name": constants.TRIAL_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": fieldpath}}})
    if db_manager_address and constants.DB_MANAGER_ADDRESS_ENV not in present:
        env.append({"name": constants.DB_MANAGER_ADDRESS_ENV, "value": db_manager_address})


def add_token_env(container: dict[str, Any], trial_name: str) -> None:
    """``KATIB_TRIAL_TOKEN`` from the trial's token Secret (unless the container sets it already)."""
    env: list[dict[str, Any]] = container.setdefault("env", [])
    if any(var.get("name") == push_auth.TOKEN_ENV for var in env):
        return
    ref = {"name": push_auth.trial_secret_name(trial_name), "key": push_auth.SECRET_TOKEN_KEY, "optional": True}
    env.append({"name": push_auth.TOKEN_ENV, "valueFrom": {"secretKeyRef": ref}})


def metrics_path(collector: MetricsCollectorSpec, kind: str) -> tuple[str, str]:
    """The ``-path`` of a kind and whether it is a ``File`` or a ``Directory`` ("" when none)."""
    path_spec = collector.source.file_system_path if collector.source else None
    if kind == CollectorKind.STDOUT:
        return DEFAULT_METRICS_FILE, FileSystemKind.FILE
    if kind == CollectorKind.FILE:
        return (path_spec.path if path_spec else None) or DEFAULT_METRICS_FILE, FileSystemKind.FILE
    if kind == CollectorKind.TENSORFLOW_EVENT:
        return (path_spec.path if path_spec else None) or "", FileSystemKind.DIRECTORY
    if kind == CollectorKind.CUSTOM and path_spec is not None and path_spec.path:
        return path_spec.path, path_spec.kind or FileSystemKind.FILE
    return "", FileSystemKind.INVALID


def marker_dir(path: str, path_kind: str) -> str:
    """The directory of the ``<pid>.pid`` markers: the metrics file's directory, or the directory itself."""
    return training_markers.marker_directory(path, is_directory=path_kind != FileSystemKind.FILE)


def collector_args(trial: Trial, kind: str, settings: InjectionSettings) -> list[str]:
    """The sidecar's flags (docs/katib-compat.md#sidecar-flags)."""
    spec = trial.spec
    objective = spec.objective if spec else None
    names = [objective.objective_metric_name or "", *(objective.additional_metric_names or ())] if objective else []
    collector = (spec.metrics_collector if spec else None) or MetricsCollectorSpec()
    args = ["-t", (trial.metadata.name if trial.metadata else None) or "", "-m", ";".join(names)]
    args += ["-o-type", (objective.type if objective else None) or "", "-s-db", settings.db_manager_address]
    path, _ = metrics_path(collector, kind)
    if path:
        args += ["-path", path]
    filters = collector.source.filter.metrics_format if collector.source and collector.source.filter else None
    if filters:
        args += ["-f", ";".join(filters)]
    if kind == CollectorKind.FILE:
        path_spec = collector.source.file_system_path if collector.source else None
        args += ["-format", (path_spec.format if path_spec else None) or constants.FileFormat.TEXT]
    elif kind == CollectorKind.STDOUT:
        args += ["-format", constants.FileFormat.TEXT]
    image = settings.collectors.get(kind)
    if image is not None and image.wait_all_processes is not None:
        args += ["-w", "true" if image.wait_all_processes else "false"]
    rules = (spec.early_stopping_rules if spec else None) or []
    for number, rule in enumerate(rules):
        args += [
            "-stop-rule",
            stop_rules.format_flag(stop_rules.from_model(rule, field=f"earlyStoppingRules[{number}]")),
        ]
    if rules and settings.early_stopping_address:
        args += ["-s-earlystop", settings.early_stopping_address]
    return args


def _inject_sidecar(
    pod: Pod, primary: int, trial: Trial, kind: str, collector: MetricsCollectorSpec, settings: InjectionSettings
) -> None:
    spec = pod["spec"]
    containers: list[dict[str, Any]] = spec["containers"]
    sidecar = _sidecar(containers, trial, kind, collector, settings)
    if settings.push_token:
        add_token_env(sidecar, (trial.metadata.name if trial.metadata else None) or "")
    containers.append(sidecar)
    spec["shareProcessNamespace"] = True
    path, path_kind = metrics_path(collector, kind)
    if path:
        directory = marker_dir(path, path_kind)
        volumes: list[dict[str, Any]] = spec.setdefault("volumes", [])
        if not any(v.get("name") == METRICS_VOLUME for v in volumes):
            volumes.append({"name": METRICS_VOLUME, "emptyDir": {}})
        for container in (containers[primary], sidecar):
            mounts: list[dict[str, Any]] = container.setdefault("volumeMounts", [])
            if not any(m.get("name") == METRICS_VOLUME for m in mounts):
                mounts.append({"name": METRICS_VOLUME, "mountPath": directory})
    if kind in WRAPPED_KINDS:
        command, args = wrap_command(
            containers[primary].get("command") or (),
            containers[primary].get("args") or (),
            stdout_file=path if kind == CollectorKind.STDOUT else None,
            directory=marker_dir(path, path_kind),
            early_stopping=bool(trial.spec and trial.spec.early_stopping_rules),
        )
        containers[primary]["command"], containers[primary]["args"] = command, args


def _sidecar(
    containers: Sequence[Mapping[str, Any]],
    trial: Trial,
    kind: str,
    collector: MetricsCollectorSpec,
    settings: InjectionSettings,
) -> dict[str, Any]:
    if kind == CollectorKind.CUSTOM:
        custom = collector.collector.custom_collector if collector.collector else None
        if not custom:
            raise InjectionError("spec.metricsCollector.collector.customCollector", "is required for kind Custom")
        return copy.deepcopy(custom)
    image = settings.collectors.get(kind)
    if image is None or not image.image:
        raise InjectionError(
            "spec.metricsCollector.collector.kind", f"failed to find metrics collector config for kind: {kind}"
        )
    sidecar: dict[str, Any] = {
        "name": LOGGER_COLLECTOR_NAME if kind in (CollectorKind.STDOUT, CollectorKind.FILE) else COLLECTOR_NAME,
        "image": image.image,
        "args": collector_args(trial, kind, settings),
        "imagePullPolicy": image.image_pull_policy,
        "resources": {group: dict(values) for group, values in image.resources.items()},
    }
    if image.command:
        sidecar["command"] = list(image.command)
    security = containers[0].get("securityContext") if containers else None
    if settings.inject_security_context and security:
        sidecar["securityContext"] = copy.deepcopy(security)
    return sidecar


def wrap_command(
    command: Sequence[str],
    args: Sequence[str],
    *,
    stdout_file: str | None,
    directory: str,
    early_stopping: bool,
) -> tuple[list[str], list[str]]:
    """The primary container's new ``command``/``args``: run the original, then mark completion.

    ``$$$$`` becomes ``$$`` (the shell's pid) after the kubelet's ``$(VAR)`` expansion.

    Raises:
        InjectionError: there is no ``command`` (its image's entrypoint is unknown here).
    """
    argv = [*command, *args]
    if not command:
        raise InjectionError(
            "spec.containers.command",
            "the primary container needs a command for a pull-mode metrics collector"
            " (pykatib does not read entrypoints from image registries); set it, or use kind Push",
        )
    if posixpath.basename(argv[0]) in _SHELLS and len(argv) >= 3 and argv[1] == "-c":
        shell, body, extra = argv[:2], f"(\n{argv[2]}\n)", argv[3:]
    else:
        shell, body, extra = ["sh", "-c"], shlex.join(argv), []
    marker = f"{shlex.quote(directory)}/$$$$.pid"
    failed = f"echo {training_markers.FAILED} > {marker}; exit $rc"
    script = body
    if stdout_file is not None:
        script += f" 1>{shlex.quote(stdout_file)} 2>&1"
    if early_stopping:
        script += (
            f" || {{ rc=$?; if grep -qx {training_markers.EARLY_STOPPED} {marker} 2>/dev/null;"
            f" then echo 'Training was stopped early by the metrics collector'; else {failed}; fi; }}"
        )
    else:
        script += f" || {{ rc=$?; {failed}; }}"
    script += " && " + training_markers.completion_command(shlex.quote(directory))
    return shell, [script, *extra]
