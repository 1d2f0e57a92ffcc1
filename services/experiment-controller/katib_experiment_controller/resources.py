"""The resources the experiment controller reads and writes, and how their cached copies are trimmed."""

from __future__ import annotations

from typing import Any, Final

from katib_core import constants
from katib_operator.objects import Resource

EXPERIMENTS: Final = Resource(constants.GROUP, constants.VERSION, constants.EXPERIMENT_PLURAL)
TRIALS: Final = Resource(constants.GROUP, constants.VERSION, constants.TRIAL_PLURAL)
SUGGESTIONS: Final = Resource(constants.GROUP, constants.VERSION, constants.SUGGESTION_PLURAL)


def without_managed_fields(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        body = {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return body


def trial_summary(body: dict[str, Any]) -> dict[str, Any]:
    """A Trial without its runSpec: the experiment controller never reads the job, and 1,000s of them add up."""
    body = without_managed_fields(body)
    spec = body.get("spec")
    if isinstance(spec, dict) and "runSpec" in spec:
        body = {**body, "spec": {k: v for k, v in spec.items() if k != "runSpec"}}
    return body
