"""A full sync against a real MLflow server and the Kiroframe stand-in: files and payloads."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from mlflow import MlflowClient

from devstack.kiroframe import KiroframeStandIn
from devstack.mlflow_server import MlflowServer
from ferry.kiroframe.sync import run_sync
from ferry.progress import Progress
from tests.kiroframe.conftest import TOKEN
from tests.kiroframe.seed import Seeded


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def iso(ms: int | None) -> str | None:
    from ferry.kiroframe.records import ms_to_iso_utc

    return ms_to_iso_utc(ms)


def test_full_sync_writes_the_original_files_and_sends_every_record(
        kiroframe_src: MlflowServer, seeded: Seeded, kiroframe: KiroframeStandIn, settings_for) -> None:
    progress: list[Progress] = []
    outcome = run_sync(settings_for(), on_progress=progress.append)

    assert outcome.phase == "Succeeded", outcome
    folder = Path(outcome.path)
    assert sorted(p.name for p in folder.iterdir()) == sorted([
        "artifacts", "artifacts_manifest.json", "delivery.jsonl", "experiment_summary.json",
        "experiments_runs_datasets.json", "export.log", "models.json", "runs.csv", "runs.json",
        "runs_basic.csv", "summary.json"])
    client = MlflowClient(tracking_uri=kiroframe_src.uri, registry_uri=kiroframe_src.uri)
    ours = set(seeded.experiments.values())

    # runs.json: every field against what MLflow's own client reads, run by run.
    runs = {r["run_id"]: r for r in json_lines(folder / "runs.json") if r["experiment_id"] in ours}
    assert set(runs) == set(seeded.runs.values())
    for run_id, row in runs.items():
        run = client.get_run(run_id)
        exp = client.get_experiment(run.info.experiment_id)
        assert list(row) == ["experiment_name", "experiment_id", "run_id", "status", "lifecycle_stage",
                             "start_time", "end_time", "start_time_iso", "end_time_iso", "tags", "params",
                             "metrics_latest", "metrics_history", "datasets", "dataset_names"]
        assert (row["experiment_name"], row["status"], row["lifecycle_stage"]) == (
            exp.name, run.info.status, run.info.lifecycle_stage)
        assert (row["start_time"], row["end_time"]) == (run.info.start_time, run.info.end_time)
        assert (row["start_time_iso"], row["end_time_iso"]) == (iso(run.info.start_time), iso(run.info.end_time))
        assert row["start_time_iso"].endswith("Z")
        assert (row["tags"], row["params"], row["metrics_latest"]) == (
            run.data.tags, run.data.params, run.data.metrics)
        assert row["metrics_history"] == {
            key: [{"step": m.step, "ts": m.timestamp, "value": m.value}
                  for m in client.get_metric_history(run_id, key)]
            for key in run.data.metrics}
        inputs = run.inputs.dataset_inputs
        assert row["dataset_names"] == [d.dataset.name for d in inputs]
        assert row["datasets"] == [
            {"name": d.dataset.name, "digest": d.dataset.digest,
             "context": {t.key: t.value for t in d.tags}["mlflow.data.context"],
             "source_type": d.dataset.source_type, "source": d.dataset.source,
             "schema": d.dataset.schema, "profile": d.dataset.profile} for d in inputs]
    train = runs[seeded.runs["train"]]
    assert len(train["metrics_history"]["loss"]) == 4
    assert sorted(d["context"] for d in train["datasets"]) == ["eval", "output", "training"]

    # experiments_runs_datasets.json: one row per input, roles by context, one empty row otherwise.
    rows = [r for r in json_lines(folder / "experiments_runs_datasets.json") if r["experiment_id"] in ours]
    train_rows = {r["dataset_context"]: r for r in rows if r["run_id"] == seeded.runs["train"]}
    assert {c: r["dataset_role"] for c, r in train_rows.items()} == {
        "training": "used", "eval": "used", "output": "produced"}
    produced = train_rows["output"]
    assert produced["dataset_id"] == f"{produced['dataset_name']}:{produced['dataset_digest'][:8]}"
    assert produced["run_name"] == "train"
    assert json.loads(produced["dataset_profile"]) == {"num_rows": 2, "num_elements": 4}
    plain = [r for r in rows if r["run_id"] == seeded.runs["plain"]]
    assert len(plain) == 1 and plain[0]["dataset_name"] is None and "dataset_role" not in plain[0]
    assert len(rows) == 3 + 1 + 1 + 1

    # experiment_summary.json: counts, bounds and sorted key lists, dataset names filled.
    summaries = {s["experiment_id"]: s for s in json_lines(folder / "experiment_summary.json")}
    vision = summaries[seeded.experiments[next(n for n in seeded.experiments if "vision" in n)]]
    vision_runs = [client.get_run(seeded.runs[n]) for n in ("train", "plain", "broken")]
    assert vision["description"] == "image models" and vision["owner"] == "ana"
    assert vision["runs_total"] == 3
    assert vision["status_counts"] == {"FINISHED": 2, "FAILED": 1, "SCHEDULED": 0, "RUNNING": 0, "KILLED": 0}
    assert vision["first_run_start_time"] == min(r.info.start_time for r in vision_runs)
    assert vision["last_run_end_time"] == max(r.info.end_time for r in vision_runs)
    assert vision["last_run_end_time_iso"] == iso(vision["last_run_end_time"])
    assert vision["metrics"] == ["acc", "loss"]
    assert vision["params"] == ["epochs", "lr", "warmup"]
    assert vision["tag_keys"] == ["mlflow.runName", "stage", "team"]
    assert vision["dataset_names"] == sorted(d["name"] for d in train["datasets"])

    # runs.csv: the search_runs table; runs_basic.csv: the original's hand-made lines.
    with (folder / "runs.csv").open() as fh:
        table = {r["run_id"]: r for r in csv.DictReader(fh)}
    live = table[seeded.runs["live"]]
    assert live["status"] == "RUNNING" and live["end_time"] == ""
    assert live["metrics.loss"] == repr(client.get_run(seeded.runs["live"]).data.metrics["loss"])
    assert table[seeded.runs["plain"]]["params.warmup"] == "yes" and table[seeded.runs["train"]]["params.warmup"] == ""
    assert table[seeded.runs["train"]]["tags.mlflow.runName"] == "train"
    basic = (folder / "runs_basic.csv").read_text().splitlines()
    assert basic[0] == "experiment_id,experiment_name,run_id,run_name,status,start_time_iso,end_time_iso,dataset_names"
    live_run = client.get_run(seeded.runs["live"])
    assert (f'{live_run.info.experiment_id},"{live_run.info.experiment_id and client.get_experiment(live_run.info.experiment_id).name}",'
            f'{live_run.info.run_id},"live",RUNNING,{iso(live_run.info.start_time)},None,'
            f'"{live_run.inputs.dataset_inputs[0].dataset.name}"') in basic

    # models.json: all versions newest first, with tags and aliases.
    models = {m["name"]: m for m in json.loads((folder / "models.json").read_text())}
    model = models[seeded.models[0]]
    assert (model["description"], model["tags"]) == ("digit classifier", {"domain": "vision"})
    assert [v["version"] for v in model["latest_versions"]] == ["2", "1"]
    v1 = model["latest_versions"][1]
    assert (v1["run_id"], v1["aliases"], v1["tags"], v1["status"]) == (
        seeded.runs["train"], ["champion"], {"from": "train"}, "READY")

    # summary.json: the original's counts plus the watermark and what was posted.
    summary = json.loads((folder / "summary.json").read_text())
    all_runs = json_lines(folder / "runs.json")
    assert summary["runs"] == len(all_runs) and summary["experiments"] == len(summaries)
    assert summary["mlflow_version"] == "3.17.2"
    assert summary["watermark"] == outcome.watermark and summary["failed"] == []
    assert summary["posted"] == len(summaries) + len(all_runs) + 1

    # The stand-in got every record once, in the protocol's shape.
    source_id = hashlib.md5(kiroframe_src.uri.encode()).hexdigest()[:10]
    assert all(count == 1 for count in kiroframe.deliveries().values())
    sent_runs = {r["line"]["run_id"]: r for r in kiroframe.records(2)}
    assert sent_runs.keys() == {r["run_id"] for r in all_runs}
    body = sent_runs[seeded.runs["train"]]
    assert (body["import_source"], body["import_source_id"], body["owner_id"]) == ("mlflow", source_id, None)
    assert body["line"] == train
    by_id = {r["line"]["experiment_id"]: r["line"] for r in kiroframe.records(1)}
    assert by_id == summaries
    assert [r["line"] for r in kiroframe.records(3)] == [json.loads((folder / "models.json").read_text())]

    assert outcome.counts.runs == len(all_runs) and outcome.counts.versions >= 2
    assert progress[-1].done == progress[-1].total > 0 and progress[-1].failed == 0
    log = (folder / "export.log").read_text()
    assert "Watermark is now" in log and TOKEN not in log
