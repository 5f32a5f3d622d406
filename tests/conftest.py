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


def _in_cluster(item: pytest.Item) -> bool:
    return bool(item.get_closest_marker("cluster") or CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())))


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    """Under parallel workers (``make test``: pytest-xdist with ``--dist loadgroup``) every test of
    the local cluster runs on one worker: one control plane for the run, and the tests that restart
    its kube-apiserver or re-create its CRDs never pull it from under another test. Every other
    module runs whole on one worker: its module-scoped servers start once, and a module's tests
    that follow one scenario step by step (a mirror's first sync, then the next) stay in order.

    pytest-xdist groups by a suffix it adds to the node ids; pytest 9.2 ignores that change
    (pytest-xdist issue 1386), and the tests would then spread over every worker, with a control
    plane each and scenarios cut apart. That is refused here rather than left to fail at random.
    """
    cluster = [item for item in items if _in_cluster(item)]
    chosen = {id(item) for item in cluster}
    for item in items:
        group = "cluster" if id(item) in chosen else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
    # The cluster group is the longest unit of work: handed out first, it overlaps with all the rest.
    items[:] = cluster + [item for item in items if id(item) not in chosen]
    result = yield
    if config.getoption("loadgroup", default=False):
        lost = [item.nodeid for item in items if "@" not in item.nodeid.rsplit("]", 1)[-1].rsplit("::", 1)[-1]]
        if lost:
            raise pytest.UsageError(f"pytest-xdist did not group {len(lost)} tests ({lost[0]}, ...): this pytest "
                                    "and pytest-xdist do not work together (see the pins in pyproject.toml)")
    return result


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

