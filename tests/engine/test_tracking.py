"""The REST client against a real server: paging, exact bulk metric history, batching, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.procs import free_port
from ferry.errors import NotFoundError, ServerError, UsageError
from ferry.tracking import ArtifactStore, TrackingClient
from ferry.tracking.batching import batches
from ferry.tracking.settings import TrackingSettings


def test_batches_respect_every_limit() -> None:
    params = [{"key": f"p{i}", "value": "v"} for i in range(250)]
    tags = [{"key": f"t{i}", "value": "x" * 7000} for i in range(130)]
    metrics = [{"key": "m", "value": 1.0, "timestamp": i, "step": i} for i in range(2_500)]
    out = list(batches(metrics, params, tags))
    assert [m for b in out for m in b.metrics] == metrics
    assert [p for b in out for p in b.params] == params
    assert [t for b in out for t in b.tags] == tags
    for b in out:
        assert len(b.params) <= 100 and len(b.tags) <= 100 and len(b.metrics) <= 1000 and b.size <= 1000
        assert b.nbytes <= 900_000


def test_bulk_history_returns_every_point_past_the_server_cap(src_client: TrackingClient, unique: str) -> None:
    """Three runs x 9000 points overflow get-history-bulk's 25000-point answer; nothing is lost."""
    exp = src_client.get_or_create_experiment(f"bulk-{unique}")
    runs = []
    for r in range(3):
        run_id = src_client.create_run(exp["experiment_id"], start_time=0)["info"]["run_id"]
        src_client.log_batch(run_id, metrics=[{"key": "m", "value": r + i / 9000, "timestamp": 1000 + i, "step": i}
                                              for i in range(9_000)])
        runs.append(run_id)
    histories = src_client.get_metric_histories(runs, "m")
    for r, run_id in enumerate(runs):
        points = sorted((p["step"], p["timestamp"], p["value"]) for p in histories[run_id])
        assert points == [(i, 1000 + i, r + i / 9000) for i in range(9_000)]
    assert sorted(p["step"] for p in src_client.get_metric_history(runs[0], "m")) == list(range(9_000))
    assert src_client.bulk_history_served is True

    per_metric = TrackingClient(src_client.uri, TrackingSettings(metric_history="per-metric", history_workers=2))
    assert per_metric.get_metric_histories([*runs, "0" * 32], "m") == {**histories, "0" * 32: []}
    assert per_metric.bulk_history_served is False


def test_paged_search_runs_sees_every_run(src_client: TrackingClient, unique: str) -> None:
    exp = src_client.get_or_create_experiment(f"paging-{unique}")
    made = {src_client.create_run(exp["experiment_id"])["info"]["run_id"] for _ in range(7)}
    found = {r["info"]["run_id"] for r in src_client.search_runs([exp["experiment_id"]], page_size=3)}
    assert found == made


def test_artifacts_round_trip_through_the_server(src_client: TrackingClient, unique: str, tmp_path: Path) -> None:
    exp = src_client.get_or_create_experiment(f"art-{unique}")
    run = src_client.create_run(exp["experiment_id"])
    store = ArtifactStore(src_client, run["info"]["artifact_uri"])
    local = tmp_path / "in"
    (local / "a" / "b").mkdir(parents=True)
    (local / "a" / "b" / "x.bin").write_bytes(bytes(range(256)) * 10)
    (local / "top.txt").write_text("hi")
    assert store.upload_tree(local) == (2, 2562)
    assert sorted(f.path for f in store.walk()) == ["a/b/x.bin", "top.txt"]
    assert store.download_tree(tmp_path / "out") == (2, 2562)
    assert (tmp_path / "out" / "a" / "b" / "x.bin").read_bytes() == bytes(range(256)) * 10
    assert not list((tmp_path / "out").rglob("*.part"))


def test_errors_are_one_line_and_name_the_object(src_client: TrackingClient, no_retries: None) -> None:
    with pytest.raises(NotFoundError, match=r"run 'nope' not found in MLflow at http://127\.0\.0\.1:"):
        src_client.get_run("nope")
    with pytest.raises(NotFoundError, match="experiment 'no-such-exp' not found"):
        src_client.find_experiment("no-such-exp")
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerError, match=rf"cannot reach MLflow at {closed}: Connection refused$"):
        TrackingClient(closed).get_run("x")


@pytest.mark.parametrize(("name", "value", "words"), [
    ("FERRY_METRIC_HISTORY", "bulk", "FERRY_METRIC_HISTORY: Input should be 'auto' or 'per-metric' (got 'bulk')"),
    ("FERRY_HISTORY_WORKERS", "0", "FERRY_HISTORY_WORKERS: Input should be greater than or equal to 1 (got '0')"),
])
def test_a_mistyped_knob_is_one_line(monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(UsageError) as caught:
        TrackingClient("http://127.0.0.1:9")
    assert caught.value.message == words
