"""A real `mlflow server` on 127.0.0.1: sqlite backend, artifacts served through the server.

Tests start two (source and destination); the demo and the benchmarks use the same code. Usage
from a shell::

    python -m devstack.mlflow_server --dir /tmp/src   # prints the URI, runs until Ctrl-C
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.procs import free_port, spawn, stop_pid, wait_until


@dataclass
class MlflowServer:
    """One `mlflow server` process, recorded by pid.

    The artifact store lives in `<root>/store`: no path component named ``artifacts``, which
    mlflow-export-import's import-model trips over. With `serve_artifacts` off, runs' artifact
    URIs are plain local paths, the only setup where that tool's import-model works at all (it
    looks for the word "artifacts" in a version's source, which ``mlflow-artifacts:`` matches).
    """

    root: Path
    workers: int = 1
    serve_artifacts: bool = True
    port: int = field(default_factory=free_port)
    pid: int | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def start(self, timeout: float = 120.0) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "store").mkdir(exist_ok=True)
        env = dict(os.environ)
        # Tracking and the registry do not need MLflow's job runner; without it the server is up
        # in seconds instead of about a minute.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        env.pop("MLFLOW_TRACKING_URI", None)
        argv = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--workers", str(self.workers),
        ]
        if self.serve_artifacts:
            argv += ["--serve-artifacts", "--artifacts-destination", str(self.root / "store")]
        else:
            argv += ["--no-serve-artifacts", "--default-artifact-root", str(self.root / "store")]
        proc = spawn(argv, self.log_path, env=env, cwd=self.root)
        self.pid = proc.pid
        try:
            wait_until(lambda: requests.get(f"{self.uri}/health", timeout=2).ok, timeout,
                       f"mlflow server on {self.uri}", proc, self.log_path)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid)
            self.pid = None

    def wipe(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    server = MlflowServer(root=args.dir, workers=args.workers)
    if args.port:
        server.port = args.port
    server.start()
    print(server.uri, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
