"""`python -m devstack.cluster up|env|status`: the session's cluster from the command line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "devstack.cluster", *args, "--state-dir", str(state_dir)],
                          cwd=REPO, capture_output=True, text=True, timeout=180)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_up_reuses_a_running_cluster_and_env_and_status_describe_it(k8s_cluster) -> None:
    """On the session's cluster: `up` starts nothing twice. (`down` is what the session's teardown
    runs; it checks there that no process and no listening port is left.)"""
    state_dir = k8s_cluster.state_dir
    before = json.loads((state_dir / "cluster.json").read_text())
    assert set(before["pids"]) == {"etcd", "apiserver", "controller_manager", "kubelet"}
    up = cli("up", "--no-build", state_dir=state_dir)
    assert up.returncode == 0, up.stderr
    assert json.loads((state_dir / "cluster.json").read_text())["pids"] == before["pids"]
    assert listening(int(before["server"].rsplit(":", 1)[1]))

    env = cli("env", state_dir=state_dir)
    assert f"export KUBECONFIG={state_dir / 'admin.kubeconfig'}" in env.stdout.splitlines()
    status = cli("status", state_dir=state_dir)
    assert status.returncode == 0
    assert "kubelet: running" in status.stdout


def test_env_without_a_cluster_is_one_line_error(tmp_path: Path) -> None:
    result = cli("env", state_dir=tmp_path / "nothing")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: no cluster here; run `python -m devstack.cluster up`"]

