"""The production-shaped stack is real: PostgreSQL, S3, MLflow's basic auth, MLflow 2.22.

Each production-shaped server gets a run with an artifact through the real `mlflow` client, with
only what `client_env()` gives in the environment; the run is then read back, found in PostgreSQL
(psycopg2) and its artifact found in the S3 bucket (boto3).
"""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import psycopg2
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from devstack.mlflow_server import BasicAuth, MlflowServer
from devstack.postgres import PostgresCluster
from devstack.production import DIRECT_BUCKET, PROXIED_BUCKET
from devstack.s3 import S3Server

pytestmark = pytest.mark.slow

S3_VARIABLES = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


def client_for(server: MlflowServer, monkeypatch: pytest.MonkeyPatch, **creds: str) -> MlflowClient:
    """A real MLflow client whose environment holds exactly what `server.client_env()` says."""
    for name in (*S3_VARIABLES, "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in server.client_env(**creds).items():
        monkeypatch.setenv(name, value)
    return MlflowClient(tracking_uri=server.uri)


def seed_and_read_back(client: MlflowClient, name: str, tmp_path: Path) -> tuple[str, str]:
    """Create an experiment and a run with a param and one artifact; check it reads back. -> ids."""
    experiment_id = client.create_experiment(name)
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "alpha", "0.5")
    artifact = tmp_path / "model-card.txt"
    artifact.write_text(f"card of {name}\n")
    client.log_artifact(run.info.run_id, str(artifact), artifact_path="docs")
    client.set_terminated(run.info.run_id)

    got = client.get_run(run.info.run_id)
    assert got.data.params == {"alpha": "0.5"}
    assert [f.path for f in client.list_artifacts(run.info.run_id, "docs")] == ["docs/model-card.txt"]
    local = client.download_artifacts(run.info.run_id, "docs/model-card.txt", str(tmp_path / "back"))
    assert Path(local).read_text() == f"card of {name}\n"
    return experiment_id, run.info.run_id


def run_row(postgres: PostgresCluster, database: str, run_id: str) -> tuple[str, str, str] | None:
    conn = psycopg2.connect(**postgres.dsn(database))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT experiment_id, status, artifact_uri FROM runs WHERE run_uuid = %s", (run_id,))
            return cur.fetchone()
    finally:
        conn.close()


def test_proxied_server_keeps_runs_in_postgres_and_artifacts_in_s3(
        mlflow_prod_proxied: MlflowServer, postgres: PostgresCluster, s3: S3Server,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, unique: str) -> None:
    env = mlflow_prod_proxied.client_env()
    assert env["MLFLOW_TRACKING_USERNAME"] == "admin"
    assert not set(S3_VARIABLES) & set(env), "a proxied server's clients need no S3 keys"

    client = client_for(mlflow_prod_proxied, monkeypatch)
    experiment_id, run_id = seed_and_read_back(client, f"prod-proxied-{unique}", tmp_path)

    row = run_row(postgres, "mlflow_proxied", run_id)
    assert row is not None and row[0] == int(experiment_id) and row[1] == "FINISHED", row
    assert row[2].startswith("mlflow-artifacts:/"), row
    assert f"artifacts/{experiment_id}/{run_id}/artifacts/docs/model-card.txt" in s3.keys(PROXIED_BUCKET)


def test_direct_server_lets_the_client_write_s3_itself(
        mlflow_prod_direct: MlflowServer, postgres: PostgresCluster, s3: S3Server,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, unique: str) -> None:
    env = mlflow_prod_direct.client_env()
    assert env["MLFLOW_S3_ENDPOINT_URL"] == s3.endpoint_url and env["AWS_ACCESS_KEY_ID"] == s3.access_key

    client = client_for(mlflow_prod_direct, monkeypatch)
    experiment_id, run_id = seed_and_read_back(client, f"prod-direct-{unique}", tmp_path)

    row = run_row(postgres, "mlflow_direct", run_id)
    assert row is not None and row[0] == int(experiment_id), row
    assert row[2] == f"s3://{DIRECT_BUCKET}/artifacts/{experiment_id}/{run_id}/artifacts", row
    assert f"artifacts/{experiment_id}/{run_id}/artifacts/docs/model-card.txt" in s3.keys(DIRECT_BUCKET)


def test_basic_auth_refuses_a_wrong_password_and_no_password(mlflow_prod_proxied: MlflowServer) -> None:
    search = f"{mlflow_prod_proxied.uri}/api/2.0/mlflow/experiments/search"
    admin = BasicAuth().admin_username
    assert requests.post(search, json={"max_results": 1}, auth=(admin, "not-the-password"), timeout=30).status_code == 401
    assert requests.post(search, json={"max_results": 1}, timeout=30).status_code == 401
    assert requests.post(search, json={"max_results": 1}, auth=(admin, BasicAuth().admin_password),
                         timeout=30).status_code == 200


def test_an_ordinary_user_sees_only_the_experiments_granted(
        mlflow_prod_proxied: MlflowServer, monkeypatch: pytest.MonkeyPatch, unique: str) -> None:
    admin = client_for(mlflow_prod_proxied, monkeypatch)
    granted = admin.create_experiment(f"granted-{unique}")
    other = admin.create_experiment(f"not-granted-{unique}")
    user, password = f"analyst-{unique}", f"pw-{unique}-long-enough"
    mlflow_prod_proxied.create_user(user, password)
    mlflow_prod_proxied.grant_experiment_permission(granted, user, "READ")

    get = f"{mlflow_prod_proxied.uri}/api/2.0/mlflow/experiments/get"
    allowed = requests.get(get, params={"experiment_id": granted}, auth=(user, password), timeout=30)
    assert allowed.status_code == 200 and allowed.json()["experiment"]["name"] == f"granted-{unique}"
    refused = requests.get(get, params={"experiment_id": other}, auth=(user, password), timeout=30)
    assert refused.status_code == 403, refused.text

    # The real client with the user's credentials from client_env() is refused the same way.
    as_user = client_for(mlflow_prod_proxied, monkeypatch, username=user, password=password)
    assert as_user.get_experiment(granted).name == f"granted-{unique}"
    with pytest.raises(MlflowException) as refused_client:
        as_user.get_experiment(other)
    assert refused_client.value.get_http_status_code() == 403, refused_client.value


def test_mlflow2_server_answers_the_rest_api(mlflow2_src: MlflowServer) -> None:
    version = requests.get(f"{mlflow2_src.uri}/version", timeout=30)
    assert version.ok and version.text.startswith("2.22."), version.text
    search = requests.post(f"{mlflow2_src.uri}/api/2.0/mlflow/experiments/search", json={"max_results": 10},
                           timeout=30)
    # The server is shared by the session: other tests may have added experiments.
    assert search.ok and "Default" in [e["name"] for e in search.json()["experiments"]], search.text


def listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state held by `pid` or any of its descendants."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {c.laddr.port for p in procs for c in p.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_every_process_is_gone_after_stop(tmp_path: Path) -> None:
    """A cluster, an S3 server and an MLflow server with basic auth and S3 artifacts of their own.

    They start side by side (the MLflow server on sqlite, so it needs nothing from the others to
    come up) and stop; then no process of theirs is left and none of their ports answers.
    """
    pg = PostgresCluster()
    s3 = S3Server(root=tmp_path / "s3")
    server = MlflowServer(root=tmp_path / "mlflow", auth=BasicAuth(), s3_env=s3.env(),
                          artifacts_destination="s3://stop-check/artifacts")
    procs = (pg, s3, server)
    try:
        with ThreadPoolExecutor(len(procs)) as pool:
            for started in [pool.submit(proc.start) for proc in procs]:
                started.result()
        held = {proc.pid: listening_ports(proc.pid) for proc in procs if proc.pid is not None}
        assert len(held) == 3
        assert pg.port in held[pg.pid] and server.port in held[server.pid], held
        assert s3.port in held[s3.pid] and len(held[s3.pid]) >= 4, held  # master, volume, filer, S3
        descendants = {pid: [c.pid for c in psutil.Process(pid).children(recursive=True)] for pid in held}
        assert descendants[pg.pid], "postgres runs no backends or auxiliary processes"
    finally:
        with ThreadPoolExecutor(len(procs)) as pool:
            list(pool.map(lambda proc: proc.stop(), procs))
    for pid, ports in held.items():
        assert gone(pid), f"pid {pid} outlived stop()"
        assert all(gone(child) for child in descendants[pid]), f"children of {pid} outlived stop()"
        assert all(refuses(port) for port in ports), f"ports {ports} of {pid} still accept connections"
    assert pg.root is not None and not pg.root.exists(), "the cluster's own directory is left behind"
