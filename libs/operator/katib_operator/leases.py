"""Leader election on a ``coordination.k8s.io/v1`` Lease, so only one replica reconciles at a time.

``LeaderElector.acquire`` blocks until this process holds the Lease (it takes a free or expired
one with a resourceVersion-guarded update); a thread then renews it every ``renew_seconds``.
If renewals keep failing for ``renew_deadline`` (shorter than the lease, as in client-go, so
the old leader stops before a standby can take over), ``on_lost`` is called and the process
must stop reconciling (``main`` exits, as client-go's leader election does). ``release`` frees
the Lease at shutdown so a standby takes over at once. Correctness never depends on it: every
write is conditional (resourceVersions, trial names recorded before creation), so even two
leaders could not duplicate Trials.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from katib_operator import kubeapi
from katib_operator.kubeapi import ApiError, KubeApi

log = logging.getLogger(__name__)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _micro(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: Any) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))


class LeaderElector:
    """Holds the Lease ``namespace/name`` as ``identity``.

    Args:
        api: a client allowed to get, create and update Leases in ``namespace``.
        lease_seconds: how long a holder's claim lasts without renewal.
        renew_seconds: how often the holder renews.
        renew_deadline: leadership is given up when no renewal succeeded for this long (< lease_seconds).
        retry_seconds: how often a candidate retries (and a holder whose renewal failed).
        on_lost: called (once, from the renewal thread) when leadership is lost.
    """

    def __init__(
        self,
        api: KubeApi,
        *,
        name: str,
        namespace: str,
        identity: str,
        lease_seconds: float = 15.0,
        renew_seconds: float = 5.0,
        renew_deadline: float = 10.0,
        retry_seconds: float = 2.0,
        on_lost: Callable[[], None] = lambda: None,
        now: Callable[[], datetime.datetime] = _now,
    ) -> None:
        self._api = api
        self.name, self.namespace, self.identity = name, namespace, identity
        self._path = kubeapi.path("coordination.k8s.io", "v1", "leases", namespace, name)
        self._lease_seconds = lease_seconds
        if not 0 < renew_deadline < lease_seconds:
            raise ValueError(f"renew_deadline must be in (0, lease_seconds={lease_seconds}); got {renew_deadline}")
        self._renew_seconds = renew_seconds
        self._renew_deadline = renew_deadline
        self._retry_seconds = retry_seconds
        self._on_lost = on_lost
        self._now = now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.leading = False

    def try_acquire(self) -> bool:
        """One attempt to take or renew the Lease; True if this process holds it now."""
        now = self._now()
        try:
            lease = self._api.request("GET", self._path)
        except ApiError as exc:
            if exc.status == 404:
                return self._create(now)
            log.warning("lease %s/%s: read failed: %s", self.namespace, self.name, exc)
            return False
        spec = dict(lease.get("spec") or {})
        holder = spec.get("holderIdentity")
        renewed = _parse(spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds") or int(self._lease_seconds)
        expired = renewed is None or (now - renewed).total_seconds() > duration
        if holder and holder != self.identity and not expired:
            return False
        if holder != self.identity:
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            spec["acquireTime"] = _micro(now)
        spec.update(holderIdentity=self.identity, renewTime=_micro(now), leaseDurationSeconds=int(self._lease_seconds))
        lease["spec"] = spec
        return self._write("PUT", self._path, lease)  # carries the resourceVersion we read

    def _create(self, now: datetime.datetime) -> bool:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self._lease_seconds),
                "acquireTime": _micro(now),
                "renewTime": _micro(now),
                "leaseTransitions": 0,
            },
        }
        return self._write("POST", kubeapi.path("coordination.k8s.io", "v1", "leases", self.namespace), body)

    def _write(self, method: str, path: str, body: dict[str, Any]) -> bool:
        try:
            self._api.request(method, path, body=body)
        except ApiError as exc:
            if exc.status != 409:  # 409: someone else wrote first
                log.warning("lease %s/%s: write failed: %s", self.namespace, self.name, exc)
            return False
        return True

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Block until leading (then keep renewing) or ``stop`` is set; True if leading."""
        announced = False
        while not (stop is not None and stop.is_set()):
            if self.try_acquire():
                self.leading = True
                log.info("lease %s/%s: %s is the leader", self.namespace, self.name, self.identity)
                self._thread = threading.Thread(target=self._renew, name="lease-renewal", daemon=True)
                self._thread.start()
                return True
            if not announced:
                log.info("lease %s/%s: %s waits for leadership", self.namespace, self.name, self.identity)
                announced = True
            (stop or self._stop).wait(self._retry_seconds)
        return False

    def _renew(self) -> None:
        last = time.monotonic()
        pause = self._renew_seconds
        while not self._stop.wait(pause):
            if self.try_acquire():
                last, pause = time.monotonic(), self._renew_seconds
                continue
            pause = self._retry_seconds
            if time.monotonic() - last > self._renew_deadline:
                self.leading = False
                log.error("lease %s/%s: leadership lost by %s", self.namespace, self.name, self.identity)
                self._on_lost()
                return

    def release(self) -> None:
        """Stop renewing and free the Lease if this process holds it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if not self.leading:
            return
        self.leading = False
        try:
            lease = self._api.request("GET", self._path)
            spec = lease.get("spec") or {}
            if spec.get("holderIdentity") == self.identity:
                lease["spec"] = {
                    k: v for k, v in spec.items() if k not in ("holderIdentity", "renewTime", "acquireTime")
                }
                self._api.request("PUT", self._path, body=lease)
        except ApiError as exc:
            log.warning("lease %s/%s: release failed: %s", self.namespace, self.name, exc)
