"""A real Kubernetes 1.20 control plane for pykatib's tests: no Docker, no mocks.

`controlplane` runs etcd + kube-apiserver + kube-controller-manager + kube-scheduler on loopback,
`node_agent` plays the kubelet (Pods run as local processes), `pytest_plugin` offers the
`k8s_cluster` and `k8s_namespace` fixtures. Binaries: `infra/testcluster/build-k8s.sh`.
"""
