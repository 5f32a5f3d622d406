"""A real `mlflow server` on 127.0.0.1: sqlite backend, artifacts served through the server.

Tests start two (source and destination); the demo and the benchmarks use the same code. The
options make it production-shaped: a PostgreSQL backend (`backend_uri`), artifacts in S3 proxied
by the server (`artifacts_destination="s3://bucket/prefix"`) or read and written by the clients
themselves (`default_artifact_root="s3://..."`, `serve_artifacts=False`), MLflow's basic-auth app
(`auth`), and another interpreter (`python`, e.g. MLflow 2.22's in .peers/mlflow2). Usage from a
shell::

    python -m devstack.mlflow_server --dir /tmp/src   # prints the URI, runs until Ctrl-C
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import os
import secrets
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.procs import free_port, serve_until_interrupted, spawn, stop_pid, wait_until


@dataclass(frozen=True)
class BasicAuth:
    """MLflow's basic-auth app: the admin it creates on first start, and its own user store."""

    admin_username: str = "admin"
    admin_password: str = "ferry-admin-password"
    default_permission: str = "READ"  # what a user has on experiments nobody granted them anything on
    database_uri: str | None = None  # sqlite in the server's directory if None
    # Each request's password check is a PBKDF2 hash of about a second; MLflow can cache a checked
    # password per worker for this long (0 turns that off, MLflow's own default).
    auth_cache_ttl_seconds: int = 300


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
    # Production-shaped options; the defaults keep the sqlite + local store setup above.
    backend_uri: str | None = None  # e.g. PostgresCluster.create_database(...); sqlite in root if None
    artifacts_destination: str | None = None  # proxied mode: s3://bucket/prefix; root/store if None
    default_artifact_root: str | None = None  # direct mode (serve_artifacts=False): s3://bucket/prefix
    auth: BasicAuth | None = None  # run MLflow's basic-auth app with this admin
    s3_env: dict[str, str] = field(default_factory=dict)  # S3Server.env(): endpoint and keys
    python: str = sys.executable  # the interpreter whose mlflow runs the server
    env: dict[str, str] = field(default_factory=dict)  # anything else for the server's environment

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def auth_config_path(self) -> Path:
        return self.root / "basic_auth.ini"

    def client_env(self, username: str | None = None, password: str | None = None) -> dict[str, str]:
        """What an MLflow client of this server needs in its environment.

        The tracking URI; with `auth`, the credentials (the admin's unless `username`/`password`
        are given); in direct mode on S3, the endpoint and keys (the client writes to S3 itself).
        """
        env = {"MLFLOW_TRACKING_URI": self.uri}
        if self.auth is not None:
            env["MLFLOW_TRACKING_USERNAME"] = username or self.auth.admin_username
            env["MLFLOW_TRACKING_PASSWORD"] = password or self.auth.admin_password
        if not self.serve_artifacts and (self.default_artifact_root or "").startswith("s3://"):
            env.update(self.s3_env)
        return env

    def _write_auth_config(self) -> None:
        assert self.auth is not None
        config = configparser.ConfigParser()
        config["mlflow"] = {
            "default_permission": self.auth.default_permission,
            "database_uri": self.auth.database_uri or f"sqlite:///{self.root / 'basic_auth.db'}",
            "admin_username": self.auth.admin_username,
            "admin_password": self.auth.admin_password,
            "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
            "auth_cache_ttl_seconds": str(self.auth.auth_cache_ttl_seconds),
        }
        with open(self.auth_config_path, "w") as out:
            config.write(out)
        self.auth_config_path.chmod(0o600)

    def start(self, timeout: float = 120.0) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "store").mkdir(exist_ok=True)
        env = dict(os.environ)
        # Tracking and the registry do not need MLflow's job runner; without it the server is up
        # in seconds instead of about a minute.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        env.pop("MLFLOW_TRACKING_URI", None)
        env.update(self.s3_env)
        env.update(self.env)
        backend = self.backend_uri or f"sqlite:///{self.root / 'mlflow.db'}"
        argv = [
            self.python, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", backend,
            "--workers", str(self.workers),
        ]
        if self.serve_artifacts:
            argv += ["--serve-artifacts", "--artifacts-destination",
                     self.artifacts_destination or str(self.root / "store")]
        else:
            argv += ["--no-serve-artifacts", "--default-artifact-root",
                     self.default_artifact_root or str(self.root / "store")]
        if self.auth is not None:
            self._write_auth_config()
            env["MLFLOW_AUTH_CONFIG_PATH"] = str(self.auth_config_path)
            # The auth app's CSRF protection wants one static key shared by all the workers.
            env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", secrets.token_hex(16))
            argv += ["--app-name", "basic-auth"]
        proc = spawn(argv, self.log_path, env=env, cwd=self.root)
        self.pid = proc.pid
        try:
            wait_until(lambda: requests.get(f"{self.uri}/health", timeout=2).ok, timeout,
                       f"mlflow server on {self.uri}", proc, self.log_path)
        except Exception:
            self.stop()
            raise
        return self

    # -- MLflow's auth REST API (mlflow/server/auth), called as the admin ------------------------

    def _admin(self) -> tuple[str, str]:
        if self.auth is None:
            raise RuntimeError(f"{self.uri} runs without the basic-auth app")
        return self.auth.admin_username, self.auth.admin_password

    def create_user(self, username: str, password: str) -> None:
        """Create an ordinary (non-admin) user."""
        resp = requests.post(f"{self.uri}/api/2.0/mlflow/users/create", auth=self._admin(), timeout=30,
                             json={"username": username, "password": password})
        resp.raise_for_status()

    def grant_experiment_permission(self, experiment_id: str, username: str,
                                    permission: str = "READ") -> None:
        """Give `username` `permission` (READ, USE, EDIT, MANAGE, NO_PERMISSIONS) on one experiment.

        MLflow 2 and the earlier 3.x releases have ``/api/2.0/mlflow/experiments/permissions/create``;
        the role-based auth of later 3.x releases (3.17 here) grants through
        ``/api/3.0/mlflow/users/permissions/grant`` instead. The newer is tried first, the older on 404.
        """
        resp = requests.post(f"{self.uri}/api/3.0/mlflow/users/permissions/grant", auth=self._admin(),
                             timeout=30, json={"username": username, "resource_type": "experiment",
                                               "resource_id": str(experiment_id), "permission": permission})
        if resp.status_code == 404:
            resp = requests.post(f"{self.uri}/api/2.0/mlflow/experiments/permissions/create",
                                 auth=self._admin(), timeout=30,
                                 json={"experiment_id": str(experiment_id), "username": username,
                                       "permission": permission})
        resp.raise_for_status()

    def stop(self) -> None:
        if self.pid is not None:
            stop_pid(self.pid)
            self.pid = None

    def kill(self) -> None:
        """SIGKILL the server and its workers, as a crash or an OOM kill would: no shutdown at all."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            stop_pid(self.pid, grace=5.0)  # reaps it
            self.pid = None

    def restart(self, timeout: float = 120.0) -> MlflowServer:
        """Start again on the same port with the same backend and store (what a crashed server's
        supervisor does); clients that retry find it where it was."""
        self.stop()
        return self.start(timeout)

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
    serve_until_interrupted(server.stop)


if __name__ == "__main__":
    main()
