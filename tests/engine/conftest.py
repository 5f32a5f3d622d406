"""Fixtures of the engine suite: clients of the two session servers and a seeded source experiment.

Seeding is slow-ish (a few seconds through the real MLflow client), so the rich experiment is
seeded once per session and tests only read it; tests that write use their own unique names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.mlflow_server import MlflowServer
from ferry.tracking import TrackingClient
from tests.engine.seed import Seeded, seed_experiment


@pytest.fixture(scope="session")
def src_client(mlflow_src: MlflowServer) -> TrackingClient:
    return TrackingClient(mlflow_src.uri)


@pytest.fixture(scope="session")
def dst_client(mlflow_dst: MlflowServer) -> TrackingClient:
    return TrackingClient(mlflow_dst.uri)


@pytest.fixture(scope="session")
def seeded(mlflow_src: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """One experiment with every kind of run data the engine must carry (see `seed_experiment`)."""
    return seed_experiment(mlflow_src.uri, f"seeded-{os.getpid()}", tmp_path_factory.mktemp("seed"))


@pytest.fixture(scope="session")
def mlflow2(mlflow2_src: MlflowServer) -> TrackingClient:
    """A client of the MLflow 2.22 server (`devstack.production.mlflow2_src`): the migration's usual source."""
    return TrackingClient(mlflow2_src.uri)


@pytest.fixture
def no_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail fast on an unreachable server (the default retries for several seconds)."""
    monkeypatch.setenv("FERRY_HTTP_MAX_ATTEMPTS", "1")
    yield


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"
