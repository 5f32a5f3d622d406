"""The stage a benchmark plays on: its own MLflow servers, the Kiroframe stand-in, seeded data.

Every tool runs against the same servers in one invocation, so no tool is measured against a
warmer or emptier server than another. Servers run with the worker count real users get
(`mlflow server` defaults to 4) unless told otherwise.

The model-import destination keeps artifacts on a local path instead of serving them: the
peer's ``import-model`` checks that a version's source exists on the local disk, so against a
server that serves artifacts it cannot import a model at all.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import AccessLog
from devstack.mlflow_server import MlflowServer
from devstack.trace_workload import SeededTraces, seed_traces
from devstack.workload import Seeded, Workload, seed

KIROFRAME_TOKEN = "bench-token"
START_TIMEOUT = 600.0  # seconds for a server to answer; minutes on a machine busy with other work


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    """Set environment variables for a child started inside the block."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@dataclass
class Stage:
    root: Path
    workers: int = 4
    servers: dict[str, MlflowServer] = field(default_factory=dict)
    seeded: dict[str, Seeded] = field(default_factory=dict)
    seeded_traces: dict[str, SeededTraces] = field(default_factory=dict)
    kiroframe: object | None = None   # devstack.kiroframe.KiroframeStandIn when available

    def server(self, role: str, *, local_artifacts: bool = False) -> MlflowServer:
        """The server playing `role` ("src", "dst", ...), started on first use."""
        if role not in self.servers:
            server = MlflowServer(root=self.root / role, workers=self.workers)
            if local_artifacts:
                with environ(MLFLOW_DEFAULT_ARTIFACT_ROOT=str(self.root / role / "local-store")):
                    server.start(timeout=START_TIMEOUT)
            else:
                server.start(timeout=START_TIMEOUT)
            self.servers[role] = server
        return self.servers[role]

    def seed(self, role: str, workload: Workload) -> Seeded:
        key = f"{role}:{workload.name}:{workload.runs}"
        if key not in self.seeded:
            self.seeded[key] = seed(self.server(role).uri, workload)
        return self.seeded[key]

    def seed_traces(self, role: str, experiment: str, traces: int, spans: int) -> SeededTraces:
        """`traces` traces of `spans` spans in `experiment` on the `role` server, seeded once."""
        key = f"{role}:{experiment}"
        if key not in self.seeded_traces:
            self.seeded_traces[key] = seed_traces(self.server(role).uri, experiment, traces, spans)
        return self.seeded_traces[key]

    def kiroframe_url(self) -> str | None:
        """The stand-in's URL, started on first use; None if devstack has no stand-in."""
        if self.kiroframe is None:
            try:
                from devstack.kiroframe import KiroframeStandIn
            except ImportError:
                return None
            self.kiroframe = KiroframeStandIn(token=KIROFRAME_TOKEN).start()
        return str(self.kiroframe.url)  # type: ignore[attr-defined]

    def access_logs(self) -> list[AccessLog]:
        return [AccessLog(server.log_path, role) for role, server in self.servers.items()]

    def server_pids(self) -> list[int]:
        return [server.pid for server in self.servers.values() if server.pid is not None]

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        if self.kiroframe is not None:
            self.kiroframe.stop()  # type: ignore[attr-defined]
