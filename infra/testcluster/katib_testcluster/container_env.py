"""Resolve a container's environment from its Pod spec, as the kubelet does.

`envFrom` (Secrets, ConfigMaps) first, then `env` in order; literal values get `$(VAR)`
expansion; `valueFrom` reads `fieldRef`, `secretKeyRef` and `configMapKeyRef` (via the API).
`resourceFieldRef` is not supported. Used by `pod_runner`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

Obj = Mapping[str, Any]

_LABEL_OR_ANNOTATION = re.compile(r"metadata\.(labels|annotations)\['([^']+)'\]")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


class EnvError(Exception):
    """A referenced object, key or field is missing (the kubelet's CreateContainerConfigError)."""


def resolve(pod: Obj, container: Obj, *, core: client.CoreV1Api, pod_ip: str) -> dict[str, str]:
    """The variables the Pod spec defines for `container` (without the process's base env).

    Raises:
        EnvError: a non-optional Secret/ConfigMap/key is missing, or a ref is unsupported.
    """
    namespace = pod["metadata"]["namespace"]
    objects = _ObjectReader(core, namespace)
    env: dict[str, str] = {}
    for source in container.get("envFrom") or ():
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = objects.config_map(source["configMapRef"])
        elif "secretRef" in source:
            data = objects.secret(source["secretRef"])
        else:
            raise EnvError(f"unsupported envFrom source {sorted(source)}")
        for key, value in (data or {}).items():
            if _ENV_NAME.fullmatch(prefix + key):  # the kubelet skips invalid names
                env[prefix + key] = value
    for var in container.get("env") or ():
        name = var["name"]
        if "valueFrom" in var:
            resolved = _value_from(var["valueFrom"], pod, objects, pod_ip=pod_ip)
            if resolved is not None:
                env[name] = resolved
        else:
            env[name] = expand(var.get("value", ""), env)
    return env


def expand(text: str, variables: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: known names are replaced, `$$` is a literal `$`,
    unknown references stay as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2 : end]
            out.append(variables[name] if name in variables else text[i : end + 1])
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def field_value(pod: Obj, path: str, *, pod_ip: str) -> str:
    """The value of a `fieldRef.fieldPath` (the paths the kubelet supports for env)."""
    metadata, spec = pod["metadata"], pod.get("spec", {})
    simple = {
        "metadata.name": metadata.get("name"),
        "metadata.namespace": metadata.get("namespace"),
        "metadata.uid": metadata.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": pod_ip,
    }
    if path in simple:
        return simple[path] or ""
    match = _LABEL_OR_ANNOTATION.fullmatch(path)
    if match:
        return str((metadata.get(match.group(1)) or {}).get(match.group(2), ""))
    raise EnvError(f"unsupported fieldRef.fieldPath {path!r}")


def _value_from(value_from: Obj, pod: Obj, objects: _ObjectReader, *, pod_ip: str) -> str | None:
    if "fieldRef" in value_from:
        return field_value(pod, value_from["fieldRef"]["fieldPath"], pod_ip=pod_ip)
    for kind, read in (("secretKeyRef", objects.secret), ("configMapKeyRef", objects.config_map)):
        if kind in value_from:
            ref = value_from[kind]
            data = read(ref)
            if data is not None and ref["key"] in data:
                return data[ref["key"]]
            if ref.get("optional"):
                return None
            raise EnvError(f"{kind}: key {ref['key']!r} not found in {ref.get('name')!r}")
    raise EnvError(f"unsupported valueFrom {sorted(value_from)} (the test node agent has no resourceFieldRef)")


class _ObjectReader:
    """Reads Secrets and ConfigMaps of one namespace, once each."""

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self._core = core
        self._namespace = namespace
        self._cache: dict[tuple[str, str], dict[str, str] | None] = {}

    def secret(self, ref: Obj) -> dict[str, str] | None:
        def read(name: str) -> dict[str, str]:
            data = self._core.read_namespaced_secret(name, self._namespace).data or {}
            return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}

        return self._get("Secret", ref, read)

    def config_map(self, ref: Obj) -> dict[str, str] | None:
        def read(name: str) -> dict[str, str]:
            return dict(self._core.read_namespaced_config_map(name, self._namespace).data or {})

        return self._get("ConfigMap", ref, read)

    def _get(self, kind: str, ref: Obj, read: Callable[[str], dict[str, str]]) -> dict[str, str] | None:
        name = ref.get("name", "")
        if (kind, name) not in self._cache:
            try:
                self._cache[kind, name] = read(name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self._cache[kind, name] = None
        data = self._cache[kind, name]
        if data is None and not ref.get("optional"):
            raise EnvError(f'{kind} "{name}" not found')
        return data
