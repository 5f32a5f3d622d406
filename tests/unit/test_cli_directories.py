"""A directory flag takes a directory or s3://: another URL is refused in one line, never written as a local folder."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import click
import pytest

from ferry.cli.options import ExportDirectory

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def _command(target: str) -> click.Command:
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


# No directory flags: a group, the peer's command (--base-dir), and the copies from server to server.
PLAIN = {"ferry", "kiroframe-importer", "copy-run", "copy-model-version"}
COMMANDS = sorted(set(SCRIPTS) - PLAIN)


def test_the_commands_without_directory_flags_are_the_known_ones() -> None:
    without = {script for script in SCRIPTS
               if not any(p.name in ("output_dir", "input_dir") for p in getattr(_command(SCRIPTS[script]), "params", []))}
    assert without == PLAIN


@pytest.mark.parametrize("script", COMMANDS)
def test_every_directory_flag_takes_a_directory_or_s3(script: str) -> None:
    command = _command(SCRIPTS[script])
    flags = [param for param in command.params if param.name in ("output_dir", "input_dir")]
    assert flags, f"{script} has no --output-dir or --input-dir"
    for param in flags:
        assert isinstance(param.type, ExportDirectory), f"{script} {param.opts[0]} takes any string"
    assert "--s3-endpoint-url" in {opt for p in command.params for opt in p.opts}, script


def test_a_gs_output_dir_is_an_error_and_no_look_alike_folder(tmp_path: Path) -> None:
    tool = Path(sys.executable).with_name("export-experiment")
    done = subprocess.run([str(tool), "--experiment", "x", "--output-dir", "gs://backups/exp1"], cwd=tmp_path,
                          env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "gs://backups/exp1" in lines[0] and "not supported" in lines[0]
    assert list(tmp_path.iterdir()) == []
