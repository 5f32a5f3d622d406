"""The real mlflow-export-import 1.2.1 (installed by hack/install-peers.sh) and a server it can import into.

The peer's import-model cannot register versions on a server that serves artifacts (see
`devstack.mlflow_server.MlflowServer.serve_artifacts`), so tests where it imports use a server
whose artifact root is a plain local directory.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

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
