"""The real mlflow-export-import 1.2.1 (installed by hack/install-peers.sh) and a server it can import into.

The peer's import-model cannot register versions on a server that serves artifacts (see
`devstack.mlflow_server.MlflowServer.serve_artifacts`), so tests where it imports use a server
whose artifact root is a plain local directory.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from devstack.missing import missing

PEER_BIN = Path(__file__).resolve().parents[2] / ".peers" / "mlflow-export-import" / "bin"


def require_peer() -> Path:
    """The peer's bin directory; skip (fail under CI) when it is not installed."""
    if not (PEER_BIN / "export-model").is_file():
        missing(f"mlflow-export-import is not installed in {PEER_BIN.parent} (run hack/install-peers.sh)")
    return PEER_BIN


# What MLflow's fluent API leaves in this process's environment for its subprocesses: the active
# experiment of whichever server a test seeded last (`mlflow.set_experiment` sets it). The peer's
# prompt export reads it and fails every version when it names an experiment of another server.
FLUENT_STATE = ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")


def peer(tool: str, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run one of the peer's commands against `uri`, as a fresh shell would; fail the test if it fails."""
    env = {**{k: v for k, v in os.environ.items() if k not in FLUENT_STATE}, "MLFLOW_TRACKING_URI": uri}
    done = subprocess.run([str(require_peer() / tool), *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{tool} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    print(f"{tool}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")  # shown with a later failure of the test
    return done
