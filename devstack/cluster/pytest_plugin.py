"""Pytest fixtures for tests against the local cluster.

Register with `pytest_plugins = ["devstack.cluster.pytest_plugin"]`. The cluster is built (cached)
and started once per session in its own state directory, so concurrent sessions do not share one;
with `FERRY_CLUSTER_DIR` set, a cluster already up there is reused and left running.

When the control plane cannot be built on this machine the tests are skipped with the reason —
except under CI (`CI` set), where that is a failure: CI must never be silently green.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from devstack.cluster.control_plane import BuildMissing, Cluster
from devstack.missing import missing

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "build-control-plane.sh"


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy, and return that; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def _unavailable(reason: str) -> None:
    missing(f"local cluster unavailable on this machine: {reason}")


@pytest.fixture(scope="session")
def k8s_buildable() -> None:
    """The control plane is built (cached) and this machine can run the local kubelet."""
    if os.geteuid() != 0:
        _unavailable("the local kubelet needs root (mount namespaces, bind mounts)")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        _unavailable(f"cannot make a mount namespace: {probe.stderr.strip()}")
    build = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True)
    if build.returncode != 0:
        tail = " | ".join((build.stdout + build.stderr).strip().splitlines()[-5:])
        _unavailable(f"hack/build-control-plane.sh failed ({build.returncode}): {tail}")


@pytest.fixture(scope="session")
def k8s_cluster(k8s_buildable: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running cluster: etcd, kube-apiserver, kube-controller-manager and the local kubelet.

    Pods' processes get this Python's bin directory first on PATH (`FERRY_POD_PATH` overrides).
    """
    preset = os.environ.get("FERRY_CLUSTER_DIR")
    cluster = Cluster(Path(preset) if preset else tmp_path_factory.mktemp("k8s"),
                      pod_path=os.environ.get("FERRY_POD_PATH"))
    reused = cluster.is_up()
    try:
        cluster.up()
    except BuildMissing as error:
        _unavailable(str(error))
    previous = os.environ.get("FERRY_CLUSTER_DIR")
    os.environ["FERRY_CLUSTER_DIR"] = str(cluster.state_dir)  # for claim_path() and read_log()
    yield cluster
    if previous is None:
        os.environ.pop("FERRY_CLUSTER_DIR", None)
    if not reused:
        pids = dict(cluster.state.pids) if cluster.state else {}
        cluster.down()
        left = [f"{name} (pid {pid})" for name, pid in pids.items() if _running(pid)]
        assert not left, f"the cluster's down left {', '.join(left)} running"
        assert not _listening(cluster.server), f"the cluster's down left {cluster.server} listening"


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _listening(server: str) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", int(server.rsplit(":", 1)[1]))) == 0


@pytest.fixture(scope="session")
def k8s_api(k8s_cluster: Cluster) -> client.ApiClient:
    """A `kubernetes` API client with the admin's rights (system:masters)."""
    return config.new_client_from_config(config_file=str(k8s_cluster.kubeconfig))


@pytest.fixture
def k8s_namespace(k8s_cluster: Cluster, k8s_api: client.ApiClient) -> Iterator[str]:
    """A fresh namespace for one test, ready for pods (its default ServiceAccount has its token)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(k8s_api)
    core.create_namespace({"metadata": {"name": name, "labels": {"ferry.test/namespace": "true"}}})
    k8s_cluster.serviceaccount_kubeconfig(name, "default")
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def k8s_sa_api(k8s_cluster: Cluster) -> Callable[[str, str], client.ApiClient]:
    """Factory: `(namespace, serviceaccount) -> ApiClient` with exactly that ServiceAccount's rights."""
    def make(namespace: str, name: str) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(k8s_cluster.serviceaccount_kubeconfig(namespace, name)))
    return make
