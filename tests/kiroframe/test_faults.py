"""Faults around a sync: a wrong token, two syncs of one directory, a killed export, a long outage.

Each test prints one line: the faults it injected and the records lost and duplicated (both 0).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from devstack.kiroframe import DROP_CONNECTION, KiroframeStandIn
from devstack.mlflow_server import MlflowServer
from ferry.kiroframe.folder import ExportFolder
from ferry.kiroframe.journal import JOURNAL, PENDING
from ferry.kiroframe.lock import LOCK_FILE, SyncLock, SyncLocked
from ferry.kiroframe.sync import run_sync
from ferry.outcome import Outcome
from tests.kiroframe.conftest import TOKEN
from tests.kiroframe.seed import Seeded
from tests.kiroframe.test_cli import COMMAND, clean_env
from tests.kiroframe.test_resilience import expected_keys


def lost_and_duplicated(kiroframe: KiroframeStandIn, folder: Path) -> tuple[int, int]:
    deliveries = kiroframe.deliveries()
    delivered = {(kind, key) for _, kind, key in deliveries}
    return len(expected_keys(folder) - delivered), sum(count - 1 for count in deliveries.values())


def journal_keys(folder: Path) -> set[str]:
    return {json.loads(line)["key"] for line in (folder / JOURNAL).read_text().splitlines() if line}


def exports(base: Path) -> list[Path]:
    return sorted(p for p in base.iterdir() if not p.name.startswith("."))


# -- 1. a wrong token ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_fails_at_the_first_request_and_exports_nothing(
        seeded: Seeded, kiroframe: KiroframeStandIn, settings_for, status: int) -> None:
    settings = settings_for(profiling_token="wrong-token" if status == 401 else TOKEN, incremental=True)
    if status == 403:
        kiroframe.fail_next(1, 403)
    outcome = run_sync(settings)

    assert outcome.phase == "Failed" and outcome.path is None and outcome.watermark is None
    assert outcome.message == (
        f"Kiroframe at {kiroframe.url} refused the profiling token (HTTP {status}); nothing was exported")
    assert kiroframe.request_count == 1 and kiroframe.records() == []  # not retried: failed at once
    assert [p.name for p in settings.export_root.iterdir()] == [LOCK_FILE]
    print(f"faults: token refused with HTTP {status}; failed after {kiroframe.request_count} request; "
          "records lost 0, duplicated 0")


def test_a_url_without_the_import_api_fails_before_the_export(
        seeded: Seeded, kiroframe: KiroframeStandIn, settings_for) -> None:
    settings = settings_for(kiroframe_url=kiroframe.url + "/not-kiroframe")
    outcome = run_sync(settings)

    assert outcome.phase == "Failed" and outcome.path is None
    assert outcome.message.startswith(f"Kiroframe at {kiroframe.url}/not-kiroframe has no import API (HTTP 404")
    assert outcome.message.endswith("check the Kiroframe URL; nothing was exported")
    assert exports(settings.export_root) == []
    print("faults: Kiroframe URL answering 404; records lost 0, duplicated 0 (none exported)")


def test_a_refused_token_leaves_an_interrupted_push_for_the_next_sync(
        seeded: Seeded, kiroframe: KiroframeStandIn, settings_for) -> None:
    kiroframe.fail_for(60, 503, after=2)
    first = run_sync(settings_for(retry_seconds=0.3, incremental=True))
    assert first.phase == "Failed"
    folder = Path(first.path)
    kiroframe.end_outage()

    refused = run_sync(settings_for(profiling_token="wrong-token", incremental=True))
    assert refused.phase == "Failed" and "refused the profiling token" in refused.message
    assert (folder / PENDING).exists() and journal_keys(folder) == {f"{k}:{i}" for _, k, i in kiroframe.deliveries()}

    again = run_sync(settings_for(incremental=True))
    assert again.phase == "Succeeded" and again.path == str(folder), again.message
    lost, duplicated = lost_and_duplicated(kiroframe, folder)
    assert (lost, duplicated) == (0, 0)
    print(f"faults: 503 outage after 2 records, then a wrong token on the resume; records lost {lost}, "
          f"duplicated {duplicated}")


# -- 2. two syncs of one base directory ---------------------------------------------------------


def test_a_second_sync_cannot_resume_the_push_the_first_is_doing(
        seeded: Seeded, kiroframe: KiroframeStandIn, settings_for) -> None:
    settings = settings_for(workers=2, incremental=True)
    hold = len(seeded.experiments) + 1
    kiroframe.hold_after(hold)
    results: list[Outcome] = []
    first = threading.Thread(target=lambda: results.append(run_sync(settings)))
    first.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(kiroframe.deliveries().values()) < hold:
            time.sleep(0.02)
        assert sum(kiroframe.deliveries().values()) == hold, "the first push never reached the hold"
        (folder,) = exports(settings.export_root)
        assert (folder / PENDING).exists()  # an unfinished push the second sync would resume
        requests_before = kiroframe.request_count

        began = time.monotonic()
        second = run_sync(settings_for(workers=2, incremental=True, lock_wait_seconds=0.5))
        waited = time.monotonic() - began
        requests_during = kiroframe.request_count - requests_before
    finally:
        kiroframe.release()  # held requests are dropped unanswered; the first push retries them
        first.join(60)

    assert second.phase == "Failed" and second.path is None
    assert second.message.startswith(f"another sync is using {settings.export_root} (pid {os.getpid()} on ")
    assert second.message.endswith("gave up after waiting 0.5 s") and 0.5 <= waited < 3
    assert requests_during <= 2  # the second sync sent nothing, not even its token check
    (outcome,) = results
    assert outcome.phase == "Succeeded", outcome.message
    lost, duplicated = lost_and_duplicated(kiroframe, folder)
    assert (lost, duplicated) == (0, 0) and exports(settings.export_root) == [folder]
    print(f"faults: a second sync started while the first push was held after {hold} records, "
          f"dropped connections on release; records lost {lost}, duplicated {duplicated}")


HOLDER = """
import sys, time
from pathlib import Path
from ferry.kiroframe.lock import SyncLock
with SyncLock(Path(sys.argv[1]), 0):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_the_lock_names_another_process_and_is_free_once_it_exits(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "1.5"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(SyncLocked) as refused:
            SyncLock(tmp_path, 0.3).acquire()
        assert refused.value.message.startswith(f"another sync is using {tmp_path} (pid {holder.pid} on ")

        began = time.monotonic()
        with SyncLock(tmp_path, 30):  # waits for the holder to finish, then has it
            waited = time.monotonic() - began
            assert 0.5 < waited < 10 and holder.wait(10) == 0  # it let go when its sleep ended
            assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    finally:
        holder.kill()
        holder.wait()

    killed = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "600"], stdout=subprocess.PIPE,
                              text=True)
    assert killed.stdout is not None and killed.stdout.readline().strip() == "locked"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    with SyncLock(tmp_path, 0):  # the kernel dropped the dead holder's lock: no stale lock file
        pass
    print("faults: lock held by another process, then that process killed; records lost 0, duplicated 0")


# -- 3. crash leftovers -------------------------------------------------------------------------


def test_the_partial_folder_of_a_killed_export_is_removed_by_the_next_sync(
        kiroframe_src: MlflowServer, seeded: Seeded, kiroframe: KiroframeStandIn, tmp_path: Path,
        unanswering: str, settings_for) -> None:
    base = tmp_path / "exports"
    args = [COMMAND, "--tracking-url", unanswering, "--kiroframe-url", kiroframe.url, "--base-dir", str(base)]
    proc = subprocess.Popen(args, env=clean_env(tmp_path, PROFILING_TOKEN=TOKEN), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(base.glob(".*.partial")):
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)  # killed mid-export: the folder is still being written
        proc.wait()
    (leftover,) = base.glob(".*.partial")
    assert (leftover / "runs.json").exists()
    # Things that look alike but are not ours stay: other names, deeper folders, another base.
    finished = ExportFolder(base)
    finished.finish(models=None, manifest=[], summary={})
    theirs = [base / ".notes.partial", base / "keep.partial", finished.final_path / ".20240101_0000_000000.partial",
              tmp_path / "elsewhere" / ".20240101_0000_000000.partial"]
    for path in theirs:
        path.mkdir(parents=True)

    outcome = run_sync(settings_for())
    assert outcome.phase == "Succeeded", outcome.message
    assert not leftover.exists() and all(path.exists() for path in theirs)
    assert list(base.glob(".*.partial")) == [base / ".notes.partial"]
    lost, duplicated = lost_and_duplicated(kiroframe, Path(outcome.path))
    assert (lost, duplicated) == (0, 0)
    print(f"faults: export killed with SIGKILL mid-way (left {leftover.name}); records lost {lost}, "
          f"duplicated {duplicated}")


def test_a_sync_waiting_for_the_lock_does_not_touch_the_holders_partial_folder(
        kiroframe: KiroframeStandIn, settings_for) -> None:
    settings = settings_for(lock_wait_seconds=0.2)
    settings.export_root.mkdir(parents=True)
    with SyncLock(settings.export_root, 0):
        being_written = ExportFolder(settings.export_root)
        outcome = run_sync(settings)
        assert outcome.phase == "Failed" and "another sync is using" in outcome.message
        assert being_written.path.is_dir() and kiroframe.request_count == 0
        being_written.abandon()
    print("faults: a sync started during another's export; records lost 0, duplicated 0 (none sent)")


# -- 4. Kiroframe down for longer than the retry window -----------------------------------------


OUTAGES = {"503": (503, None), "429 Retry-After 0.1 s": (429, 0.1), "dropped connections": (DROP_CONNECTION, None)}
OUTAGE_SECONDS, RETRY_SECONDS = 60.0, 0.5  # the outage lasts until the test ends it


@pytest.mark.parametrize("fault", list(OUTAGES))
def test_an_outage_longer_than_the_retry_window_keeps_the_rest_for_the_next_sync(
        seeded: Seeded, kiroframe: KiroframeStandIn, settings_for, fault: str) -> None:
    status, retry_after = OUTAGES[fault]
    after = len(seeded.experiments) + 1
    kiroframe.fail_for(OUTAGE_SECONDS, status, retry_after, after=after)
    settings = settings_for(retry_seconds=RETRY_SECONDS, backoff_seconds=0.05, backoff_max_seconds=0.2,
                            incremental=True)
    first = run_sync(settings)

    assert first.phase == "Failed" and first.watermark is None
    assert f"still failing after {RETRY_SECONDS:g} s" in first.message
    folder = Path(first.path)
    acknowledged = journal_keys(folder)
    assert len(acknowledged) >= after
    assert acknowledged == {f"{kind}:{key}" for _, kind, key in kiroframe.deliveries()}
    assert len(acknowledged) < len(expected_keys(folder))  # the rest is kept for the next sync
    assert (folder / PENDING).exists() and not settings.state_path.exists()

    kiroframe.end_outage()
    second = run_sync(settings)
    assert second.phase == "Succeeded" and second.path == str(folder), second.message
    assert second.message.startswith("finished an interrupted push")
    lost, duplicated = lost_and_duplicated(kiroframe, folder)
    assert (lost, duplicated) == (0, 0)
    assert json.loads(settings.state_path.read_text())["watermark"] == second.watermark
    print(f"faults: {fault} on every request after {after} records, past the first sync "
          f"(retry window {RETRY_SECONDS:g} s), {len(acknowledged)} acknowledged before; "
          f"records lost {lost}, duplicated {duplicated}")


def test_kiroframe_unreachable_for_a_whole_sync_then_back(
        seeded: Seeded, kiroframe: KiroframeStandIn, settings_for) -> None:
    settings = settings_for(retry_seconds=RETRY_SECONDS, backoff_seconds=0.05, backoff_max_seconds=0.2)
    kiroframe.stop()  # connection refused, the token check included
    first = run_sync(settings)
    assert first.phase == "Failed" and "connection failed" in first.message
    folder = Path(first.path)
    assert (folder / JOURNAL).read_text() == "" and (folder / PENDING).exists()

    kiroframe.start()
    second = run_sync(settings)
    assert second.phase == "Succeeded" and second.path == str(folder), second.message
    lost, duplicated = lost_and_duplicated(kiroframe, folder)
    assert (lost, duplicated) == (0, 0)
    print(f"faults: Kiroframe unreachable (connection refused) for a whole sync, retry window "
          f"{RETRY_SECONDS:g} s; records lost {lost}, duplicated {duplicated}")
