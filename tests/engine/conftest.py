"""Fixtures of the engine suite: clients of the two session servers and a seeded source experiment.

Seeding is slow-ish (a few seconds through the real MLflow client), so the rich experiment is
seeded once per session and tests only read it; tests that write use their own unique names.

`pair` gives one round-trip test per object kind a second pair of servers: the production-shaped
one (`devstack.production`: PostgreSQL, S3, basic auth), the source writing S3 itself and the
destination proxying it. The parameter is the test's own (function scope), so the plain servers'
tests keep their order and module fixtures; the production servers start only when a test asks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import mlflow
import pytest
from mlflow.tracking import fluent
from mlflow.tracking._tracking_service import utils as tracking_utils

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


# -- plain | production ----------------------------------------------------------------------------

PAIRS = ("plain", "production")
T = TypeVar("T")


@dataclass
class ServerPair:
    """A source and a destination server, and what clients of either need in their environment."""

    kind: str
    src: MlflowServer
    dst: MlflowServer
    env: dict[str, str] = field(default_factory=dict)  # credentials, S3 endpoint and keys; no URI
    seeds: dict[str, object] = field(default_factory=dict)  # what `seeded_once` made, by key

    @contextmanager
    def environment(self) -> Iterator[None]:
        """`env` in the process environment (where ferry's and MLflow's clients read it) while inside."""
        with pytest.MonkeyPatch.context() as mp:
            for name, value in self.env.items():
                mp.setenv(name, value)
            yield

    def seeded_once(self, key: str, make: Callable[[], T]) -> T:
        """`make()` (seeding through MLflow's client, in `environment`) the first time `key` is asked."""
        if key not in self.seeds:
            with self.environment():
                self.seeds[key] = make()
        return self.seeds[key]  # type: ignore[return-value]


@pytest.fixture(scope="session")
def production_pair(mlflow_prod_direct: MlflowServer, mlflow_prod_proxied: MlflowServer) -> ServerPair:
    """From the server whose clients write S3 themselves to the one that proxies its artifacts.

    Both have the same admin, so one set of credentials (with the direct server's S3 keys) serves both.
    """
    env = {**mlflow_prod_proxied.client_env(), **mlflow_prod_direct.client_env()}
    env.pop("MLFLOW_TRACKING_URI")
    return ServerPair("production", mlflow_prod_direct, mlflow_prod_proxied, env)


@pytest.fixture(scope="session")
def plain_pair(mlflow_src: MlflowServer, mlflow_dst: MlflowServer) -> ServerPair:
    return ServerPair("plain", mlflow_src, mlflow_dst)


@dataclass(frozen=True)
class Pair:
    """The pair a test runs against, its environment set, with clients of both servers."""

    servers: ServerPair
    src_client: TrackingClient
    dst_client: TrackingClient

    @property
    def kind(self) -> str:
        return self.servers.kind

    @property
    def src(self) -> MlflowServer:
        return self.servers.src

    @property
    def dst(self) -> MlflowServer:
        return self.servers.dst


@pytest.fixture(params=PAIRS)
def pair(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    """The plain servers, then the production-shaped ones; the environment holds the credentials.

    Seeds point MLflow's fluent API at the server they seed; afterwards it points where it did
    before, so the plain tests after this one find what they expect.
    """
    servers: ServerPair = request.getfixturevalue(f"{request.param}_pair")
    fluent_uri, fluent_experiment = tracking_utils._tracking_uri, fluent._active_experiment_id
    for name, value in servers.env.items():
        monkeypatch.setenv(name, value)
    yield Pair(servers, TrackingClient(servers.src.uri), TrackingClient(servers.dst.uri))
    if tracking_utils._tracking_uri != fluent_uri:
        mlflow.set_tracking_uri(fluent_uri)
    fluent._active_experiment_id = fluent_experiment


def on_pair(pair: Pair, request: pytest.FixtureRequest, plain_fixture: str, key: str, make: Callable[[], T]) -> T:
    """The module's own fixture `plain_fixture` on the plain pair; `make()` once per session on the other."""
    if pair.kind == "plain":
        return request.getfixturevalue(plain_fixture)  # type: ignore[no-any-return]
    return pair.servers.seeded_once(key, make)


@pytest.fixture
def pair_seeded(pair: Pair, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """`seeded` on the pair's source: the session's own on the plain pair."""
    return on_pair(pair, request, "seeded", "experiment", lambda: seed_experiment(
        pair.src.uri, f"seeded-{os.getpid()}", tmp_path_factory.mktemp("seed-production")))
