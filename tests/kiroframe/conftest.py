"""Fixtures of the Kiroframe sync tests: the seeded source server and a fresh stand-in per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.kiroframe import KiroframeStandIn
from devstack.mlflow_server import MlflowServer
from ferry.kiroframe.settings import KiroframeSettings
from tests.kiroframe.seed import Seeded, seed

TOKEN = "kf-test-token-5d1e"


@pytest.fixture(scope="module")
def seeded(mlflow_src: MlflowServer) -> Seeded:
    import uuid

    return seed(mlflow_src.uri, uuid.uuid4().hex[:8])


@pytest.fixture
def kiroframe() -> Iterator[KiroframeStandIn]:
    standin = KiroframeStandIn(token=TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture
def settings_for(mlflow_src: MlflowServer, kiroframe: KiroframeStandIn, tmp_path: Path):
    """Settings of a sync into `tmp_path` with a retry budget of seconds, not minutes."""

    def make(**overrides: object) -> KiroframeSettings:
        values: dict[str, object] = {
            "tracking_url": mlflow_src.uri, "kiroframe_url": kiroframe.url, "profiling_token": TOKEN,
            "base_dir": tmp_path / "exports", "retry_seconds": 20.0, "backoff_seconds": 0.05,
            "backoff_max_seconds": 0.5,
        }
        values.update(overrides)
        return KiroframeSettings(**values)

    return make
