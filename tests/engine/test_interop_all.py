"""export-all / import-all against the real mlflow-export-import 1.2.1, in both directions.

The peer's export-all, imported by our import-all, equals its source but for what the peer's files
do not hold (a prompt's aliases, the inputs and outputs of spans MLflow 3 keeps in its tracking store). Our export-all imported by the peer's import-all on MLflow 3.17
carries what that tool can import there: the experiments with their runs' data, the registered
model itself, the prompt's versions, the logged models that have a run, the dataset's records.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.compare import differences
from devstack.mlflow_server import MlflowServer
from ferry.engine import server_bulk
from ferry.tracking import TrackingClient
from tests.engine.peer_tools import peer, require_peer
from tests.engine.server_seed import SeededServer, seed_server, server_view

pytestmark = [pytest.mark.peer, pytest.mark.slow]
START_TIMEOUT = 300.0  # s: servers of its own, also on a busy machine


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MlflowServer, SeededServer]]:
    require_peer()
    server = MlflowServer(tmp_path_factory.mktemp("peer-all-src")).start(timeout=START_TIMEOUT)
    try:
        yield server, seed_server(server.uri, tmp_path_factory.mktemp("peer-all-seed"), prefix="peer")
    finally:
        server.stop()


@pytest.fixture
def destination(tmp_path: Path) -> Iterator[MlflowServer]:
    """An empty server whose artifact root is a plain directory: the one kind the peer's import-model can use."""
    server = MlflowServer(tmp_path / "dst", serve_artifacts=False).start(timeout=START_TIMEOUT)
    try:
        yield server
    finally:
        server.stop()


def test_peer_export_all_imported_by_us(source: tuple[MlflowServer, SeededServer], destination: MlflowServer,
                                        tmp_path: Path) -> None:
    server, seeded = source
    out = tmp_path / "peer-export"
    peer("export-all", server.uri, "--output-dir", str(out))
    outcome = server_bulk.import_all(TrackingClient(destination.uri), out)
    # The peer writes a trace's spans only where MLflow also put them in the artifacts; MLflow 3 keeps
    # them in its tracking store, so the peer's export has their names and times and nothing else.
    assert outcome.phase == "PartiallyFailed"
    assert [f.split(":")[0] for f in outcome.failed] == [f"trace {seeded.trace_id}"]
    assert "no span data" in outcome.failed[0]
    assert outcome.message.startswith("imported: 4 experiments, 11 runs, 1 models, 3 versions, 3 logged models, "
                                      "1 traces, 1 prompts, 2 prompt versions, 1 evaluation datasets")
    src, dst = server_view(server.uri), server_view(destination.uri)
    assert src["prompts"][seeded.prompt]["aliases"] == {"live": 1}
    assert dst["prompts"][seeded.prompt]["aliases"] == {}  # the peer's prompt.json holds no aliases
    dst["prompts"][seeded.prompt]["aliases"] = src["prompts"][seeded.prompt]["aliases"]
    for view in (src, dst):  # what the peer's file keeps of each span: its name, parent and times
        for traces in view["traces"].values():
            for trace in (traces or {}).values():
                trace["spans"] = [span[:5] for span in trace["spans"]]
    assert differences(src, dst) == []


def _runs_data(view: dict[str, Any]) -> dict[str, Any]:
    """The runs' data without their times, which the peer's import-run does not set."""
    return {name: {run: {k: v for k, v in data.items() if not k.endswith("_time")}
                   for run, data in (snapshot or {"runs": {}})["runs"].items()}
            for name, snapshot in view["experiments"].items()}


def test_our_export_all_imported_by_peer(source: tuple[MlflowServer, SeededServer], destination: MlflowServer,
                                         tmp_path: Path) -> None:
    server, seeded = source
    out = tmp_path / "our-export"
    assert server_bulk.export_all(TrackingClient(server.uri), out).phase == "Succeeded"
    peer("import-all", destination.uri, "--input-dir", str(out))
    src, dst = server_view(server.uri), server_view(destination.uri)

    assert dst["runs"] == src["runs"]
    # The peer keeps the runs' data; a metric logged against a model from another run lands on the
    # model's run in its import (eval_acc of 'evaluate' on 'train').
    src_runs, dst_runs = _runs_data(src), _runs_data(dst)
    moved = dst_runs[seeded.agents]["train"]["metrics"].pop("eval_acc")
    assert [value for _, _, value in moved] == [0.875]
    assert differences(src_runs, dst_runs) == []
    model = dst["models"][seeded.model]
    assert (model["description"], model["tags"]) == (src["models"][seeded.model]["description"],
                                                     src["models"][seeded.model]["tags"])
    assert [(v["version"], v["template"], v["commit_message"]) for v in dst["prompts"][seeded.prompt]["versions"]] \
        == [(v["version"], v["template"], v["commit_message"]) for v in src["prompts"][seeded.prompt]["versions"]]
    carried = {m["name"]: {k: v for k, v in m.items() if k != "metrics"} for m in dst["logged_models"][seeded.agents]}
    with_runs = {m["name"]: {k: v for k, v in m.items() if k != "metrics"} for m in src["logged_models"][seeded.agents]
                 if m["source_run"]}
    assert carried == with_runs
    [src_dataset], [dst_dataset] = src["datasets"], dst["datasets"]
    assert dst_dataset["records"] == src_dataset["records"]
