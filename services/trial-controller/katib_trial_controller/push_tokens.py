"""Authenticated pushes: each trial's token, in a Secret of the trial's own, before its job exists.

The Secret ``<trial>-push-token`` (``katib_core.push_auth.trial_secret_name``) holds key
``token``: a token that may report and read that one trial. The webhook (``--inject-push-token``)
points env ``KATIB_TRIAL_TOKEN`` of the reporting container at it. The Secret is owned by the
Trial, so Kubernetes' garbage collector deletes it with the Trial.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Final

from katib_core import constants, push_auth
from katib_core.errors import AlreadyExistsError
from katib_core.push_keys import TokenMinter
from katib_operator.objects import Objects, Resource, owner_reference

SECRETS: Final = Resource("", "v1", "secrets")
#: A trial token's lifetime: longer than any trial should run (``--push-token-ttl``).
DEFAULT_TOKEN_TTL: Final = 30 * 24 * 3600.0


def token_secret(trial: Mapping[str, Any], token: str) -> dict[str, Any]:
    """The token Secret of ``trial`` (an API object with name, namespace and uid)."""
    meta = trial.get("metadata") or {}
    name = str(meta.get("name"))
    labels = {constants.TRIAL_LABEL: name}
    experiment = (meta.get("labels") or {}).get(constants.EXPERIMENT_LABEL)
    if experiment:
        labels[constants.EXPERIMENT_LABEL] = str(experiment)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": push_auth.trial_secret_name(name),
            "namespace": str(meta.get("namespace")),
            "labels": labels,
            "ownerReferences": [owner_reference(trial)],
        },
        "type": "Opaque",
        "stringData": {push_auth.SECRET_TOKEN_KEY: token},
    }


class PushTokens:
    """Creates trials' token Secrets (an existing one is kept: a restart re-creates nothing)."""

    def __init__(self, objects: Objects, minter: TokenMinter, *, ttl: float = DEFAULT_TOKEN_TTL) -> None:
        self._objects = objects
        self._minter = minter
        self._ttl = ttl

    def ensure(self, trial: Mapping[str, Any]) -> None:
        """Create the token Secret of ``trial`` unless it exists."""
        meta = trial.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        token = self._minter.trial_token(namespace, name, ttl=self._ttl)
        with contextlib.suppress(AlreadyExistsError):
            self._objects.create(SECRETS, namespace, token_secret(trial, token))
