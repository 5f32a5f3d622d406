"""Kiroframe misbehaving: bursts of 503/429/dropped connections, a refused record, a killed push."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from devstack.kiroframe import DROP_CONNECTION, KiroframeStandIn
from devstack.mlflow_server import MlflowServer
from ferry.kiroframe.sync import run_sync
from tests.kiroframe.conftest import TOKEN
from tests.kiroframe.seed import Seeded
from tests.kiroframe.test_cli import COMMAND, clean_env


def expected_keys(folder: Path) -> set[tuple[int, str]]:
    summaries = [json.loads(line)["experiment_id"] for line in (folder / "experiment_summary.json").open()]
    runs = [json.loads(line)["run_id"] for line in (folder / "runs.json").open()]
    return {(1, e) for e in summaries} | {(2, r) for r in runs} | {(3, "models")}


def test_bursts_of_errors_are_retried_and_every_record_arrives_once(
        seeded: Seeded, kiroframe: KiroframeStandIn, settings_for) -> None:
    kiroframe.fail_next(3, 503)  # the token check gets the first, and the sync goes on to export
    kiroframe.fail_next(2, 429, retry_after=0.3)
    kiroframe.fail_next(2, DROP_CONNECTION)
    kiroframe.fail_next(1, 502)
    outcome = run_sync(settings_for(workers=3))

    assert outcome.phase == "Succeeded", outcome.message
    deliveries = kiroframe.deliveries()
    assert {(kind, key) for _, kind, key in deliveries} == expected_keys(Path(outcome.path))
    assert set(deliveries.values()) == {1}
    assert kiroframe.request_count == len(deliveries) + 8


def test_a_refused_record_is_listed_and_the_rest_still_arrive(
        seeded: Seeded, kiroframe: KiroframeStandIn, settings_for) -> None:
    kiroframe.fail_next(2, 400)  # the first 400 answers the token check (as its empty body would)
    outcome = run_sync(settings_for(workers=1))

    assert outcome.phase == "PartiallyFailed"
    (failure,) = outcome.failed
    assert failure.startswith("experiment summary ") and "HTTP 400" in failure
    folder = Path(outcome.path)
    assert len(kiroframe.deliveries()) == len(expected_keys(folder)) - 1
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["failed"] == [failure] and summary["watermark"] == outcome.watermark is not None


def test_killed_in_the_middle_of_a_push_the_rerun_sends_only_the_rest(
        kiroframe_src: MlflowServer, seeded: Seeded, kiroframe: KiroframeStandIn, tmp_path: Path) -> None:
    base = tmp_path / "out"
    args = [COMMAND, "--tracking-url", kiroframe_src.uri, "--kiroframe-url", kiroframe.url, "--base-dir", str(base),
            "--workers", "3", "--incremental"]
    env = clean_env(tmp_path, PROFILING_TOKEN=TOKEN, KIROFRAME_BACKOFF_SECONDS="0.05")
    hold = len(seeded.experiments) + 2  # past the summaries, into the runs
    kiroframe.hold_after(hold)
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        journal = None
        while time.monotonic() < deadline:
            found = list(base.glob("[0-9]*/delivery.jsonl"))
            if found and len(found[0].read_text().splitlines()) >= hold:
                journal = found[0]
                break
            time.sleep(0.05)
        assert journal is not None, "the push never reached the hold"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kiroframe.release()
    folder = journal.parent
    assert sum(kiroframe.deliveries().values()) == hold
    assert (folder / ".push-pending").exists() and not (base / ".kiroframe-state.json").exists()

    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "Finishing the interrupted push" in rerun.stdout
    deliveries = kiroframe.deliveries()
    assert {(kind, key) for _, kind, key in deliveries} == expected_keys(folder)
    assert set(deliveries.values()) == {1}, "a record was sent twice"
    assert not (folder / ".push-pending").exists()
    assert sorted(p.name for p in base.iterdir() if not p.name.startswith(".")) == [folder.name]
    state = json.loads((base / ".kiroframe-state.json").read_text())
    assert state["watermark"] == json.loads((folder / "summary.json").read_text())["watermark"]


def test_kiroframe_down_past_the_retry_budget_fails_and_keeps_the_old_watermark(
        seeded: Seeded, kiroframe: KiroframeStandIn, settings_for) -> None:
    kiroframe.fail_next(10_000, 503)
    outcome = run_sync(settings_for(retry_seconds=0.5, incremental=True))

    assert outcome.phase == "Failed" and outcome.watermark is None
    assert "still failing after 0.5 s: HTTP 503" in outcome.message
    assert kiroframe.records() == []
    folder = Path(outcome.path)
    assert (folder / ".push-pending").exists()
    assert not settings_for().state_path.exists()
