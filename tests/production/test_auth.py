"""Our commands against MLflow's basic-auth app: a login refused, an object we may not read or change.

The production-shaped server (`mlflow_prod_proxied`) grants nothing by default: an ordinary
user sees the experiments they were granted and those they created. A refused login fails the
whole command in one line naming the server and the user (nothing else could work); an
experiment the user may not read (export) or change (import) is a failure of that object, listed
with its reason, and the command ends PartiallyFailed (exit 3) with the rest carried.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from devstack.mlflow_server import MlflowServer
from tests.production.test_fixtures import client_for

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
CREDENTIALS = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")


def cli(name: str, *args: str, uri: str, username: str | None = None,
        password: str | None = None) -> subprocess.CompletedProcess[str]:
    """A console script with exactly these credentials (none if `username` is None)."""
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    env.update({"MLFLOW_TRACKING_URI": uri, "FERRY_HTTP_MAX_ATTEMPTS": "1"})
    if username is not None:
        env.update({"MLFLOW_TRACKING_USERNAME": username, "MLFLOW_TRACKING_PASSWORD": password or ""})
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True, env=env, timeout=300)


def failed_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in done.stderr, done.stderr
    return [line for line in done.stderr.splitlines() if line.startswith("Failed: ")]


@pytest.fixture
def user(mlflow_prod_proxied: MlflowServer, unique: str) -> tuple[str, str]:
    """An ordinary user of the production server, granted nothing yet."""
    name, password = f"analyst-{unique}", f"pw-{unique}-long-enough"
    mlflow_prod_proxied.create_user(name, password)
    return name, password


def seed(client: MlflowClient, name: str, tmp_path: Path) -> tuple[str, str]:
    """An experiment with one finished run (a param, a metric, an artifact). -> (experiment id, run id)."""
    experiment_id = client.create_experiment(name)
    run = client.create_run(experiment_id, run_name="only")
    client.log_param(run.info.run_id, "alpha", "0.5")
    client.log_metric(run.info.run_id, "loss", 0.25, step=3)
    (tmp_path / "note.txt").write_text(f"note of {name}\n")
    client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
    client.set_terminated(run.info.run_id)
    return experiment_id, run.info.run_id


@pytest.mark.parametrize("argv", [
    ["export-experiments", "--experiments", "all", "--output-dir", "{out}"],
    ["export-models", "--models", "all", "--output-dir", "{out}"],
    ["import-experiment", "--experiment-name", "never-created", "--input-dir", "{export}"],
], ids=lambda argv: argv[0])
def test_a_refused_login_is_one_line_naming_the_server_and_the_user(
        mlflow_prod_proxied: MlflowServer, mlflow_src: MlflowServer, argv: list[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, unique: str) -> None:
    exported = tmp_path / "export"
    if "{export}" in argv:  # a real export to import, from the plain source server
        seed(MlflowClient(tracking_uri=mlflow_src.uri), f"auth-login-{unique}", tmp_path)
        done = cli("export-experiment", "--experiment", f"auth-login-{unique}", "--output-dir", str(exported),
                   uri=mlflow_src.uri)
        assert done.returncode == 0, done.stderr
    args = [a.format(out=tmp_path / "out", export=exported) for a in argv]
    uri = mlflow_prod_proxied.uri
    attempts = (
        ("admin", "not-the-password",
         f"Error: MLflow at {uri} refused the login of user 'admin' (HTTP 401): "
         "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
        (f"nobody-{unique}", "whatever-it-is",
         f"Error: MLflow at {uri} refused the login of user 'nobody-{unique}' (HTTP 401): "
         "check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
        (None, None,
         f"Error: MLflow at {uri} asks for a login (HTTP 401) and none was given: set "
         "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN"))
    # Every kind of refusal once; each command the wrong password (a command takes seconds to start).
    for who, password, expected in attempts if argv[0] == "export-experiments" else attempts[:1]:
        done = cli(*args, uri=uri, username=who, password=password)
        assert done.returncode == 1, (who, done.stdout, done.stderr)
        assert done.stderr.splitlines() == [expected], done.stderr
        assert done.stdout == "", done.stdout
    # Nothing was created on the server by the refused import.
    admin = client_for(mlflow_prod_proxied, monkeypatch)
    assert admin.get_experiment_by_name("never-created") is None


def test_an_experiment_the_user_may_not_read_is_a_failure_of_that_experiment(
        mlflow_prod_proxied: MlflowServer, user: tuple[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, unique: str) -> None:
    admin = client_for(mlflow_prod_proxied, monkeypatch)
    granted, granted_run = seed(admin, f"auth-granted-{unique}", tmp_path)
    seed(admin, f"auth-forbidden-{unique}", tmp_path)
    mlflow_prod_proxied.grant_experiment_permission(granted, user[0], "READ")

    out = tmp_path / "out"
    done = cli("export-experiments", "--experiments", f"auth-granted-{unique},auth-forbidden-{unique}",
               "--output-dir", str(out), uri=mlflow_prod_proxied.uri, username=user[0], password=user[1])
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert failed_lines(done) == [
        f"Failed: experiment auth-forbidden-{unique}: MLflow at {mlflow_prod_proxied.uri} does not let user "
        f"'{user[0]}' read experiment 'auth-forbidden-{unique}' (HTTP 403: Permission denied)"], done.stderr

    # The readable experiment was exported whole, as the server has it.
    index = json.loads((out / "experiments.json").read_text())["mlflow"]["experiments"]
    assert [(e["name"], e["ok_runs"], e["failed_runs"]) for e in index] == [(f"auth-granted-{unique}", 1, 0)]
    run_json = json.loads((out / granted / "runs" / granted_run / "run.json").read_text())["mlflow"]
    source = admin.get_run(granted_run)
    assert run_json["params"] == source.data.params == {"alpha": "0.5"}
    assert [(p["value"], p["step"]) for p in run_json["metrics"]["loss"]] == [(0.25, 3)]
    assert (out / granted / "runs" / granted_run / "artifacts" / "note.txt").read_text() == \
        f"note of auth-granted-{unique}\n"


def test_an_experiment_the_user_may_not_change_is_a_failure_of_its_runs(
        mlflow_prod_proxied: MlflowServer, mlflow_src: MlflowServer, user: tuple[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, unique: str) -> None:
    """A bulk import as the user: into a new experiment (theirs) and into one they may only read."""
    source = MlflowClient(tracking_uri=mlflow_src.uri)
    writable, readonly = f"auth-new-{unique}", f"auth-readonly-{unique}"
    _, writable_run = seed(source, writable, tmp_path)
    _, readonly_run = seed(source, readonly, tmp_path)
    out = tmp_path / "export"
    done = cli("export-experiments", "--experiments", f"{writable},{readonly}", "--output-dir", str(out),
               uri=mlflow_src.uri)
    assert done.returncode == 0, done.stderr

    admin = client_for(mlflow_prod_proxied, monkeypatch)
    existing = admin.create_experiment(readonly)
    mlflow_prod_proxied.grant_experiment_permission(existing, user[0], "READ")

    done = cli("import-experiments", "--input-dir", str(out), uri=mlflow_prod_proxied.uri,
               username=user[0], password=user[1])
    assert done.returncode == 3, (done.stdout, done.stderr)
    denied = (f"MLflow at {mlflow_prod_proxied.uri} does not let user '{user[0]}' change experiment {existing} "
              "(HTTP 403: Permission denied)")
    assert failed_lines(done) == [f"Failed: run {readonly_run}: {denied}"], done.stderr

    assert admin.search_runs([existing]) == [], "a run was created where the user may not write"
    [imported] = admin.search_runs([admin.get_experiment_by_name(writable).experiment_id])
    want = source.get_run(writable_run)
    assert imported.data.params == want.data.params == {"alpha": "0.5"}
    assert imported.data.metrics == want.data.metrics
    assert imported.info.status == "FINISHED" and imported.info.run_name == "only"
    local = admin.download_artifacts(imported.info.run_id, "note.txt", str(tmp_path / "back"))
    assert Path(local).read_text() == f"note of {writable}\n"
