"""The workspace stand-in speaks Databricks' protocol: proven through databricks-sdk and MLflow's own
Databricks client code, never through hand-written requests to the API under test."""

from __future__ import annotations

import base64
import json
import time
import uuid
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import mlflow
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    DatabricksError,
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    Unauthenticated,
)
from databricks.sdk.service.ml import (
    ExperimentAccessControlRequest,
    ExperimentPermissionLevel,
    RegisteredModelAccessControlRequest,
    RegisteredModelPermissionLevel,
)
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language, ObjectType
from mlflow import MlflowClient

from devstack.databricks import DatabricksWorkspace, registered_model_id
from devstack.mlflow_server import MlflowServer
from tests.databricks.fixtures import put_env

NOTEBOOK = "# Databricks notebook source\nprint('hello')\n\n# COMMAND ----------\n\nx = 1 + 1\n"


# -- authentication -------------------------------------------------------------------------------


def test_pat_from_the_environment(dbx_workspace: DatabricksWorkspace, dbx_env_pat: dict[str, str]) -> None:
    w = WorkspaceClient()
    assert w.config.auth_type == "pat"
    assert w.current_user.me().user_name == dbx_workspace.user_name
    # The host metadata the SDK probes on Config() is what it uses.
    assert w.config.workspace_id == dbx_workspace.workspace_id


def test_profiles_of_a_config_file(dbx_workspace: DatabricksWorkspace, dbx_clean_env: pytest.MonkeyPatch,
                                   tmp_path: Path) -> None:
    config = tmp_path / "databrickscfg"
    dbx_workspace.write_profile(config, "ferry-pat")
    dbx_workspace.write_profile(config, "ferry-sp", oauth=True)
    dbx_clean_env.setenv("DATABRICKS_CONFIG_FILE", str(config))
    dbx_clean_env.setenv("REQUESTS_CA_BUNDLE", dbx_workspace.ca_bundle)  # the SDK has no CA setting

    pat = WorkspaceClient(profile="ferry-pat")
    sp = WorkspaceClient(profile="ferry-sp")
    assert (pat.config.auth_type, sp.config.auth_type) == ("pat", "oauth-m2m")
    assert pat.current_user.me().user_name == dbx_workspace.user_name
    assert sp.current_user.me().user_name == dbx_workspace.client_id  # a service principal's own id


def test_refused_credentials(dbx_workspace: DatabricksWorkspace, dbx_env_pat: dict[str, str]) -> None:
    before = dbx_workspace.stats()["unauthorized"]
    with pytest.raises(PermissionDenied, match="Invalid access token"):  # 403, as workspaces answer it
        WorkspaceClient(host=dbx_workspace.host, token="dapi" + "0" * 32).current_user.me()
    with pytest.raises(ValueError, match="invalid_client"):
        WorkspaceClient(host=dbx_workspace.host, client_id=dbx_workspace.client_id,
                        client_secret="not-the-secret", auth_type="oauth-m2m").current_user.me()
    assert dbx_workspace.stats()["unauthorized"] == before + 2


def test_oauth_m2m_tokens_are_refreshed_before_they_expire(short_lived: DatabricksWorkspace,
                                                           dbx_clean_env: pytest.MonkeyPatch) -> None:
    put_env(dbx_clean_env, short_lived.env_oauth())
    w = WorkspaceClient()
    assert w.config.auth_type == "oauth-m2m"
    short_lived.reset_stats()
    calls, deadline = 0, time.monotonic() + 7
    while time.monotonic() < deadline:
        assert w.current_user.me().user_name == short_lived.client_id
        calls += 1
        time.sleep(0.25)
    stats = short_lived.stats()
    assert stats["unauthorized"] == 0
    assert 2 <= stats["oauth_tokens_issued"] < calls  # refreshed, and each token reused meanwhile
    assert stats["requests"]["/oidc/v1/token"] == stats["oauth_tokens_issued"]


def test_an_expired_oauth_token_is_refused(dbx_backend: MlflowServer, dbx_clean_env: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    workspace = DatabricksWorkspace(backend=dbx_backend.uri, root=tmp_path / "ws", token_lifetime=1).start()
    try:
        put_env(dbx_clean_env, workspace.env_oauth())
        token = WorkspaceClient().config.oauth_token().access_token
        as_bearer = WorkspaceClient(host=workspace.host, token=token, auth_type="pat")
        assert as_bearer.current_user.me().user_name == workspace.client_id
        time.sleep(1.2)
        with pytest.raises(Unauthenticated, match="expired"):
            as_bearer.current_user.me()
    finally:
        workspace.stop()


# -- Workspace API --------------------------------------------------------------------------------


def test_notebooks_round_trip(dbx_workspace: DatabricksWorkspace, dbx_env_pat: dict[str, str]) -> None:
    w = WorkspaceClient()
    folder = f"/Users/{dbx_workspace.user_name}/ferry-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ResourceDoesNotExist):  # the parent must exist
        w.workspace.import_(f"{folder}/nb", content=base64.b64encode(NOTEBOOK.encode()).decode(),
                            format=ImportFormat.SOURCE, language=Language.PYTHON)
    w.workspace.mkdirs(f"{folder}/sub")
    w.workspace.mkdirs(f"{folder}/sub")  # idempotent
    w.workspace.import_(f"{folder}/nb", content=base64.b64encode(NOTEBOOK.encode()).decode(),
                        format=ImportFormat.SOURCE, language=Language.PYTHON)
    with pytest.raises(ResourceAlreadyExists):
        w.workspace.import_(f"{folder}/nb", content=base64.b64encode(b"print(2)\n").decode(),
                            format=ImportFormat.SOURCE, language=Language.PYTHON)

    status = w.workspace.get_status(f"{folder}/nb")
    assert (status.object_type, status.language, status.path) == (ObjectType.NOTEBOOK, Language.PYTHON,
                                                                  f"{folder}/nb")
    exported = w.workspace.export(f"{folder}/nb", format=ExportFormat.SOURCE)
    assert base64.b64decode(exported.content).decode() == NOTEBOOK
    assert exported.file_type == "py"

    ipynb = json.loads(base64.b64decode(w.workspace.export(f"{folder}/nb", format=ExportFormat.JUPYTER).content))
    assert ipynb["nbformat"] == 4
    assert ["".join(c["source"]) for c in ipynb["cells"]] == ["print('hello')", "x = 1 + 1\n"]
    # JUPYTER back in, as another notebook: the same source comes out.
    w.workspace.import_(f"{folder}/sub/copy", content=base64.b64encode(json.dumps(ipynb).encode()).decode(),
                        format=ImportFormat.JUPYTER)
    copy = w.workspace.export(f"{folder}/sub/copy", format=ExportFormat.SOURCE)
    assert base64.b64decode(copy.content).decode() == NOTEBOOK
    # overwrite replaces, keeping the object's id.
    w.workspace.import_(f"{folder}/nb", content=base64.b64encode(b"print(2)\n").decode(),
                        format=ImportFormat.SOURCE, language=Language.PYTHON, overwrite=True)
    assert w.workspace.get_status(f"{folder}/nb").object_id == status.object_id
    assert w.workspace.download(f"{folder}/nb").read() == b"# Databricks notebook source\nprint(2)\n"

    html = base64.b64decode(w.workspace.export(f"{folder}/nb", format=ExportFormat.HTML).content).decode()
    assert "print(2)" in html and html.startswith("<!DOCTYPE html>")
    dbc = zipfile.ZipFile(BytesIO(base64.b64decode(w.workspace.export(f"{folder}/nb",
                                                                      format=ExportFormat.DBC).content)))
    assert dbc.namelist() == ["nb.py"]

    listed = {o.path: o.object_type for o in w.workspace.list(folder)}
    assert listed == {f"{folder}/nb": ObjectType.NOTEBOOK, f"{folder}/sub": ObjectType.DIRECTORY}
    assert [o.path for o in w.workspace.list(folder, recursive=True)] == [f"{folder}/nb", f"{folder}/sub/copy"]

    with pytest.raises(DatabricksError) as not_empty:
        w.workspace.delete(folder)
    assert not_empty.value.error_code == "DIRECTORY_NOT_EMPTY"
    w.workspace.delete(folder, recursive=True)
    with pytest.raises(ResourceDoesNotExist):
        w.workspace.get_status(folder)


def test_upload_and_download_of_files_and_sql(dbx_workspace: DatabricksWorkspace,
                                              dbx_env_pat: dict[str, str]) -> None:
    """The SDK's `upload` posts multipart form data; `download` asks for the raw bytes."""
    w = WorkspaceClient()
    folder = f"/Shared/ferry-{uuid.uuid4().hex[:8]}"
    w.workspace.mkdirs(folder)
    w.workspace.upload(f"{folder}/query.sql", b"-- Databricks notebook source\nSELECT 1\n")
    assert w.workspace.get_status(f"{folder}/query.sql").language == Language.SQL
    w.workspace.upload(f"{folder}/data.json", b'{"a": 1}', format=ImportFormat.AUTO)
    status = w.workspace.get_status(f"{folder}/data.json")
    assert (status.object_type, status.size) == (ObjectType.FILE, 8)
    assert w.workspace.download(f"{folder}/data.json", format=ExportFormat.AUTO).read() == b'{"a": 1}'
    with pytest.raises(InvalidParameterValue):
        w.workspace.import_(f"{folder}/nolang", content=base64.b64encode(b"x = 1").decode(),
                            format=ImportFormat.SOURCE)


# -- Permissions API ------------------------------------------------------------------------------


def test_experiment_permissions(dbx_backend: MlflowServer, dbx_workspace: DatabricksWorkspace,
                                dbx_env_pat: dict[str, str]) -> None:
    experiment_id = MlflowClient(dbx_backend.uri).create_experiment(f"/Shared/perms-{uuid.uuid4().hex[:8]}")
    w = WorkspaceClient()
    fresh = w.experiments.get_permissions(experiment_id)
    assert (fresh.object_id, fresh.object_type) == (f"/experiments/{experiment_id}", "mlflow-experiment")
    [admins] = fresh.access_control_list
    assert admins.group_name == "admins"
    assert [(p.permission_level, p.inherited) for p in admins.all_permissions] == [
        (ExperimentPermissionLevel.CAN_MANAGE, True)]

    levels = w.experiments.get_permission_levels(experiment_id).permission_levels
    assert [lv.permission_level for lv in levels] == [ExperimentPermissionLevel.CAN_READ,
                                                      ExperimentPermissionLevel.CAN_EDIT,
                                                      ExperimentPermissionLevel.CAN_MANAGE]

    updated = w.experiments.update_permissions(experiment_id, access_control_list=[
        ExperimentAccessControlRequest(user_name="a@example.com", permission_level=ExperimentPermissionLevel.CAN_READ),
        ExperimentAccessControlRequest(group_name="data", permission_level=ExperimentPermissionLevel.CAN_EDIT)])
    assert _direct(updated) == {("user_name", "a@example.com"): "CAN_READ", ("group_name", "data"): "CAN_EDIT"}
    w.experiments.update_permissions(experiment_id, access_control_list=[
        ExperimentAccessControlRequest(user_name="a@example.com", permission_level=ExperimentPermissionLevel.CAN_EDIT)])
    assert _direct(w.experiments.get_permissions(experiment_id)) == {
        ("user_name", "a@example.com"): "CAN_EDIT", ("group_name", "data"): "CAN_EDIT"}

    replaced = w.experiments.set_permissions(experiment_id, access_control_list=[
        ExperimentAccessControlRequest(service_principal_name=dbx_workspace.client_id,
                                       permission_level=ExperimentPermissionLevel.CAN_MANAGE)])
    assert _direct(replaced) == {("service_principal_name", dbx_workspace.client_id): "CAN_MANAGE"}
    assert any(e.group_name == "admins" for e in replaced.access_control_list)  # inherited stays

    with pytest.raises(InvalidParameterValue):
        w.api_client.do("PATCH", f"/api/2.0/permissions/experiments/{experiment_id}",
                        body={"access_control_list": [{"user_name": "b@example.com", "permission_level": "CAN_FLY"}]})
    with pytest.raises(ResourceDoesNotExist):
        w.experiments.get_permissions("987654321")


def test_registered_model_permissions(dbx_backend: MlflowServer, dbx_workspace: DatabricksWorkspace,
                                      dbx_env_pat: dict[str, str]) -> None:
    name = f"perms-model-{uuid.uuid4().hex[:8]}"
    MlflowClient(dbx_backend.uri, registry_uri=dbx_backend.uri).create_registered_model(name)
    w = WorkspaceClient()
    found = w.api_client.do("GET", "/api/2.0/mlflow/databricks/registered-models/get", query={"name": name})
    model = found["registered_model_databricks"]
    assert (model["name"], model["id"]) == (name, registered_model_id(name))

    assert w.model_registry.get_permissions(model["id"]).object_type == "registered-model"
    levels = w.model_registry.get_permission_levels(model["id"]).permission_levels
    assert RegisteredModelPermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS in [lv.permission_level for lv in levels]
    w.model_registry.update_permissions(model["id"], access_control_list=[
        RegisteredModelAccessControlRequest(user_name="a@example.com",
                                            permission_level=RegisteredModelPermissionLevel.CAN_READ)])
    assert _direct(w.model_registry.get_permissions(model["id"])) == {("user_name", "a@example.com"): "CAN_READ"}
    # Known by its id alone too (found by searching the backend's models).
    other = f"perms-model-{uuid.uuid4().hex[:8]}"
    MlflowClient(dbx_backend.uri, registry_uri=dbx_backend.uri).create_registered_model(other)
    assert w.model_registry.get_permissions(registered_model_id(other)).object_id == \
        f"/registered-models/{registered_model_id(other)}"
    with pytest.raises(ResourceDoesNotExist):
        w.model_registry.get_permissions(registered_model_id("no such model"))


def _direct(perms: Any) -> dict[tuple[str, str], str]:
    """The ACL's direct (not inherited) grants: {(principal kind, name): level}."""
    out = {}
    for entry in perms.access_control_list:
        key = next((k, getattr(entry, k)) for k in ("user_name", "group_name", "service_principal_name")
                   if getattr(entry, k))
        for grant in entry.all_permissions:
            if not grant.inherited:
                out[key] = grant.permission_level.value
    return out


# -- MLflow's own Databricks client ---------------------------------------------------------------


@pytest.mark.parametrize("transfer", ["signed-urls", "files-api"])
def test_mlflow_tracking_and_run_artifacts(dbx_workspace: DatabricksWorkspace, dbx_mlflow: None,
                                           dbx_clean_env: pytest.MonkeyPatch, tmp_path: Path,
                                           transfer: str) -> None:
    """Both ways MLflow moves run artifacts on Databricks: credentials + signed URLs (with
    MLFLOW_DISABLE_DATABRICKS_SDK_FOR_RUN_ARTIFACTS, as `dbx_mlflow` sets it), and its default,
    the Files API through databricks-sdk."""
    if transfer == "files-api":
        dbx_clean_env.delenv("MLFLOW_DISABLE_DATABRICKS_SDK_FOR_RUN_ARTIFACTS")

    experiment = mlflow.set_experiment(f"/Users/{dbx_workspace.user_name}/ferry-{uuid.uuid4().hex[:8]}")
    payload = tmp_path / "model.bin"
    payload.write_bytes(bytes(range(256)) * 400)
    dbx_workspace.reset_stats()
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("loss", 0.25, step=3)
        mlflow.log_artifact(str(payload))
        mlflow.log_artifact(str(payload), artifact_path="nested/dir")
    assert run.info.artifact_uri == (f"dbfs:/databricks/mlflow-tracking/{experiment.experiment_id}/"
                                     f"{run.info.run_id}/artifacts")

    client = MlflowClient()
    fetched = client.get_run(run.info.run_id)
    assert fetched.data.params == {"alpha": "0.5"} and fetched.data.metrics == {"loss": 0.25}
    top = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id)}
    assert top == {("model.bin", False, payload.stat().st_size), ("nested", True, None)}
    assert [f.path for f in client.list_artifacts(run.info.run_id, "nested/dir")] == ["nested/dir/model.bin"]

    out = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tmp_path / "dl")))
    assert (out / "model.bin").read_bytes() == payload.read_bytes()
    assert (out / "nested/dir/model.bin").read_bytes() == payload.read_bytes()

    seen = dbx_workspace.stats()["requests"]
    if transfer == "signed-urls":
        assert seen["/api/2.0/mlflow/artifacts/credentials-for-write"] == 2
        assert seen["/api/2.0/mlflow/artifacts/credentials-for-read"] == 2
        assert seen["/signed/runs"] == 4
        assert "/api/2.0/fs/files" not in seen
    else:
        assert seen["/api/2.0/fs/files"] >= 4 and seen["/api/2.0/fs/directories"] >= 1
        assert not any(p.startswith(("/signed/", "/api/2.0/mlflow/artifacts/")) for p in seen)
    assert dbx_workspace.stats()["unauthorized"] == 0


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context: Any, model_input: list[int], params: Any = None) -> list[int]:
        return model_input


def test_mlflow_logged_models(dbx_workspace: DatabricksWorkspace, dbx_mlflow: None) -> None:
    """MLflow 3 logs a model's artifacts to the logged model, which a workspace files under
    ``logged_models/`` (the open-source backend says ``models/``): logged, listed and loaded back."""
    mlflow.set_experiment(f"/Users/{dbx_workspace.user_name}/ferry-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="echo", python_model=Echo(), pip_requirements=["mlflow"])
    model = MlflowClient().get_logged_model(info.model_id)
    assert f"/logged_models/{info.model_id}/artifacts" in model.artifact_location
    assert "MLmodel" in {f.path for f in mlflow.artifacts.list_artifacts(info.model_uri)}
    assert mlflow.pyfunc.load_model(info.model_uri).predict([1, 2]) == [1, 2]


def test_signed_urls_are_checked(dbx_workspace: DatabricksWorkspace, dbx_mlflow: None, tmp_path: Path) -> None:
    """The URLs MLflow is given work without a bearer token, and only as signed."""
    import requests
    from mlflow.store.artifact.databricks_artifact_repo import DatabricksArtifactRepository

    mlflow.set_experiment(f"/Users/{dbx_workspace.user_name}/ferry-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run() as run:
        mlflow.log_text("signed", "note.txt")
    repo = DatabricksArtifactRepository(run.info.artifact_uri)
    [cred] = repo._get_read_credential_infos(["note.txt"])
    assert requests.get(cred.signed_uri, timeout=10).content == b"signed"
    tampered = cred.signed_uri.replace("note.txt", "other.txt")
    assert requests.get(tampered, timeout=10).status_code == 403
    [write] = repo._get_write_credential_infos(["note.txt"])
    assert requests.get(write.signed_uri, timeout=10).status_code == 403  # signed for PUT only


def test_no_ajax_or_artifact_proxy_routes(dbx_env_pat: dict[str, str]) -> None:
    w = WorkspaceClient()
    for path in ("/ajax-api/2.0/mlflow/metrics/get-history-bulk", "/api/2.0/mlflow-artifacts/artifacts"):
        with pytest.raises(NotFound) as missing:
            w.api_client.do("GET", path, query={"run_id": "x", "metric_key": "m"})
        assert missing.value.error_code == "ENDPOINT_NOT_FOUND"
        assert path in str(missing.value)
