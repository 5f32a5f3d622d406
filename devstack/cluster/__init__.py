"""A real local Kubernetes: etcd, kube-apiserver and kube-controller-manager v1.20.2, plus a
local kubelet that runs pods as processes on this machine.

`python -m devstack.cluster up|down|env|status|logs` from a shell; `Cluster` from Python;
`devstack.cluster.pytest_plugin` for tests.
"""

from devstack.cluster.control_plane import BuildMissing, Cluster
from devstack.cluster.logs import read_log
from devstack.cluster.paths import claim_path

__all__ = ["BuildMissing", "Cluster", "claim_path", "read_log"]
