"""`python -m devstack.cluster up|env|status|down`: a second cluster from the command line, and
`down` leaves no process and no listening port behind."""

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


@pytest.mark.usefixtures("k8s_buildable")
def test_up_env_status_down(tmp_path: Path) -> None:
    state_dir = tmp_path / "cli-cluster"
    up = cli("up", "--no-build", state_dir=state_dir)
    try:
        assert up.returncode == 0, up.stderr
        state = json.loads((state_dir / "cluster.json").read_text())
        port = int(state["server"].rsplit(":", 1)[1])
        pids = dict(state["pids"])
        assert set(pids) == {"etcd", "apiserver", "controller_manager", "kubelet"}
        assert listening(port)

        env = cli("env", state_dir=state_dir)
        assert f"export KUBECONFIG={state_dir / 'admin.kubeconfig'}" in env.stdout.splitlines()
        status = cli("status", state_dir=state_dir)
        assert status.returncode == 0
        assert "kubelet: running" in status.stdout
    finally:
        down = cli("down", state_dir=state_dir)
    assert down.returncode == 0, down.stderr
    assert not listening(port)
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"{name} (pid {pid}) still runs"
    assert cli("status", state_dir=state_dir).returncode == 1


def test_env_without_a_cluster_is_one_line_error(tmp_path: Path) -> None:
    result = cli("env", state_dir=tmp_path / "nothing")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: no cluster here; run `python -m devstack.cluster up`"]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


