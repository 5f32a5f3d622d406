"""A real PostgreSQL cluster on 127.0.0.1: initdb in a temporary directory, one `postgres` process.

Uses the server binaries of Debian's `postgresql` package (``/usr/lib/postgresql/<N>/bin``) or any
`initdb`/`postgres` on PATH. PostgreSQL refuses to run as root, so when we are root the cluster is
initialised and run as the unprivileged ``postgres`` user (created by the package) through
`setpriv`, and its directory is owned by that user. It listens on 127.0.0.1 only (no Unix socket
outside its own directory) and wants a password (SCRAM) for every TCP connection. Usage from a
shell::

    python -m devstack.postgres --database mlflow   # prints the database URI, runs until Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from devstack.procs import free_port, serve_until_interrupted, spawn, stop_pid, wait_until

RUN_AS = "postgres"


def bin_dir() -> Path:
    """The directory holding `initdb` and `postgres`: the newest Debian cluster version, else PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(re.search(r"/(\d+)/bin/", p).group(1)))  # type: ignore[union-attr]
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
    return Path(initdb).parent


@dataclass
class PostgresCluster:
    """One PostgreSQL cluster (data directory + postmaster process), recorded by pid.

    `root` defaults to a fresh directory under the system temporary directory: when we are root,
    the cluster's user must be able to reach it, which a pytest temporary directory (mode 0700,
    owned by root) does not allow. `stop()` removes a directory it made itself.
    """

    root: Path | None = None
    user: str = "ferry"
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    port: int = field(default_factory=free_port)
    pid: int | None = None
    _own_root: bool = False

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "postgres.log"

    def uri(self, database: str = "postgres", driver: str = "postgresql+psycopg2") -> str:
        """The SQLAlchemy URI of `database`, naming the psycopg2 driver: SQLAlchemy 2.1 maps a bare
        ``postgresql://`` to psycopg 3, which the test extra does not install."""
        return f"{driver}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> dict[str, object]:
        """Keyword arguments for ``psycopg2.connect``."""
        return {"host": "127.0.0.1", "port": self.port, "user": self.user, "password": self.password,
                "dbname": database}

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        return ["setpriv", f"--reuid={RUN_AS}", f"--regid={RUN_AS}", "--init-groups", "--", *argv]

    def start(self, timeout: float = 60.0) -> PostgresCluster:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="ferry-postgres-"))
            self._own_root = True
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(RUN_AS)
            except KeyError:
                raise RuntimeError(f"PostgreSQL cannot run as root and there is no {RUN_AS!r} user: "
                                   "apt-get install postgresql") from None
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        bindir = bin_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            pwfile = self.root / "pwfile"
            pwfile.write_text(self.password + "\n")
            if os.geteuid() == 0:
                os.chown(pwfile, pwd.getpwnam(RUN_AS).pw_uid, -1)
            pwfile.chmod(0o600)
            try:
                subprocess.run(
                    self._as_owner([str(bindir / "initdb"), "-D", str(self.data_dir), "-U", self.user,
                                    f"--pwfile={pwfile}", "--auth-local=scram-sha-256",
                                    "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                                    "--no-sync"]),
                    check=True, capture_output=True, text=True, cwd=self.root,
                )
            except subprocess.CalledProcessError as exc:
                raise RuntimeError(f"initdb failed:\n{exc.stdout}\n{exc.stderr}") from exc
            finally:
                pwfile.unlink(missing_ok=True)
        argv = self._as_owner([
            str(bindir / "postgres"), "-D", str(self.data_dir),
            "-c", "listen_addresses=127.0.0.1", "-c", f"port={self.port}",
            "-c", f"unix_socket_directories={self.root}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ])
        proc = spawn(argv, self.log_path, cwd=self.root)
        self.pid = proc.pid
        try:
            wait_until(self._accepts_connections, timeout, f"postgres on 127.0.0.1:{self.port}", proc,
                       self.log_path)
        except Exception:
            self.stop()
            raise
        return self

    def _accepts_connections(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass
        result = subprocess.run([str(bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                                 "-U", self.user], capture_output=True)
        return result.returncode == 0

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run one statement outside a transaction (CREATE DATABASE needs that)."""
        import psycopg2  # the test extra's driver; imported here so the module loads without it

        conn = psycopg2.connect(**self.dsn(database))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create_database(self, name: str) -> str:
        """Create database `name` (owned by the cluster's user) and return its SQLAlchemy URI."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a plain PostgreSQL identifier: {name!r}")
        self.execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def stop(self) -> None:
        """`pg_ctl stop -m fast` (no waiting for clients), then whatever is left of the process group."""
        if self.pid is not None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(self._as_owner([str(bin_dir() / "pg_ctl"), "stop", "-D", str(self.data_dir),
                                               "-m", "fast", "-w", "-t", "15"]),
                               capture_output=True, timeout=30, cwd=self.root)
            stop_pid(self.pid)
            self.pid = None
        if self._own_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", action="append", default=[], help="create this database (repeatable)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    cluster = PostgresCluster()
    if args.port:
        cluster.port = args.port
    cluster.start()
    print(cluster.uri(), flush=True)
    for name in args.database:
        print(cluster.create_database(name), flush=True)
    serve_until_interrupted(cluster.stop)


if __name__ == "__main__":
    main()
