"""The real test control plane (fixtures ``k8s_cluster``, ``k8s_namespace``)."""

from katib_testcluster.pytest_plugin import k8s_cluster, k8s_namespace

__all__ = ["k8s_cluster", "k8s_namespace"]
