"""Incremental syncs: after the first, only runs changed since the watermark, plus summaries and models."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow import MlflowClient

from devstack.kiroframe import KiroframeStandIn
from devstack.mlflow_server import MlflowServer
from ferry.kiroframe.sync import run_sync
from tests.kiroframe.seed import Seeded


def sent_runs(kiroframe: KiroframeStandIn, experiment_ids: set[str]) -> set[str]:
    return {r["line"]["run_id"] for r in kiroframe.records(2) if r["line"]["experiment_id"] in experiment_ids}


def test_second_sync_sends_new_and_running_runs_with_every_summary_and_the_models(
        kiroframe_src: MlflowServer, seeded: Seeded, kiroframe: KiroframeStandIn, settings_for) -> None:
    ours = set(seeded.experiments.values())
    first = run_sync(settings_for(incremental=True))
    assert first.phase == "Succeeded" and first.watermark is not None
    assert sent_runs(kiroframe, ours) == set(seeded.runs.values())  # no state yet: everything

    vision = next(i for n, i in seeded.experiments.items() if "vision" in n)
    client = MlflowClient(tracking_uri=kiroframe_src.uri)
    new = client.create_run(vision, run_name="after-first-sync")
    client.log_metric(new.info.run_id, "loss", 0.1, step=0)
    client.set_terminated(new.info.run_id)

    kiroframe.reset()
    second = run_sync(settings_for(incremental=True))
    assert second.phase == "Succeeded" and second.watermark > first.watermark
    assert sent_runs(kiroframe, ours) == {new.info.run_id, seeded.runs["live"]}
    summaries = {r["line"]["experiment_id"]: r["line"] for r in kiroframe.records(1)}
    assert ours <= summaries.keys()
    assert summaries[vision]["runs_total"] == 4  # the summary still counts every run
    assert summaries[vision]["status_counts"]["FINISHED"] == 3
    assert [m["name"] for m in kiroframe.records(3)[0]["line"]] == [
        m["name"] for m in json.loads((Path(second.path) / "models.json").read_text())]
    assert seeded.models[0] in [m["name"] for m in kiroframe.records(3)[0]["line"]]
    folder = Path(second.path)
    assert {json.loads(line)["run_id"] for line in (folder / "runs.json").open()} >= {new.info.run_id}
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["watermark"] == second.watermark
    state = json.loads((Path(settings_for().state_path)).read_text())
    assert state["watermark"] == second.watermark

    # The same watermark again sends the same runs: the receiver deduplicates, nothing is lost.
    kiroframe.reset()
    again = run_sync(settings_for(since=first.watermark))
    assert sent_runs(kiroframe, ours) == {new.info.run_id, seeded.runs["live"]}
    assert again.watermark >= second.watermark
