"""MlflowExport from a Databricks workspace, as a platform engineer applies it: a credentials Secret
holding a configuration file for `databricks://<profile>`, one whose token is refused, and none."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service.ml import ExperimentAccessControlRequest, ExperimentPermissionLevel
from databricks.sdk.service.workspace import ImportFormat, Language
from mlflow import MlflowClient

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TERMINAL = {"Succeeded", "PartiallyFailed", "Failed", "FailedValidation"}


@pytest.mark.operator_policy({"env": {"allowedNames": ["REQUESTS_CA_BUNDLE"]}})  # the stand-in's own CA
def test_export_from_a_workspace(operator, res, k8s_cluster, dbx_backend, dbx_workspace, dbx_env_pat,
                                 tmp_path: Path, unique: str) -> None:
    backend = MlflowClient(dbx_backend.uri)  # runs without artifacts: seeded behind the workspace
    experiment = f"/Users/{dbx_workspace.user_name}/e2e-{unique}"
    notebook = f"/Users/{dbx_workspace.user_name}/train-{unique}"
    exp_id = backend.create_experiment(experiment)
    for i in range(3):
        tags = {"mlflow.databricks.notebookPath": notebook, "mlflow.databricks.notebookRevisionID": "1"}
        run_id = backend.create_run(exp_id, run_name=f"run-{i}", tags=tags).info.run_id
        for step in range(5):
            backend.log_metric(run_id, "loss", 1.0 / (step + 1 + i), step=step)
        backend.set_terminated(run_id)
    source = "# Databricks notebook source\nprint('train')\n"
    sdk = WorkspaceClient()  # the workspace's own objects, seeded through databricks-sdk
    sdk.workspace.import_(notebook, content=base64.b64encode(source.encode()).decode(), format=ImportFormat.SOURCE,
                          language=Language.PYTHON)
    sdk.experiments.update_permissions(exp_id, access_control_list=[ExperimentAccessControlRequest(
        user_name="reader@example.com", permission_level=ExperimentPermissionLevel.CAN_READ)])

    profile = dbx_workspace.write_profile(tmp_path / "databrickscfg", "staging")
    res.secret("dbx-profile", {".databrickscfg": profile.read_text()})
    res.secret("dbx-refused", {"DATABRICKS_HOST": dbx_workspace.host, "DATABRICKS_TOKEN": "dapi-revoked"})
    res.claim("backups")
    claim = Path(k8s_cluster.claim_path(res.namespace, "backups"))
    claim.mkdir(parents=True, exist_ok=True)  # the pod's /tmp is its own: the CA travels on the claim
    (claim / "ca.pem").write_bytes(Path(dbx_workspace.ca_bundle).read_bytes())
    ca = {"env": [{"name": "REQUESTS_CA_BUNDLE", "value": "/data/ca.pem"}]}

    def export(name: str, uri: str, secret: str | None) -> None:
        res.create("MlflowExport", name, {
            "source": {"trackingUri": uri, **({"credentialsSecret": {"name": secret}} if secret else {})},
            "objects": {"experiments": [experiment]},
            "options": {"exportPermissions": True, "notebookFormats": ["SOURCE"]},
            "destination": {"pvc": {"claimName": "backups", "subPath": name}},
            "job": {**ca, "backoffLimit": 0},
        })  # fmt: skip

    export("from-profile", "databricks://staging", "dbx-profile")
    export("refused", "databricks", "dbx-refused")
    export("no-secret", "databricks", None)

    refused = res.wait_phase("MlflowExport", "no-secret", TERMINAL, timeout=60)
    assert refused["phase"] == "FailedValidation"
    assert any("credentialsSecret: required for a Databricks workspace" in e for e in refused["validationErrors"])

    done = res.wait_phase("MlflowExport", "from-profile", TERMINAL, timeout=240)
    assert done["phase"] == "Succeeded", done["message"]
    assert done["counts"]["experiments"] == 1 and done["counts"]["runs"] == 3
    out = claim / "from-profile"
    runs = [json.loads(p.read_text()) for p in out.rglob("run.json")]
    assert sorted(len(r["mlflow"]["metrics"]["loss"]) for r in runs) == [5, 5, 5]
    notebooks = sorted(out.rglob(f"artifacts/notebooks/train-{unique}.source"))
    assert len(notebooks) == 3 and {n.read_text() for n in notebooks} == {source}
    exported = json.loads(next(out.rglob("experiment.json")).read_text())["mlflow"]["permissions"]
    assert {"user_name": "reader@example.com", "all_permissions": [{"permission_level": "CAN_READ", "inherited": False}]} \
        in exported["permissions"]["access_control_list"]

    failed = res.wait_phase("MlflowExport", "refused", TERMINAL, timeout=240)
    assert failed["phase"] == "Failed", failed
    assert f"MLflow at {dbx_workspace.host} refused a personal access token (HTTP 403)" in failed["message"], failed
    assert "dapi-revoked" not in json.dumps(failed)
