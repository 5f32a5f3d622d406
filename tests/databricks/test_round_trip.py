"""Databricks workspace ⇄ open-source MLflow, through our console scripts, field by field.

The workspace is the Databricks-shaped stand-in (`devstack.databricks`): HTTPS, a bearer token on
every request, only ``/api/2.0/mlflow/*`` (no ``ajax-api``), run artifacts in its own storage behind
signed URLs. It is seeded through MLflow's own Databricks client code, so what our engine reads
there is what a real MLflow client wrote; what we write there is read back the same way.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from devstack.databricks import DatabricksWorkspace
from devstack.mlflow_server import MlflowServer
from ferry.tracking import TrackingClient, TrackingSettings
from tests.databricks.fixtures import put_env
from tests.engine.registry_compare import check_links, model_view
from tests.engine.registry_seed import seed_model
from tests.engine.seed import run_view, seed_experiment
from tests.engine.test_experiments_cli import by_source, cli

pytestmark = pytest.mark.usefixtures("dbx_mlflow")

USER_DIR = "/Users/ferry@example.com"


def seeded_files(scratch: Path) -> dict[str, bytes]:
    """The parent run's artifacts as `seed_experiment` wrote them (MLmodel aside: import rewrites its run_id)."""
    root = scratch / "parent-artifacts"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != "MLmodel"}


def equal_copies(src: TrackingClient, dst: TrackingClient, experiment: str, runs: list[str]) -> dict[str, str]:
    """`experiment` at `dst` holds one copy of each of `runs`, equal field by field; source id → copy id."""
    exp = dst.get_experiment_by_name(experiment)
    assert exp is not None
    mapping = by_source(dst, exp["experiment_id"])
    assert sorted(mapping) == sorted(runs)
    for src_id, dst_id in mapping.items():
        assert run_view(dst, dst_id) == run_view(src, src_id), src_id
    return mapping


def test_workspace_to_open_source_and_back(dbx_workspace: DatabricksWorkspace, mlflow_dst: MlflowServer,
                                           tmp_path: Path, unique: str) -> None:
    name = f"{USER_DIR}/wine-{unique}"
    seeded = seed_experiment("databricks", name, tmp_path / "seed")
    workspace, oss = TrackingClient("databricks"), TrackingClient(mlflow_dst.uri)
    assert workspace.workspace is not None and workspace.uri == dbx_workspace.host
    dbx_workspace.reset_stats()

    out = tmp_path / "from-workspace"
    done = cli("export-experiment", "--experiment", name, "--output-dir", str(out), "--export-deleted-runs", "True",
               uri="databricks")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "experiment.json").read_text())["info"]["num_ok_runs"] == 5
    stats = dbx_workspace.stats()
    requests = stats["requests"]
    assert not any(path.startswith("/ajax-api") for path in requests), "the workspace serves no ajax-api"
    assert requests.get("/api/2.0/mlflow/metrics/get-history", 0) >= 4  # acc, loss (2 runs), lr
    assert stats["unauthorized"] == 0

    imported = f"from-workspace-{unique}"
    done = cli("import-experiment", "--experiment-name", imported, "--input-dir", str(out), uri=mlflow_dst.uri)
    assert done.returncode == 0, done.stderr
    mapping = equal_copies(workspace, oss, imported, seeded.all_runs)
    parent_view = run_view(oss, mapping[seeded.parent])
    assert parent_view["artifacts"] == seeded_files(tmp_path / "seed")  # what MLflow's client wrote, byte for byte

    back = tmp_path / "from-oss"
    done = cli("export-experiment", "--experiment", imported, "--output-dir", str(back), "--export-deleted-runs",
               "True", uri=mlflow_dst.uri)
    assert done.returncode == 0, done.stderr
    returned = f"{USER_DIR}/returned-{unique}"
    for _ in range(2):  # the second import finds every run there and writes none
        done = cli("import-experiment", "--experiment-name", returned, "--input-dir", str(back), uri="databricks")
        assert done.returncode == 0, done.stderr
    back_mapping = equal_copies(oss, workspace, returned, list(mapping.values()))

    # MLflow's own Databricks client reads what we uploaded through the workspace's signed URLs.
    ws_parent = back_mapping[mapping[seeded.parent]]
    downloaded = Path(MlflowClient().download_artifacts(ws_parent, "", str(tmp_path / "mlflow-read")))
    assert {p.relative_to(downloaded).as_posix(): p.read_bytes() for p in downloaded.rglob("*")
            if p.is_file() and p.name != "MLmodel"} == seeded_files(tmp_path / "seed")


def test_a_bad_token_is_one_line(dbx_workspace: DatabricksWorkspace, tmp_path: Path) -> None:
    done = cli("export-experiment", "--experiment", "x", "--output-dir", str(tmp_path / "x"), uri="databricks",
               DATABRICKS_TOKEN="dapi-not-a-token")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"Error: MLflow at {dbx_workspace.host} refused a personal access token (HTTP 403)"]
    assert not (tmp_path / "x" / "experiment.json").exists()


def test_oauth_machine_to_machine_and_a_refused_client(dbx_workspace: DatabricksWorkspace, dbx_env_oauth: dict,
                                                       dbx_clean_env: pytest.MonkeyPatch, tmp_path: Path,
                                                       unique: str) -> None:
    """A service principal's client id and secret; the SDK fetches the token, and a wrong secret is one line."""
    dbx_clean_env.delenv("DATABRICKS_TOKEN")
    TrackingClient("databricks").create_experiment(f"{USER_DIR}/oauth-{unique}")
    issued = dbx_workspace.stats()["oauth_tokens_issued"]
    done = cli("export-experiment", "--experiment", f"{USER_DIR}/oauth-{unique}", "--output-dir",
               str(tmp_path / "ok"), uri="databricks")
    assert done.returncode == 0, done.stderr
    assert dbx_workspace.stats()["oauth_tokens_issued"] > issued  # the subprocess signed in by itself

    done = cli("export-experiment", "--experiment", f"{USER_DIR}/oauth-{unique}", "--output-dir",
               str(tmp_path / "refused"), uri="databricks", DATABRICKS_CLIENT_SECRET="wrong")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"Error: cannot sign in to the Databricks workspace at {dbx_workspace.host} with OAuth client "
        f"'{dbx_workspace.client_id}'"), done.stderr


def test_oauth_tokens_are_refreshed_under_our_requests(short_lived: DatabricksWorkspace,
                                                      dbx_clean_env: pytest.MonkeyPatch) -> None:
    """Every request asks the SDK for its headers: a token about to expire is replaced, never sent stale."""
    dbx_clean_env.delenv("DATABRICKS_TOKEN")
    put_env(dbx_clean_env, short_lived.env_oauth())
    client = TrackingClient("databricks")
    short_lived.reset_stats()
    calls, deadline = 0, time.monotonic() + 7
    while time.monotonic() < deadline:
        list(client.search_experiments())
        calls += 1
        time.sleep(0.25)
    stats = short_lived.stats()
    assert stats["unauthorized"] == 0
    assert 2 <= stats["oauth_tokens_issued"] < calls


def test_a_profile_of_a_configuration_file(dbx_workspace: DatabricksWorkspace, dbx_clean_env: pytest.MonkeyPatch,
                                           tmp_path: Path, unique: str) -> None:
    """``databricks://<profile>`` reads that profile of DATABRICKS_CONFIG_FILE; a profile not in it is one line."""
    config = dbx_workspace.write_profile(tmp_path / "cfg", "staging")
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN"):  # the profile alone says where and who
        dbx_clean_env.delenv(name)
    dbx_clean_env.setenv("DATABRICKS_CONFIG_FILE", str(config))
    dbx_clean_env.setenv("REQUESTS_CA_BUNDLE", dbx_workspace.ca_bundle)
    name = f"{USER_DIR}/profile-{unique}"
    TrackingClient("databricks://staging").create_experiment(name)
    done = cli("export-experiment", "--experiment", name, "--output-dir", str(tmp_path / "ok"),
               uri="databricks://staging")
    assert done.returncode == 0, done.stderr
    done = cli("export-experiment", "--experiment", name, "--output-dir", str(tmp_path / "no"), uri="databricks://prod")
    assert done.returncode == 2
    assert done.stderr.strip() == (f"Error: tracking URI 'databricks://prod' names profile 'prod', which {config} "
                                   "does not define")


def test_workspace_registry_to_open_source(mlflow_dst: MlflowServer, tmp_path: Path, unique: str) -> None:
    """The workspace model registry: versions in order, stages, tags, and sources on copied runs (it has no aliases)."""
    seeded = seed_model("databricks", f"wine_{unique}", tmp_path / "seed", versions=3, aliases=False)
    workspace, oss = TrackingClient("databricks"), TrackingClient(mlflow_dst.uri)
    out = tmp_path / "model"
    done = cli("export-model", "--model", seeded.name, "--output-dir", str(out), uri="databricks")
    assert done.returncode == 0, done.stderr
    done = cli("import-model", "--model", seeded.name, "--experiment-name", f"runs-{unique}", "--input-dir",
               str(out), uri=mlflow_dst.uri)
    assert done.returncode == 0, done.stderr
    assert model_view(oss, seeded.name) == model_view(workspace, seeded.name)
    check_links(workspace, oss, seeded.name, seeded.name)


def test_a_mirror_of_a_workspace(dbx_workspace: DatabricksWorkspace, dbx_clean_env: pytest.MonkeyPatch,
                                 mlflow_dst: MlflowServer, tmp_path: Path, unique: str) -> None:
    """`ferry mirror` from a workspace signed in with SRC_DATABRICKS_*: equal runs, then a sync that writes nothing."""
    name = f"{USER_DIR}/mirrored-{unique}"
    seeded = seed_experiment("databricks", name, tmp_path / "seed")
    for variable in ("DATABRICKS_HOST", "DATABRICKS_TOKEN"):  # only the prefixed pair names the source
        dbx_clean_env.setenv(f"SRC_{variable}", dbx_workspace.env_pat()[variable])
        dbx_clean_env.delenv(variable)
    state = tmp_path / "mirror.json"
    for _ in range(2):
        done = cli("ferry", "mirror", "--src-mlflow-uri", "databricks", "--dst-mlflow-uri", mlflow_dst.uri,
                   "--experiments", name, "--models", "", "--prompts", "", "--state-file", str(state), "--once")
        assert done.returncode == 0, done.stderr
    equal_copies(TrackingClient("databricks", TrackingSettings.from_env("SRC_")), TrackingClient(mlflow_dst.uri),
                 name, seeded.active_runs)
    assert re.search(r"\b0 runs\b", done.stdout), done.stdout  # the second sync found nothing to copy
