"""``SetTrialStatus``'s write: a Trial marked EarlyStopped through the Kubernetes API.

Katib v0.19's medianstop service, deployed per Experiment in the Experiment's namespace, sets the
named Trial's status to ``EarlyStopped`` (reason ``TrialEarlyStopped``) when a pull-mode sidecar
says it stopped the training; the trial controller then reads the metrics and ends the trial. One
``katib-suggestion`` serves every namespace, and the request carries only the trial's name, so
the namespace is the configured one (``--trial-namespace``; in a Pod, its own namespace, as in
Katib), or else the one namespace that has a Trial of that name. The condition is
``katib_core.trial_conditions.mark_early_stopped``'s, the one the trial controller writes for
Push trials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from katib_core import constants, timestamps, trial_conditions
from katib_core.constants import TrialConditionType
from katib_core.errors import KatibError, NotFoundError
from katib_core.models import Trial, TrialStatus
from katib_operator import kubeapi
from katib_operator.kubeapi import ApiError, KubeApi
from katib_operator.objects import ConflictError, Objects, Resource

TRIALS: Final = Resource(constants.GROUP, constants.VERSION, constants.TRIAL_PLURAL)
#: A status write that lost a race with the trial controller is read and decided again.
_ATTEMPTS: Final = 5


class AmbiguousTrialError(KatibError):
    """Trials of that name exist in several namespaces and none is configured."""


class TrialStatusWriter:
    """Marks Trials EarlyStopped (idempotent: a Trial that holds it already is left alone).

    Args:
        api: the Kubernetes API client.
        namespace: where Trials live; None: found by name across namespaces.
        now: RFC 3339 time of the condition.
    """

    def __init__(self, api: KubeApi, *, namespace: str | None, now: Callable[[], str] | None = None) -> None:
        self._api = api
        self._objects = Objects(api)
        self._namespace = namespace
        self._now = now or timestamps.condition_time

    def early_stop(self, trial_name: str) -> str:
        """Mark ``trial_name`` EarlyStopped; its ``namespace/name``.

        Raises:
            NotFoundError: no such Trial.
            AmbiguousTrialError: several namespaces have one and none is configured.
            KatibError: the API refused the write, or kept conflicting.
        """
        namespace = self._namespace or self._find(trial_name)
        for _ in range(_ATTEMPTS):
            body = self._objects.get(TRIALS, namespace, trial_name)
            status = Trial.from_api(body).status or TrialStatus()
            if trial_conditions.holds(status, TrialConditionType.EARLY_STOPPED):
                return f"{namespace}/{trial_name}"
            stopped = trial_conditions.mark_early_stopped(status, now=self._now())
            try:
                self._objects.replace_status(TRIALS, body, stopped.to_api())
            except ConflictError:
                continue
            return f"{namespace}/{trial_name}"
        raise KatibError(f"trials {namespace}/{trial_name}: the status kept changing under {_ATTEMPTS} writes")

    def _find(self, trial_name: str) -> str:
        try:
            found: dict[str, Any] = self._api.request(
                "GET",
                kubeapi.path(TRIALS.group, TRIALS.version, TRIALS.plural),  # every namespace
                query={"fieldSelector": f"metadata.name={trial_name}"},
            )
        except ApiError as exc:
            raise KatibError(f"list trials named {trial_name}: {exc}") from None
        namespaces = sorted({str(item["metadata"]["namespace"]) for item in found.get("items") or ()})
        if not namespaces:
            raise NotFoundError(f"no Trial named {trial_name!r} in any namespace")
        if len(namespaces) > 1:
            raise AmbiguousTrialError(
                f"Trials named {trial_name!r} exist in {', '.join(namespaces)}: start the service with"
                " --trial-namespace (Katib's per-Experiment service uses its own namespace)"
            )
        return namespaces[0]


__all__ = ["TRIALS", "AmbiguousTrialError", "TrialStatusWriter"]
