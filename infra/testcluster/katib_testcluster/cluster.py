"""A whole test cluster: control plane + node agent + the project's CRDs.

`running()` is what the `k8s_cluster` fixture and `python -m katib_testcluster` use.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from katib_testcluster import crds, pki
from katib_testcluster.controlplane import ControlPlane
from katib_testcluster.node_agent import NodeAgent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cluster:
    """A running test cluster, as yielded by the `k8s_cluster` fixture."""

    control_plane: ControlPlane
    node_agent: NodeAgent
    api_client: client.ApiClient
    crd_dir: Path | None
    startup_seconds: float

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (`KUBECONFIG=... kubectl get experiments,trials`)."""
        return self.control_plane.kubeconfig

    @property
    def pki(self) -> pki.Pki:
        """CA and tokens; `pki.issue_serving_cert(...)` for webhook servers."""
        return self.control_plane.pki

    @property
    def dir(self) -> Path:
        """The run dir (PKI, component logs under `logs/`, pod dirs under `node/pods/`)."""
        return self.control_plane.dir

    @property
    def server(self) -> str:
        return self.control_plane.server

    def pod_log(self, namespace: str, pod: str, container: str | None = None) -> str:
        """Output of a container (default: the first) of a Pod the node agent ran."""
        return self.node_agent.read_log(namespace, pod, container)


@contextlib.contextmanager
def running(*, crd_dir: Path | None) -> Iterator[Cluster]:
    """Start a control plane and a node agent, apply the CRDs of `crd_dir` (if any), yield.

    Raises:
        controlplane.ControlPlaneError: a component failed to start (binaries missing included).
    """
    began = time.monotonic()
    with (
        ControlPlane() as control_plane,
        control_plane.api_client() as api_client,
        # The agent gets its own client: its long watches never compete with the tests' calls.
        control_plane.api_client() as agent_client,
        NodeAgent(
            agent_client,
            root_dir=control_plane.dir / "node",
            kubelet_cert=control_plane.pki.issue_serving_cert("kubelet"),
        ) as agent,
    ):
        if crd_dir is not None:
            crds.apply(api_client, crd_dir)
        cluster = Cluster(
            control_plane=control_plane,
            node_agent=agent,
            api_client=api_client,
            crd_dir=crd_dir,
            startup_seconds=time.monotonic() - began,
        )
        log.info("test cluster ready in %.1fs: KUBECONFIG=%s", cluster.startup_seconds, cluster.kubeconfig)
        yield cluster
