"""Where the local cluster keeps its binaries and its state.

Binaries are built once per machine (`hack/build-control-plane.sh`) and shared. State — etcd's
data, certificates, kubeconfigs, pod directories, container logs and claim directories — lives in
one directory per cluster, so that several clusters (one per test session) can run side by side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

K8S_VERSION = "v1.20.2"
NODE_NAME = "ferry-node"


def k8s_home() -> Path:
    """The build's output root; `FERRY_K8S_HOME` overrides it as in the build script."""
    default = Path.home() / ".cache" / "ferry-k8s" / K8S_VERSION
    return Path(os.environ.get("FERRY_K8S_HOME", default))


def bin_dir() -> Path:
    return k8s_home() / "bin"


def default_state_dir() -> Path:
    """`FERRY_CLUSTER_DIR`, or one shared default for the `up`/`down` command line."""
    default = Path.home() / ".cache" / "ferry-k8s" / "run"
    return Path(os.environ.get("FERRY_CLUSTER_DIR", default))


@dataclass(frozen=True)
class StateDir:
    """The layout of one cluster's state directory."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "cluster.json"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        """Logs of the control-plane processes and the kubelet."""
        return self.root / "logs"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def kubeconfigs(self) -> Path:
        """Kubeconfigs minted for ServiceAccounts."""
        return self.root / "kubeconfigs"

    @property
    def pods(self) -> Path:
        """One directory per running pod (volumes, termination-message files, pids)."""
        return self.root / "pods"

    @property
    def container_logs(self) -> Path:
        """`<namespace>/<pod>/<uid>/<container>.log`, kept after the pod is gone."""
        return self.root / "containers"

    @property
    def claims(self) -> Path:
        """`<namespace>/<claim>`: the host directory behind each PersistentVolumeClaim."""
        return self.root / "claims"

    def claim_path(self, namespace: str, claim: str) -> Path:
        return self.claims / namespace / claim


def claim_path(namespace: str, claim: str, state_dir: Path | None = None) -> Path:
    """The host directory that backs PersistentVolumeClaim `claim` in `namespace`.

    Every pod that mounts the claim sees this directory, so tests and the demo read what a Job
    wrote to its volume here.
    """
    return StateDir(state_dir or default_state_dir()).claim_path(namespace, claim)
