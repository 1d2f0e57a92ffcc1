"""``kubectl apply --dry-run=server`` of the install overlays, and their RBAC checked by a real API server.

Runs against the real test control plane (kube-apiserver 1.20): every object goes through the
server's defaulting, validation and admission without being stored. RBAC is then applied for
real and asked (``kubectl auth can-i --as``) what each service account may and may not do.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from katib_testcluster.cluster import Cluster
from manifests import kustomize

#: Fields of current Kubernetes the 1.20 test server does not know: gRPC probes (1.24+). The
#: server rejects a probe without a handler it knows, so the test swaps in a TCP check of the same
#: port; the kind e2e job applies the real thing on a current server.
NEWER_THAN_1_20 = ("grpc",)


@pytest.fixture(scope="module")
def kubectl() -> Path:
    try:
        return kustomize.kubectl()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def kubeflow(k8s_cluster: Cluster, kubectl: Path) -> Path:
    """The cluster's kubeconfig, with namespace kubeflow created (a dry run creates nothing)."""
    done = subprocess.run(
        [str(kubectl), "--kubeconfig", str(k8s_cluster.kubeconfig), "create", "namespace", "kubeflow"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 or "AlreadyExists" in done.stderr, done.stderr
    return k8s_cluster.kubeconfig


@pytest.mark.parametrize("overlay", ["install", "overlays/katib-compatible"])
def test_server_side_dry_run_accepts_every_object(kubectl: Path, kubeflow: Path, overlay: str) -> None:
    rendered = for_1_20(kustomize.build(kubectl, kustomize.INFRA / overlay))
    out = kustomize.run(
        kubectl, "apply", "--dry-run=server", "--validate=strict", "-f", "-", kubeconfig=kubeflow, stdin=_dump(rendered)
    )
    applied = [line for line in out.splitlines() if line.endswith("(server dry run)")]
    assert len(applied) == len(rendered), out


def for_1_20(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``objects`` with the probes of NEWER_THAN_1_20 replaced by TCP checks of the same port."""
    for _, container in kustomize.containers(objects):
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            for field in NEWER_THAN_1_20:
                if field in container.get(probe, {}):
                    container[probe]["tcpSocket"] = {"port": container[probe].pop(field)["port"]}
    return objects


def test_rbac_grants_what_each_service_calls_and_nothing_more(kubectl: Path, kubeflow: Path) -> None:
    rendered = kustomize.build(kubectl, kustomize.INSTALL)
    rbac = [
        o
        for o in rendered
        if o["kind"] in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    ]
    kustomize.run(kubectl, "apply", "-f", "-", kubeconfig=kubeflow, stdin=_dump(rbac))

    def can(account: str, *args: str) -> bool:
        done = subprocess.run(
            [
                str(kubectl),
                "--kubeconfig",
                str(kubeflow),
                "auth",
                "can-i",
                f"--as=system:serviceaccount:kubeflow:{account}",
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.stdout.strip() in ("yes", "no"), done.stderr
        return done.stdout.strip() == "yes"

    may: dict[str, list[tuple[str, ...]]] = {
        "katib-experiment-controller": [
            ("watch", "experiments.kubeflow.org", "-A"),
            ("update", "experiments.kubeflow.org", "--subresource=status", "-n", "team-a"),
            ("create", "suggestions.kubeflow.org", "-n", "team-a"),
            ("update", "suggestions.kubeflow.org", "--subresource=status", "-n", "team-a"),
            ("create", "trials.kubeflow.org", "-n", "team-a"),
            ("get", "configmaps", "-n", "team-a"),
            ("create", "events", "-n", "team-a"),
            ("create", "leases.coordination.k8s.io", "-n", "kubeflow"),
            ("update", "leases.coordination.k8s.io/katib-experiment-controller", "-n", "kubeflow"),
        ],
        "katib-trial-controller": [
            ("watch", "trials.kubeflow.org", "-A"),
            ("patch", "trials.kubeflow.org", "-n", "team-a"),
            ("update", "trials.kubeflow.org", "--subresource=status", "-n", "team-a"),
            ("create", "jobs.batch", "-n", "team-a"),
            ("delete", "jobs.batch", "-n", "team-a"),
            ("watch", "jobs.batch", "-A"),
            ("create", "events", "-n", "team-a"),
            ("update", "leases.coordination.k8s.io/katib-trial-controller", "-n", "kubeflow"),
            ("create", "secrets", "-n", "team-a"),  # the trials' token Secrets (push auth)
        ],
        "katib-push-auth-init": [("create", "secrets", "-n", "kubeflow")],
        "katib-webhook": [
            ("get", "trials.kubeflow.org", "-n", "team-a"),
            ("get", "jobs.batch", "-n", "team-a"),
            ("get", "configmaps", "-n", "team-a"),
            ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/katib.kubeflow.org"),
            ("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io/katib.kubeflow.org"),
        ],
    }
    may_not: dict[str, list[tuple[str, ...]]] = {
        "katib-experiment-controller": [
            ("create", "jobs.batch", "-n", "team-a"),
            ("update", "experiments.kubeflow.org", "-n", "team-a"),
            ("get", "secrets", "-n", "kubeflow"),
            ("update", "leases.coordination.k8s.io/katib-trial-controller", "-n", "kubeflow"),
            ("create", "leases.coordination.k8s.io", "-n", "team-a"),
        ],
        "katib-trial-controller": [
            ("create", "trials.kubeflow.org", "-n", "team-a"),
            ("update", "experiments.kubeflow.org", "--subresource=status", "-n", "team-a"),
            ("create", "pods", "-n", "team-a"),
            ("get", "secrets", "-n", "team-a"),
            ("list", "secrets", "-A"),
        ],
        "katib-push-auth-init": [
            ("get", "secrets", "-n", "kubeflow"),
            ("create", "secrets", "-n", "team-a"),
            ("create", "pods", "-n", "kubeflow"),
        ],
        "katib-webhook": [
            ("list", "trials.kubeflow.org", "-n", "team-a"),
            ("create", "jobs.batch", "-n", "team-a"),
            ("get", "secrets", "-n", "kubeflow"),
            ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/someone-elses"),
        ],
        "katib-db-manager": [
            ("get", "pods", "-n", "kubeflow"),
            ("get", "configmaps", "-n", "kubeflow"),
            ("get", "trials.kubeflow.org", "-A"),
        ],
    }
    wrong = [(who, args, "denied") for who, checks in may.items() for args in checks if not can(who, *args)]
    wrong += [(who, args, "allowed") for who, checks in may_not.items() for args in checks if can(who, *args)]
    assert not wrong


def _dump(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)
