"""Fixtures of the Kiroframe sync tests: a source server of each module's own, seeded, and a fresh
stand-in per test.

A sync reads the whole tracking server. On a server of its own a module reads exactly what it
seeded, and the faults it injects land among the runs it describes, not other tests' records.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.kiroframe import KiroframeStandIn
from devstack.mlflow_server import MlflowServer
from ferry.kiroframe.settings import KiroframeSettings
from tests.kiroframe.seed import Seeded, seed

TOKEN = "kf-test-token-5d1e"


@pytest.fixture(scope="module")
def kiroframe_src(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """The tracking server this module's syncs read: small, and holding nothing but its seed."""
    server = MlflowServer(root=tmp_path_factory.mktemp("kiroframe-src")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def seeded(kiroframe_src: MlflowServer) -> Seeded:
    return seed(kiroframe_src.uri, uuid.uuid4().hex[:8])


@pytest.fixture
def kiroframe() -> Iterator[KiroframeStandIn]:
    standin = KiroframeStandIn(token=TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture
def settings_for(kiroframe_src: MlflowServer, kiroframe: KiroframeStandIn, tmp_path: Path):
    """Settings of a sync into `tmp_path` with a retry budget of seconds, not minutes."""

    def make(**overrides: object) -> KiroframeSettings:
        values: dict[str, object] = {
            "tracking_url": kiroframe_src.uri, "kiroframe_url": kiroframe.url, "profiling_token": TOKEN,
            "base_dir": tmp_path / "exports", "retry_seconds": 20.0, "backoff_seconds": 0.05,
            "backoff_max_seconds": 0.5,
        }
        values.update(overrides)
        return KiroframeSettings(**values)

    return make
