"""The real mlflow-export-import 1.2.1 (installed by hack/install-peers.sh) and a server it can import into.

The peer's import-model cannot register versions on a server that serves artifacts: it looks for
the word "artifacts" in a version's source (``mlflow-artifacts:/...`` matches at the scheme) and
then checks that the result exists as a local path. `FileStoreServer` is therefore a server whose
artifact root is a plain local directory, the only setup where its import-model works.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from devstack.procs import free_port, spawn, stop_pid, wait_until

PEER_BIN = Path(__file__).resolve().parents[2] / ".peers" / "mlflow-export-import" / "bin"


def require_peer() -> Path:
    """The peer's bin directory; skip (fail under CI) when it is not installed."""
    if not (PEER_BIN / "export-model").is_file():
        reason = f"mlflow-export-import is not installed in {PEER_BIN.parent} (run hack/install-peers.sh)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return PEER_BIN


def peer(tool: str, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one of the peer's commands against `uri`; fail the test with its output if it fails."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run([str(require_peer() / tool), *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{tool} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@dataclass
class FileStoreServer:
    """`mlflow server` without artifact serving: runs' artifact URIs are local paths."""

    root: Path
    port: int = field(default_factory=free_port)
    pid: int | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FileStoreServer:
        (self.root / "store").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}", "--no-serve-artifacts",
                "--default-artifact-root", str(self.root / "store"), "--workers", "1"]
        proc = spawn(argv, self.root / "server.log", env=env, cwd=self.root)
        self.pid = proc.pid
        try:
            wait_until(lambda: requests.get(f"{self.uri}/health", timeout=2).ok, 120.0,
                       f"mlflow server on {self.uri}", proc, self.root / "server.log")
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid)
            self.pid = None
