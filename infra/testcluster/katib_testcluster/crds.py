"""Find and apply the project's CRDs (`infra/crds/`) on a test cluster; used by `cluster`."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from katib_testcluster import polling

CRD_DIR_ENV = "PYKATIB_CRD_DIR"
_REPO_PATH = Path("infra/crds")
_GROUP, _VERSION, _PLURAL = "apiextensions.k8s.io", "v1", "customresourcedefinitions"


def find_dir(environ: Mapping[str, str] = os.environ, start: Path = Path(__file__)) -> Path:
    """`$PYKATIB_CRD_DIR`, else the first `infra/crds` found walking up from `start`.

    Raises:
        FileNotFoundError: neither exists (under Pants: the `infra/crds:crds` files are missing).
    """
    if environ.get(CRD_DIR_ENV):
        path = Path(environ[CRD_DIR_ENV])
        if not (path / "kustomization.yaml").is_file():
            raise FileNotFoundError(f"{CRD_DIR_ENV}={path} has no kustomization.yaml")
        return path
    for parent in start.resolve().parents:
        if (parent / _REPO_PATH / "kustomization.yaml").is_file():
            return parent / _REPO_PATH
    raise FileNotFoundError(
        f"no {_REPO_PATH}/kustomization.yaml above {start}; set {CRD_DIR_ENV} or, under Pants, "
        "depend on the `infra/crds:crds` files target"
    )


def load(crd_dir: Path) -> list[dict[str, Any]]:
    """The CRD manifests listed in `crd_dir/kustomization.yaml`, in order."""
    kustomization = yaml.safe_load((crd_dir / "kustomization.yaml").read_text())
    return [yaml.safe_load((crd_dir / name).read_text()) for name in kustomization["resources"]]


def apply(api_client: client.ApiClient, crd_dir: Path, *, timeout: float = 30.0) -> list[str]:
    """Create (or replace) every CRD in `crd_dir` and wait until each is Established.

    Returns:
        The CRD names, e.g. `experiments.kubeflow.org`.
    """
    api = client.CustomObjectsApi(api_client)
    names = []
    for manifest in load(crd_dir):
        name = manifest["metadata"]["name"]
        try:
            api.create_cluster_custom_object(_GROUP, _VERSION, _PLURAL, manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise
            current = _as_dict(api.get_cluster_custom_object(_GROUP, _VERSION, _PLURAL, name))
            manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            api.replace_cluster_custom_object(_GROUP, _VERSION, _PLURAL, name, manifest)
        names.append(name)
    for name in names:
        polling.wait_until(functools.partial(_established, api, name), timeout=timeout, what=f"CRD {name} Established")
    return names


def _established(api: client.CustomObjectsApi, name: str) -> bool:
    crd = _as_dict(api.get_cluster_custom_object(_GROUP, _VERSION, _PLURAL, name))
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def _as_dict(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value
