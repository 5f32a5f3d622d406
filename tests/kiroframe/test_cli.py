"""The `kiroframe-importer` command: parameters, exit codes, and a token that is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.kiroframe import KiroframeStandIn
from devstack.mlflow_server import MlflowServer
from ferry.cli.kiroframe import build_settings
from ferry.errors import UsageError
from tests.kiroframe.conftest import TOKEN
from tests.kiroframe.seed import Seeded

COMMAND = str(Path(sys.executable).parent / "kiroframe-importer")
OUR_ENV = ("IMPORT_TYPE", "TRACKING_URI", "KIROFRAME_URL", "PROFILING_TOKEN", "EXPORT_BASE_DIR",
           "INCLUDE_SCHEMA_PROFILE", "EXPORT_MODELS", "DOWNLOAD_ARTIFACTS", "EXP_PAGE_SIZE", "RUN_PAGE_SIZE",
           "INCREMENTAL", "SINCE", "STATE_FILE", "WORKERS")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OUR_ENV}
    return {**env, "HOME": str(home), **extra}


def kiroframe_importer(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMMAND, *args], env=env, capture_output=True, text=True, timeout=120)


def test_missing_parameters_name_each_flag_and_variable_and_exit_2(tmp_path: Path) -> None:
    result = kiroframe_importer(env=clean_env(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ERROR: missing required parameter(s): --tracking-url or env TRACKING_URI, "
        "--kiroframe-url or env KIROFRAME_URL, --profiling-token or env PROFILING_TOKEN")
    assert "Traceback" not in result.stderr

    one_missing = kiroframe_importer("--tracking-url", "http://127.0.0.1:1",
                                     env=clean_env(tmp_path, KIROFRAME_URL="http://127.0.0.1:2"))
    assert one_missing.returncode == 2
    assert one_missing.stderr.strip() == "ERROR: missing required parameter(s): --profiling-token or env PROFILING_TOKEN"
    assert not (tmp_path / "mlflow_export").exists()


def test_flags_win_over_environment_and_bad_values_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKING_URI", "http://from-env:5000")
    monkeypatch.setenv("EXPORT_MODELS", "no")
    monkeypatch.setenv("INCLUDE_SCHEMA_PROFILE", "")  # empty means unset, as in the original
    monkeypatch.setenv("RUN_PAGE_SIZE", "50")
    settings = build_settings({"tracking_url": "http://from-flag:5000", "since": "2024-01-02T03:04:05Z"})
    assert settings.tracking_url == "http://from-flag:5000"
    assert (settings.export_models, settings.include_schema_profile, settings.run_page_size) == (False, True, 50)
    assert settings.since == 1704164645000
    assert build_settings({"export_models": True}).export_models is True
    assert str(settings.base_dir) == "~/mlflow_export"
    with pytest.raises(UsageError, match="only 'mlflow'"):
        build_settings({"import_type": "wandb"})
    with pytest.raises(UsageError, match="neither milliseconds"):
        build_settings({"since": "last tuesday"})
    monkeypatch.setenv("EXP_PAGE_SIZE", "0")
    with pytest.raises(UsageError, match="EXP_PAGE_SIZE"):
        build_settings({})


def test_refused_token_fails_in_seconds_before_anything_is_exported(
        kiroframe_src: MlflowServer, seeded: Seeded, kiroframe: KiroframeStandIn, tmp_path: Path) -> None:
    wrong = "wrong-token-81f3c0"
    began = time.monotonic()
    result = kiroframe_importer("--tracking-url", kiroframe_src.uri, "--kiroframe-url", kiroframe.url,
                                "--base-dir", str(tmp_path / "out"), "--incremental",
                                env=clean_env(tmp_path, PROFILING_TOKEN=wrong))
    took = time.monotonic() - began
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: Kiroframe at {kiroframe.url} refused the profiling token (HTTP 401); nothing was exported")
    assert kiroframe.records() == [] and kiroframe.request_count == 1  # the one check, no retries
    assert not [p for p in (tmp_path / "out").iterdir() if p.is_dir()]  # no export folder, not even hidden
    assert not (tmp_path / "out" / ".kiroframe-state.json").exists()
    for text in (result.stdout, result.stderr):
        assert wrong not in text and TOKEN not in text
    print(f"faults: wrong token; failed in {took:.1f} s after {kiroframe.request_count} request; "
          "records lost 0, duplicated 0")

    # With the right token the sync exports and pushes, and only then the watermark is saved.
    again = kiroframe_importer("--tracking-url", kiroframe_src.uri, "--kiroframe-url", kiroframe.url,
                               "--base-dir", str(tmp_path / "out"), "--incremental",
                               env=clean_env(tmp_path, PROFILING_TOKEN=TOKEN))
    assert again.returncode == 0, again.stderr
    (folder,) = [p for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")]
    state = json.loads((tmp_path / "out" / ".kiroframe-state.json").read_text())
    assert state["watermark"] == json.loads((folder / "summary.json").read_text())["watermark"]
    assert len(kiroframe.records(2)) == len((folder / "runs.json").read_text().splitlines())
    assert set(kiroframe.deliveries().values()) == {1}
