"""Posts Kubernetes Events (``JobCreated``, ``MetricsUnavailable``…) in the background.

Reconcilers hand events to ``EventRecorder.record`` and never wait for the API: one thread posts
them in order. The queue is bounded: when the API server cannot keep up, new events are dropped
and counted (as client-go's broadcaster does) rather than slowing reconciles down.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import queue
import threading
from collections.abc import Mapping
from typing import Any

from katib_core.events import Event
from katib_operator import kubeapi
from katib_operator.kubeapi import ApiError, KubeApi

log = logging.getLogger(__name__)


class EventRecorder:
    """Posts Events about objects as ``component``."""

    def __init__(self, api: KubeApi, *, component: str, capacity: int = 10_000, level: str = "all") -> None:
        """``level``: ``all`` (Katib's Events), ``warnings`` (only Warning Events) or ``none``."""
        self._api = api
        self._level = level
        self._component = component
        self._queue: queue.Queue[tuple[dict[str, Any], Event] | None] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.posted = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="event-recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._thread = None

    def record(self, about: Mapping[str, Any], event: Event) -> None:
        """Queue ``event`` about the object ``about`` (its API JSON)."""
        if self._level == "none" or (self._level == "warnings" and event.type != "Warning"):
            return
        meta = about.get("metadata") or {}
        ref = {
            "apiVersion": about.get("apiVersion"),
            "kind": about.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        }
        try:
            self._queue.put_nowait((ref, event))
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            ref, event = item
            now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = {
                "metadata": {"generateName": f"{ref['name']}.", "namespace": ref["namespace"]},
                "involvedObject": ref,
                "reason": event.reason,
                "message": event.message,
                "type": event.type,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "source": {"component": self._component},
                "reportingComponent": self._component,
            }
            try:
                self._api.request("POST", kubeapi.path("", "v1", "events", ref["namespace"]), body=body)
                self.posted += 1
            except ApiError as exc:
                log.debug("event %s on %s/%s not posted: %s", event.reason, ref["namespace"], ref["name"], exc)
