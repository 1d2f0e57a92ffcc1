"""Trials, the job kinds they run (Katib's ``Kind.version.group`` names) and trimmed cached copies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from katib_core import constants
from katib_operator.objects import Resource

TRIALS: Final = Resource(constants.GROUP, constants.VERSION, constants.TRIAL_PLURAL)
#: Katib's katib-config default ``trialResources``.
DEFAULT_TRIAL_RESOURCES: Final = ("Job.v1.batch",)
_PLURALS: Final = {"Job": "jobs"}


@dataclass(frozen=True, slots=True)
class JobKind:
    kind: str
    resource: Resource


def parse_trial_resource(text: str) -> JobKind:
    """``Kind.version.group`` (``Job.v1.batch``, ``PyTorchJob.v1.kubeflow.org``) → the resource to use."""
    kind, _, rest = text.partition(".")
    version, _, group = rest.partition(".")
    if not kind or not version or not group:
        raise ValueError(f"{text!r}: expected Kind.version.group, e.g. Job.v1.batch")
    return JobKind(kind, Resource(group, version, _PLURALS.get(kind, kind.lower() + "s")))


def job_kind_of(run_spec: Mapping[str, Any] | None, known: Mapping[tuple[str, str], JobKind]) -> JobKind | None:
    """The watched job kind a runSpec asks for (by apiVersion and kind), None if not watched."""
    if not run_spec:
        return None
    return known.get((str(run_spec.get("apiVersion")), str(run_spec.get("kind"))))


def without_managed_fields(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        body = {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return body


def job_summary(body: dict[str, Any]) -> dict[str, Any]:
    """A job without its spec (conditions are evaluated on metadata and status)."""
    body = without_managed_fields(body)
    return {k: v for k, v in body.items() if k != "spec"}
