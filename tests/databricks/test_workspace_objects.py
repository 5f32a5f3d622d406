"""Notebooks and permissions of a Databricks workspace through our commands, in mlflow-export-import's layout.

Against the workspace stand-in (`devstack.databricks`): notebooks are seeded through databricks-sdk's
Workspace API, runs naming them through MLflow's REST API of the server behind the workspace, and
grants through the Permissions API. The commands run in-process (click's runner) with
``MLFLOW_TRACKING_URI=databricks`` and the stand-in's token and CA in the environment. Export and
import use the one workspace: the import goes into another experiment, model and folder.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.ml import (
    ExperimentAccessControlRequest,
    ExperimentPermissionLevel,
    RegisteredModelAccessControlRequest,
    RegisteredModelPermissionLevel,
)
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language

from devstack.databricks import DatabricksWorkspace
from devstack.mlflow_server import MlflowServer
from ferry.cli.experiments import export_experiment, import_experiment
from ferry.cli.models import export_model, import_model
from ferry.cli.runs import export_run, import_run
from ferry.tracking import TrackingClient, tags_of
from ferry.tracking.registry import Registry

pytestmark = pytest.mark.usefixtures("dbx_env_pat")

PATH_TAG = "mlflow.databricks.notebookPath"
REVISION_TAG = "mlflow.databricks.notebookRevisionID"
FORMATS = ("SOURCE", "HTML", "JUPYTER", "DBC")
PYTHON_SOURCE = "# Databricks notebook source\nimport mlflow\n\n# COMMAND ----------\n\nmlflow.log_param('a', 1)\n"
SQL_SOURCE = "-- Databricks notebook source\nSELECT 1\n"


def ferry(command: click.Command, *args: str, uri: str = "databricks") -> Result:
    return CliRunner().invoke(command, list(args), env={"MLFLOW_TRACKING_URI": uri, "FERRY_HTTP_MAX_ATTEMPTS": "1"},
                              catch_exceptions=False)


def warnings(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Warning:")]


def exported(w: WorkspaceClient, path: str, fmt: str) -> bytes:
    return base64.b64decode(w.workspace.export(path, format=ExportFormat(fmt)).content or "")


def direct_grants(permissions: Any) -> dict[tuple[str, str], str]:
    """(principal kind, name) -> level of the grants made on the object itself."""
    acl = permissions["access_control_list"] if isinstance(permissions, dict) else \
        permissions.as_dict()["access_control_list"]
    return {(kind, entry[kind]): p["permission_level"] for entry in acl for p in entry["all_permissions"]
            for kind in ("user_name", "group_name", "service_principal_name") if kind in entry
            and not p.get("inherited")}


@dataclass
class Seeded:
    experiment: str
    experiment_id: str
    folder: str
    python_run: str
    sql_run: str
    plain_run: str


@pytest.fixture
def w() -> WorkspaceClient:
    return WorkspaceClient()


@pytest.fixture
def seeded(w: WorkspaceClient, dbx_backend: MlflowServer, dbx_workspace: DatabricksWorkspace,
           unique: str) -> Seeded:
    """An experiment of three runs: one from a Python notebook, one from a SQL notebook, one from no notebook."""
    folder = f"/Users/{dbx_workspace.user_name}/notebooks-{unique}"
    w.workspace.mkdirs(folder)
    for name, text, language in (("train", PYTHON_SOURCE, Language.PYTHON), ("report", SQL_SOURCE, Language.SQL)):
        w.workspace.import_(f"{folder}/{name}", content=base64.b64encode(text.encode()).decode(),
                            format=ImportFormat.SOURCE, language=language)
    backend = TrackingClient(dbx_backend.uri)
    name = f"/Users/{dbx_workspace.user_name}/objects-{unique}"
    exp_id = backend.create_experiment(name)

    def run(tags: dict[str, str]) -> str:
        run_id = str(backend.create_run(exp_id, tags=tags)["info"]["run_id"])
        backend.update_run(run_id, status="FINISHED", end_time=1)
        return run_id

    return Seeded(name, exp_id, folder,
                  python_run=run({PATH_TAG: f"{folder}/train", REVISION_TAG: "1700000000001"}),
                  sql_run=run({PATH_TAG: f"{folder}/report", REVISION_TAG: "1700000000002"}),
                  plain_run=run({}))


def test_notebooks_go_out_byte_for_byte_and_into_the_destination_folder(w: WorkspaceClient, seeded: Seeded,
                                                                       tmp_path: Path, unique: str) -> None:
    out = tmp_path / "exp"
    done = ferry(export_experiment, "--experiment", seeded.experiment, "--output-dir", str(out),
                 "--notebook-formats", "source,HTML,JUPYTER,DBC")
    assert done.exit_code == 0, done.output
    assert warnings(done) == []
    assert f"1 runs without a notebook ({PATH_TAG} unset): {seeded.plain_run}" in done.stdout

    notebooks = out / "runs" / seeded.python_run / "artifacts" / "notebooks"
    assert sorted(p.name for p in notebooks.iterdir()) == sorted(
        ["manifest.json", "train.source", "train.html", "train.jupyter", "train.dbc"])
    for fmt in FORMATS:
        assert (notebooks / f"train.{fmt.lower()}").read_bytes() == exported(w, f"{seeded.folder}/train", fmt), fmt
    assert json.loads((notebooks / "manifest.json").read_text()) == {
        PATH_TAG: f"{seeded.folder}/train", REVISION_TAG: "1700000000001", "formats": list(FORMATS)}
    assert (out / "runs" / seeded.sql_run / "artifacts" / "notebooks" / "report.source").read_bytes() == \
        SQL_SOURCE.encode()
    assert not (out / "runs" / seeded.plain_run / "artifacts").exists()

    folder = f"/Shared/imported-{unique}"
    name = f"/Users/ferry/imported-{unique}"
    for _ in range(2):  # a rerun finds the runs imported and imports the notebooks again, overwriting
        done = ferry(import_experiment, "--experiment-name", name, "--input-dir", str(out),
                     "--dst-notebook-dir", folder)
        assert done.exit_code == 0, done.output
        assert warnings(done) == []
    assert exported(w, f"{folder}/train", "SOURCE") == (notebooks / "train.source").read_bytes()
    assert exported(w, f"{folder}/report", "SOURCE") == SQL_SOURCE.encode()
    assert w.workspace.get_status(f"{folder}/report").language == Language.SQL
    assert sorted(o.path for o in w.workspace.list(folder)) == [f"{folder}/report", f"{folder}/train"]
    client = TrackingClient("databricks")
    dst = client.get_experiment_by_name(name)
    assert dst is not None
    tags = {tags_of(r["data"]).get("ferry.source.run_id"): tags_of(r["data"])
            for r in client.search_runs([dst["experiment_id"]])}
    assert tags[seeded.python_run][PATH_TAG] == f"{seeded.folder}/train"  # the source's, as the peer keeps it

    one = tmp_path / "run"
    done = ferry(export_run, "--run-id", seeded.python_run, "--output-dir", str(one), "--notebook-formats", "DBC")
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in (one / "artifacts" / "notebooks").iterdir()) == ["manifest.json", "train.dbc"]
    done = ferry(import_run, "--input-dir", str(one), "--experiment-name", name, "--dst-notebook-dir", folder)
    assert done.exit_code == 0, done.output  # no SOURCE in this export: said once, not a failure
    assert warnings(done) == ["Warning: --dst-notebook-dir: the export holds no Databricks SOURCE notebooks (it was "
                              "not made from a Databricks workspace with --notebook-formats SOURCE); nothing to import"]


def test_permissions_land_entry_by_entry_and_a_refused_entry_fails_alone(
        w: WorkspaceClient, seeded: Seeded, dbx_backend: MlflowServer, tmp_path: Path, unique: str) -> None:
    w.experiments.update_permissions(seeded.experiment_id, access_control_list=[
        ExperimentAccessControlRequest(user_name="reader@example.com", permission_level=ExperimentPermissionLevel.CAN_READ),
        ExperimentAccessControlRequest(group_name="data", permission_level=ExperimentPermissionLevel.CAN_EDIT)])
    model = f"model-{unique}"
    Registry(TrackingClient(dbx_backend.uri)).create_model(model)
    model_id = w.model_registry.get_model(model).registered_model_databricks.id
    w.model_registry.update_permissions(model_id, access_control_list=[RegisteredModelAccessControlRequest(
        user_name="reader@example.com", permission_level=RegisteredModelPermissionLevel.CAN_MANAGE_STAGING_VERSIONS)])

    out = tmp_path / "exp"
    done = ferry(export_experiment, "--experiment", seeded.experiment, "--output-dir", str(out),
                 "--export-permissions", "True")
    assert done.exit_code == 0, done.output
    doc = json.loads((out / "experiment.json").read_text())
    assert doc["mlflow"]["permissions"] == {
        **w.experiments.get_permission_levels(seeded.experiment_id).as_dict(),
        "permissions": w.experiments.get_permissions(seeded.experiment_id).as_dict()}
    models = tmp_path / "model"
    done = ferry(export_model, "--model", model, "--output-dir", str(models), "--export-permissions", "True")
    assert done.exit_code == 0, done.output
    registered = json.loads((models / "model.json").read_text())["mlflow"]["registered_model"]
    assert list(registered)[-1] == "permissions"
    assert registered["permissions"]["permissions"] == w.model_registry.get_permissions(model_id).as_dict()

    # One more grant, which the destination refuses: a workspace refuses a user it does not have.
    doc["mlflow"]["permissions"]["permissions"]["access_control_list"].append(
        {"user_name": "nobody@example.com", "all_permissions": [{"permission_level": "CAN_READ", "inherited": False}]})
    (out / "experiment.json").write_text(json.dumps(doc))
    name = f"/Users/ferry/granted-{unique}"
    done = ferry(import_experiment, "--experiment-name", name, "--input-dir", str(out), "--import-permissions", "True")
    assert done.exit_code == 3, done.output
    failed = [line for line in done.stderr.splitlines() if line.startswith("Failed:")]
    assert len(failed) == 1 and "user 'nobody@example.com'" in failed[0] and f"experiment '{name}'" in failed[0]
    assert "Principal: UserName(nobody@example.com) does not exist" in failed[0], failed
    dst = TrackingClient("databricks").get_experiment_by_name(name)
    assert dst is not None
    assert direct_grants(w.experiments.get_permissions(dst["experiment_id"])) == {
        ("user_name", "reader@example.com"): "CAN_READ", ("group_name", "data"): "CAN_EDIT",
        ("group_name", "admins"): "CAN_MANAGE"}  # the inherited one too, made direct as the peer does

    copy = f"copy-{unique}"
    done = ferry(import_model, "--input-dir", str(models), "--model", copy, "--import-permissions", "True")
    assert done.exit_code == 0, done.output
    copy_id = w.model_registry.get_model(copy).registered_model_databricks.id
    assert direct_grants(w.model_registry.get_permissions(copy_id))[("user_name", "reader@example.com")] == \
        "CAN_MANAGE_STAGING_VERSIONS"


def test_a_notebook_that_cannot_be_carried_is_listed(w: WorkspaceClient, seeded: Seeded, tmp_path: Path,
                                                     unique: str) -> None:
    w.workspace.delete(f"{seeded.folder}/train")
    out = tmp_path / "exp"
    done = ferry(export_experiment, "--experiment", seeded.experiment, "--output-dir", str(out),
                 "--notebook-formats", "SOURCE,HTML")
    assert done.exit_code == 3, done.output
    failed = [line for line in done.stderr.splitlines() if line.startswith("Failed:")]
    assert [line.split(" not carried")[0] for line in failed] == [
        f"Failed: run {seeded.python_run}: notebook '{seeded.folder}/train' ({fmt})" for fmt in ("SOURCE", "HTML")]
    assert json.loads((out / "experiment.json").read_text())["info"]["num_ok_runs"] == 3  # the runs themselves are

    done = ferry(import_experiment, "--experiment-name", f"/Users/ferry/partly-{unique}", "--input-dir", str(out),
                 "--dst-notebook-dir", f"/Shared/partly-{unique}")
    assert done.exit_code == 3, done.output  # the export holds the SQL notebook, not the Python one
    assert [line for line in done.stderr.splitlines() if line.startswith("Failed:")] == [
        f"Failed: run {seeded.python_run}: notebook '{seeded.folder}/train' not carried: the export holds no "
        "notebooks/train.source (export with --notebook-formats SOURCE)"]
    assert exported(w, f"/Shared/partly-{unique}/report", "SOURCE") == SQL_SOURCE.encode()

    bad = ferry(export_run, "--run-id", seeded.python_run, "--output-dir", str(tmp_path / "bad"),
                "--notebook-formats", "SOURCE,PDF")
    assert (bad.exit_code, bad.output.count("\n")) == (2, 1), bad.output
    assert "unknown notebook format PDF" in bad.output


def test_open_source_mlflow_gets_one_warning_line(seeded: Seeded, dbx_backend: MlflowServer, tmp_path: Path,
                                                  unique: str) -> None:
    """The server behind the workspace is open-source MLflow: asked directly, it is one (its experiments
    here keep their artifacts in local folders; the workspace's are on its dbfs:/)."""
    oss = TrackingClient(dbx_backend.uri)
    exp_id = oss.create_experiment(f"oss-{unique}", artifact_location=(tmp_path / "oss-artifacts").as_uri())
    oss.create_run(exp_id, tags={PATH_TAG: "/Users/someone/nb"})
    out = tmp_path / "oss"
    done = ferry(export_experiment, "--experiment", exp_id, "--output-dir", str(out),
                 "--export-permissions", "True", "--notebook-formats", "SOURCE", uri=dbx_backend.uri)
    assert done.exit_code == 0, done.output
    assert warnings(done) == ["Warning: --export-permissions, --notebook-formats apply only to Databricks, not to "
                              "open-source MLflow; ignored"]
    assert not list(out.rglob("notebooks")) and "permissions" not in json.loads((out / "experiment.json").read_text())

    # From open-source MLflow into the workspace: the export holds nothing for the options; said once.
    done = ferry(import_experiment, "--experiment-name", f"/Users/ferry/from-oss-{unique}", "--input-dir", str(out),
                 "--import-permissions", "True", "--dst-notebook-dir", f"/Shared/from-oss-{unique}")
    assert done.exit_code == 0, done.output
    assert len(warnings(done)) == 1
    assert warnings(done)[0].startswith("Warning: --import-permissions, --dst-notebook-dir: the export holds no "
                                        "Databricks permissions or SOURCE notebooks")

    # From the workspace into open-source MLflow: the options cannot apply there; said once.
    from_workspace = tmp_path / "workspace"
    done = ferry(export_experiment, "--experiment", seeded.experiment, "--output-dir", str(from_workspace),
                 "--export-permissions", "True", "--notebook-formats", "SOURCE")
    assert done.exit_code == 0, done.output
    name = f"from-workspace-{unique}"
    oss.create_experiment(name, artifact_location=(tmp_path / "imported-artifacts").as_uri())
    done = ferry(import_experiment, "--experiment-name", name, "--input-dir", str(from_workspace),
                 "--import-permissions", "True", "--dst-notebook-dir", "/Shared/x", uri=dbx_backend.uri)
    assert done.exit_code == 0, done.output
    assert any((tmp_path / "imported-artifacts").rglob("train.source")), "the notebook travels as an artifact"
    assert warnings(done) == ["Warning: --import-permissions, --dst-notebook-dir apply only to Databricks, not to "
                              "open-source MLflow; ignored"]
