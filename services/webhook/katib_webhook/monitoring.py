"""Prometheus metrics of the webhook, in a registry of its own (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: Admission latency buckets (seconds): the budget is milliseconds, the apiserver's limit 10 s.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Monitor:
    """Counters and timings the server and ``main`` update."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "katib_webhook_admission_requests",
            "AdmissionReviews answered, by webhook path and verdict.",
            ["webhook", "allowed", "patched"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "katib_webhook_admission_duration_seconds",
            "Time from a request's body to its answer, by webhook path.",
            ["webhook"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.certificate_reloads = Counter(
            "katib_webhook_certificate_reloads",
            "Certificate reload attempts, by result.",
            ["result"],
            registry=self.registry,
        )
        self.certificate_expiry = Gauge(
            "katib_webhook_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate (Unix time).",
            registry=self.registry,
        )

    def observe(self, webhook: str, seconds: float, *, allowed: bool, patched: bool) -> None:
        self.requests.labels(webhook, str(allowed).lower(), str(patched).lower()).inc()
        self.duration.labels(webhook).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
