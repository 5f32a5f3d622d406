"""Fixtures shared by every test suite: two real MLflow tracking servers on 127.0.0.1.

The servers live for the whole session (they take seconds to start); tests isolate themselves by
using unique experiment and model names (see `unique`).
"""

from __future__ import annotations

import base64
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.mlflow_server import MlflowServer

pytest_plugins = ["devstack.cluster.pytest_plugin", "devstack.production", "tests.databricks.fixtures"]

MLFLOW_WORKERS = int(os.environ.get("FERRY_TEST_MLFLOW_WORKERS", "1"))
# Webhooks may point at a receiver on 127.0.0.1 (MLflow allows only public https URLs by default),
# and every worker decrypts the stored signing secrets with the same key.
WEBHOOK_ENV = {"MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https", "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
               "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode()}


CLUSTER_FIXTURES = {"k8s_cluster", "k8s_buildable"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under parallel workers (``make test``: pytest-xdist with ``--dist loadgroup``) every test of
    the local cluster runs on one worker: one control plane for the run, and the tests that restart
    its kube-apiserver or re-create its CRDs never pull it from under another test."""
    for item in items:
        if item.get_closest_marker("cluster") or CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("cluster"))


@pytest.fixture(scope="session")
def mlflow_src(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """The source tracking server; unlike the destination (and MLflow's default) it accepts custom scorer code."""
    server = MlflowServer(root=tmp_path_factory.mktemp("mlflow-src"), workers=MLFLOW_WORKERS,
                          env={**WEBHOOK_ENV, "MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS": "true"}).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlflow_dst(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """The destination tracking server."""
    server = MlflowServer(root=tmp_path_factory.mktemp("mlflow-dst"), workers=MLFLOW_WORKERS,
                          env=WEBHOOK_ENV).start()
    yield server
    server.stop()


@pytest.fixture
def unanswering() -> Iterator[str]:
    """A server that accepts connections and never answers: whatever talks to it hangs until stopped."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def unique() -> str:
    """A short suffix that keeps names of one test apart from every other test's on shared servers."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
