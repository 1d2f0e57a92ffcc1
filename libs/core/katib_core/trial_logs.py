"""Where a Trial's output can be read: which Pod and which of its containers.

Katib v0.19's ``KatibClient.get_job_logs`` reads the first Pod labelled with the trial's name
(and the trial's ``primaryPodLabels``), from the container holding the training's output: for a
``StdOut`` collector the ``metrics-logger-and-collector`` sidecar, which echoes the output the
primary container writes to the metrics file (pod_injection), else the primary container.
"""

from __future__ import annotations

from katib_core import constants, pod_injection
from katib_core.models import Trial


def pod_selector(trial: Trial) -> str:
    """The label selector of the Trial's primary Pod."""
    name = (trial.metadata.name if trial.metadata else None) or ""
    primary = (trial.spec.primary_pod_labels if trial.spec else None) or {}
    return ",".join([f"{constants.TRIAL_LABEL}={name}", *(f"{k}={v}" for k, v in primary.items())])


def output_container(trial: Trial) -> str | None:
    """The container whose log is the training's output (None: the Pod's only container)."""
    spec = trial.spec
    collector = spec.metrics_collector.collector if spec and spec.metrics_collector else None
    if collector is not None and collector.kind == constants.CollectorKind.STDOUT:
        return pod_injection.LOGGER_COLLECTOR_NAME
    return spec.primary_container_name if spec else None


__all__ = ["output_container", "pod_selector"]
