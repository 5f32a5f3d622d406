"""Experiments against the real mlflow-export-import 1.2.1, in both directions, compared run by run."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.mlflow_server import MlflowServer
from ferry.engine.experiments import export_experiment, import_experiment
from ferry.engine.runs import SOURCE_RUN_ID_TAG
from ferry.tracking import TrackingClient, tags_of
from tests.engine.peer_tools import peer
from tests.engine.seed import Seeded, run_view

pytestmark = pytest.mark.peer

# What the peer's import-experiment does not carry over (documented in its README): run times,
# and it adds its own tags. Everything else must be equal.
PEER_LOSES = ("start_time", "end_time")


def runs_by_name(client: TrackingClient, experiment_name: str) -> dict[str, str]:
    exp = client.get_experiment_by_name(experiment_name)
    assert exp is not None, experiment_name
    return {r["info"]["run_name"]: r["info"]["run_id"] for r in client.search_runs([exp["experiment_id"]])}


def test_peer_export_experiment_imported_by_us(seeded: Seeded, mlflow_src: MlflowServer, src_client: TrackingClient,
                                               dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    out = tmp_path / "peer-exp"
    peer("export-experiment", mlflow_src.uri, "--experiment", seeded.experiment_name, "--output-dir", str(out))
    name = f"from-peer-{unique}"
    result = import_experiment(dst_client, out, name)
    assert not result.failed

    imported = {tags_of(dst_client.get_run(r.dst_run_id)["data"])[SOURCE_RUN_ID_TAG]: r.dst_run_id
                for r in result.runs}
    assert sorted(imported) == sorted(seeded.active_runs)
    for src_id, dst_id in imported.items():
        assert run_view(dst_client, dst_id) == run_view(src_client, src_id), src_id
    child = dst_client.get_run(imported[seeded.child])
    assert tags_of(child["data"])["mlflow.parentRunId"] == imported[seeded.parent]


def test_our_export_experiment_imported_by_peer(seeded: Seeded, mlflow_dst: MlflowServer,
                                                src_client: TrackingClient, dst_client: TrackingClient,
                                                tmp_path: Path, unique: str) -> None:
    out = tmp_path / "our-exp"
    assert not export_experiment(src_client, seeded.experiment_name, out).failed
    name = f"peer-in-{unique}"
    peer("import-experiment", mlflow_dst.uri, "--experiment-name", name, "--input-dir", str(out))

    src_runs = runs_by_name(src_client, seeded.experiment_name)
    dst_runs = runs_by_name(dst_client, name)
    assert sorted(dst_runs) == sorted(src_runs)
    for run_name, dst_id in dst_runs.items():
        src, dst = run_view(src_client, src_runs[run_name]), run_view(dst_client, dst_id)
        peer_tags = {k for k in dst["tags"] if k.startswith("mlflow_exim") or k not in src["tags"]}
        dst["tags"] = {k: v for k, v in dst["tags"].items() if k not in peer_tags}
        for key in PEER_LOSES:
            src.pop(key), dst.pop(key)
        assert dst == src, run_name
