"""pytest fixtures for a real test cluster; register with `pytest_plugins = ["katib_testcluster.pytest_plugin"]`.

- `k8s_cluster` (session): a `cluster.Cluster` with `kubeconfig`, `api_client`, `pki`, `dir`,
  `server`, `node_agent`, `pod_log()`; the CRDs of `infra/crds/` are applied.
- `k8s_namespace` (function): a fresh namespace whose `default` ServiceAccount has its token,
  deleted afterwards.

A missing binary or a failed start fails the tests (never skips), naming the command to fix it.
Under Pants, one cluster serves each batch of tests marked `batch_compatibility_tag="k8s"`.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from katib_testcluster import cluster, controlplane, crds, polling

_NAMESPACE_LABEL = "pykatib.test/namespace"


@pytest.fixture(scope="session")
def k8s_cluster() -> Iterator[cluster.Cluster]:
    """The session's test cluster (control plane + node agent + CRDs)."""
    with contextlib.ExitStack() as stack:
        failure = None
        try:
            running = stack.enter_context(cluster.running(crd_dir=crds.find_dir()))
        except (controlplane.MissingBinaryError, FileNotFoundError) as exc:  # the message says what to do
            failure = f"k8s_cluster: {exc}"
        except (controlplane.ControlPlaneError, polling.WaitTimeoutError, ApiException, OSError) as exc:
            failure = f"k8s_cluster: the test cluster did not start:\n{exc}"
        if failure is not None:  # failed outside `except`, so pytest prints the message once
            pytest.fail(failure, pytrace=False)
        yield running


@pytest.fixture()
def k8s_namespace(k8s_cluster: cluster.Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A new namespace named after the test, ready for Pods; deleted (not awaited) afterwards."""
    core = client.CoreV1Api(k8s_cluster.api_client)
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{stem}-{secrets.token_hex(3)}"
    metadata = client.V1ObjectMeta(name=name, labels={_NAMESPACE_LABEL: "true"})
    core.create_namespace(client.V1Namespace(metadata=metadata))
    try:
        polling.wait_until(
            lambda: _default_token_exists(core, name),
            timeout=30,
            what=f"the token of ServiceAccount {name}/default",
        )
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def _default_token_exists(core: client.CoreV1Api, namespace: str) -> bool:
    account = core.read_namespaced_service_account("default", namespace)
    return any(ref.name for ref in account.secrets or ())
