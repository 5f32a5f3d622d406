"""Fixtures of the Databricks tests (a plugin of the whole suite, so the e2e test shares them): a
real MLflow server, and the workspace stand-in over it.

Both live for the whole session. `dbx_env_pat` / `dbx_env_oauth` put a workspace client's
environment into ``os.environ`` for one test (databricks-sdk and MLflow read it from there), with
``DATABRICKS_*`` variables of the machine and any ``~/.databrickscfg`` kept out of the way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.databricks import DatabricksWorkspace, backend_server
from devstack.mlflow_server import MlflowServer


@pytest.fixture(scope="session")
def dbx_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """The open-source tracking server behind the workspace, with Databricks-style artifact URIs."""
    server = backend_server(tmp_path_factory.mktemp("dbx-backend")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dbx_workspace(dbx_backend: MlflowServer, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[DatabricksWorkspace]:
    workspace = DatabricksWorkspace(backend=dbx_backend.uri, root=tmp_path_factory.mktemp("dbx-workspace")).start()
    yield workspace
    workspace.stop()


@pytest.fixture
def short_lived(dbx_backend: MlflowServer, tmp_path: Path) -> Iterator[DatabricksWorkspace]:
    """A workspace of its own whose OAuth tokens live 43 s: the SDK takes a token as expired 40 s
    before it does expire, so each token serves it for about 3 s and then it must get another."""
    workspace = DatabricksWorkspace(backend=dbx_backend.uri, root=tmp_path / "ws", token_lifetime=43).start()
    yield workspace
    workspace.stop()


def _isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "MLFLOW_TRACKING_", "MLFLOW_REGISTRY_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(home / ".databrickscfg"))


@pytest.fixture
def dbx_clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No Databricks or MLflow tracking settings at all; the config file is an empty one in tmp_path."""
    _isolate(monkeypatch, tmp_path)
    return monkeypatch


@pytest.fixture
def dbx_env_pat(dbx_workspace: DatabricksWorkspace, dbx_clean_env: pytest.MonkeyPatch) -> dict[str, str]:
    """`env_pat()` in os.environ for this test."""
    return put_env(dbx_clean_env, dbx_workspace.env_pat())


@pytest.fixture
def dbx_env_oauth(dbx_workspace: DatabricksWorkspace, dbx_clean_env: pytest.MonkeyPatch) -> dict[str, str]:
    """`env_oauth()` in os.environ for this test."""
    return put_env(dbx_clean_env, dbx_workspace.env_oauth())


def put_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def dbx_mlflow(dbx_env_pat: dict[str, str], dbx_clean_env: pytest.MonkeyPatch) -> Iterator[None]:
    """MLflow's own client pointed at the workspace (``MLFLOW_TRACKING_URI=databricks``, PAT auth).

    Run artifacts go through MLflow's ``DatabricksArtifactRepository`` (credentials + signed URLs):
    without ``MLFLOW_DISABLE_DATABRICKS_SDK_FOR_RUN_ARTIFACTS`` MLflow first tries the Files API
    (``/api/2.0/fs/files/...``), which the workspace does not serve.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_uris
    from mlflow.tracking._tracking_service import utils as tracking_uris
    from mlflow.utils.rest_utils import get_workspace_client

    # What was *set* before, not what get_*_uri() resolves now: restoring a resolved default
    # would pin it (the registry's default for a databricks tracking URI is databricks-uc), and
    # every later MlflowClient(uri) of the session would send its registry calls there.
    previous = tracking_uris._tracking_uri, registry_uris._registry_uri
    get_workspace_client.cache_clear()  # MLflow caches SDK clients built from an earlier environment
    dbx_clean_env.setenv("MLFLOW_TRACKING_URI", "databricks")
    dbx_clean_env.setenv("MLFLOW_REGISTRY_URI", "databricks")
    dbx_clean_env.setenv("MLFLOW_DISABLE_DATABRICKS_SDK_FOR_RUN_ARTIFACTS", "true")
    mlflow.set_tracking_uri("databricks")
    mlflow.set_registry_uri("databricks")
    yield
    mlflow.set_tracking_uri(previous[0])
    registry_uris._registry_uri = previous[1]  # set_registry_uri(None) leaves the variable behind
    get_workspace_client.cache_clear()
