"""The real test control plane, for the server-side dry run of the install overlay."""

from katib_testcluster.pytest_plugin import k8s_cluster

__all__ = ["k8s_cluster"]
