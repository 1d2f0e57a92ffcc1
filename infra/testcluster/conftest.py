"""Registers the test-cluster fixtures (`k8s_cluster`, `k8s_namespace`) for the tests below."""

pytest_plugins = ["katib_testcluster.pytest_plugin"]
