"""An export entry no importer reads is listed as not carried, never passed over in silence.

A real export of a real server gets what a newer exporter (or a person) could add: a directory of
an object kind this version does not know at the top level, and an unknown file inside an
experiment's directory. The import carries what it knows, lists the rest, and is PartiallyFailed:
through the Job's `service.import_objects` and through the commands (exit 3, a line on stderr).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from devstack.mlflow_server import MlflowServer
from ferry.engine.service import export_objects, import_objects
from ferry.options import ExportOptions, ImportOptions, ImportTarget, Renames, Selection
from ferry.tracking import TrackingClient

BIN = Path(sys.executable).parent
REASON = "not carried: unknown object kind, no importer reads it"


@pytest.fixture(scope="module")
def exported(mlflow_src: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    """(experiment name, source experiment id, export directory) of a two-run experiment."""
    name = f"unknown-kinds-{os.getpid()}"
    client = mlflow.MlflowClient(mlflow_src.uri)
    exp_id = client.create_experiment(name)
    for i in range(2):
        run = client.create_run(exp_id, run_name=f"run-{i}")
        client.log_param(run.info.run_id, "i", str(i))
        client.set_terminated(run.info.run_id)
    out = tmp_path_factory.mktemp("unknown") / "export"
    outcome = export_objects(mlflow_src.uri, out, Selection(experiments=[name]), ExportOptions())
    assert outcome.phase == "Succeeded", outcome.failed
    return name, exp_id, out


def _with_unknown_kinds(export: Path, exp_id: str, into: Path) -> Path:
    """A copy of `export` with a gateway_endpoints/ directory and an unknown file in the experiment's
    directory, plus names other exporters write (manifest.json) that must not be flagged."""
    shutil.copytree(export, into)
    (into / "gateway_endpoints").mkdir()
    (into / "gateway_endpoints" / "endpoints.json").write_text(json.dumps({"endpoints": [{"name": "chat"}]}))
    (into / exp_id / "judges.json").write_text("{}")
    (into / "manifest.json").write_text(json.dumps({"info": {"note": "written by export-all"}}))
    return into


def test_an_unmodified_export_has_nothing_not_carried(exported: tuple[str, str, Path], mlflow_dst: MlflowServer,
                                                      unique: str) -> None:
    name, _, out = exported
    outcome = import_objects(mlflow_dst.uri, out, ImportOptions(),
                             ImportTarget(renames=Renames(experiments={name: f"plain-{unique}"})))
    assert (outcome.phase, outcome.failed, outcome.counts.runs) == ("Succeeded", [], 2)


def test_service_lists_unknown_kinds_as_not_carried(exported: tuple[str, str, Path], mlflow_dst: MlflowServer,
                                                    dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    name, exp_id, out = exported
    copy = _with_unknown_kinds(out, exp_id, tmp_path / "copy")
    outcome = import_objects(mlflow_dst.uri, copy, ImportOptions(),
                             ImportTarget(renames=Renames(experiments={name: f"svc-{unique}"})))
    assert outcome.phase == "PartiallyFailed"
    assert outcome.failed == [f"{exp_id}/judges.json: {REASON}", f"gateway_endpoints/: {REASON}"]
    assert outcome.message.endswith(f"not carried (unknown object kind): {exp_id}/judges.json, gateway_endpoints/")
    assert outcome.counts.runs == 2  # what is known still travels
    exp = dst_client.get_experiment_by_name(f"svc-{unique}")
    assert exp is not None and len(list(dst_client.search_runs([exp["experiment_id"]]))) == 2

    again = import_objects(mlflow_dst.uri, copy, ImportOptions(),
                           ImportTarget(renames=Renames(experiments={name: f"svc-{unique}"})))
    assert (again.phase, again.failed) == ("PartiallyFailed", outcome.failed)  # a rerun says it again


def _cli(uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / args[0]), *args[1:], "--quiet"], env={**os.environ, "MLFLOW_TRACKING_URI": uri},
                          capture_output=True, text=True, timeout=300)


def test_commands_list_unknown_kinds_and_exit_3(exported: tuple[str, str, Path], mlflow_dst: MlflowServer,
                                                dst_client: TrackingClient, tmp_path: Path, unique: str) -> None:
    name, exp_id, out = exported
    copy = _with_unknown_kinds(out, exp_id, tmp_path / "copy")
    renames = tmp_path / "renames.txt"
    renames.write_text(f"{name},cli-{unique}\n")
    bulk = _cli(mlflow_dst.uri, "import-experiments", "--input-dir", str(copy), "--experiment-rename-file",
                str(renames))
    assert bulk.returncode == 3, bulk.stdout + bulk.stderr
    assert bulk.stderr.splitlines() == [f"Failed: {exp_id}/judges.json: {REASON}", f"Failed: gateway_endpoints/: {REASON}"]
    assert "not carried (unknown object kind)" in bulk.stdout
    exp = dst_client.get_experiment_by_name(f"cli-{unique}")
    assert exp is not None and len(list(dst_client.search_runs([exp["experiment_id"]]))) == 2

    one = _cli(mlflow_dst.uri, "import-experiment", "--input-dir", str(copy / exp_id), "--experiment-name",
               f"one-{unique}")
    assert one.returncode == 3, one.stdout + one.stderr
    assert one.stderr.splitlines() == [f"Failed: judges.json: {REASON}"]
