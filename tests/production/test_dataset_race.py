"""Runs that first log the same dataset at the same moment, on a PostgreSQL-backed MLflow.

MLflow's log-inputs looks the dataset up and inserts it when missing, in one transaction. On
PostgreSQL two such transactions really overlap: both find nothing, both insert, and the later
commit violates the dataset's unique constraint. The race is made certain here, not likely: the
test holds a SHARE lock on the ``datasets`` table, which lets MLflow's look-up through but stops
every insert, waits until each request is blocked on it, and then lets them all go at once. One
insert wins; every other one fails on the constraint.

What the server answers is shown with plain HTTP; then `TrackingClient.log_inputs` and an
experiment import with several workers are shown to end with each run's inputs present exactly
once and nothing failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import psycopg2
import pytest
import requests
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.tracking import MlflowClient

from devstack.mlflow_server import MlflowServer
from devstack.postgres import PostgresCluster
from ferry.engine.experiments import export_experiment, import_experiment
from ferry.tracking import TrackingClient, TrackingSettings

pytestmark = pytest.mark.slow

DATABASE = "mlflow_proxied"  # mlflow_prod_proxied's backend store
RACERS = 4  # concurrent requests; each holds two of the server's 15 pooled connections while blocked
T = TypeVar("T")


def dataset(name: str) -> dict:
    """A dataset input as the REST API takes it (and runs/get returns it)."""
    return {"dataset": {"name": name, "digest": f"d-{name}"[:36], "source_type": "local",
                        "source": f'{{"uri": "file:///data/{name}.csv"}}', "schema": "", "profile": '{"rows": 3}'},
            "tags": [{"key": "mlflow.data.context", "value": "training"}]}


@contextmanager
def inserts_held(postgres: PostgresCluster) -> Iterator[Callable[[int], None]]:
    """While inside, no transaction can insert into ``datasets``; reads still go through.

    Yields `wait_blocked(n)`: returns once `n` transactions wait for the lock. On leaving, the
    lock is released and the waiting inserts all proceed together.
    """
    holder = psycopg2.connect(**postgres.dsn(DATABASE))
    watcher = psycopg2.connect(**postgres.dsn(DATABASE))
    watcher.autocommit = True

    def wait_blocked(n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with watcher.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_locks WHERE relation = 'datasets'::regclass AND NOT granted")
                (blocked,) = cur.fetchone()
            if blocked >= n:
                return
            assert time.monotonic() < deadline, f"only {blocked} of {n} inserts reached the lock"
            time.sleep(0.05)

    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE datasets IN SHARE MODE")
        yield wait_blocked
    finally:
        holder.rollback()
        holder.close()
        watcher.close()


def racing(postgres: PostgresCluster, calls: list[Callable[[], T]], blocked: int | None = None) -> list[T]:
    """Run `calls` at once with inserts held until `blocked` of them (default all) wait; their results."""
    with ThreadPoolExecutor(len(calls)) as pool:
        with inserts_held(postgres) as wait_blocked:
            futures: list[Future[T]] = [pool.submit(call) for call in calls]
            wait_blocked(len(calls) if blocked is None else blocked)
        return [f.result(timeout=120) for f in futures]


def dataset_rows(postgres: PostgresCluster, experiment_id: str, name: str) -> int:
    conn = psycopg2.connect(**postgres.dsn(DATABASE))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM datasets WHERE experiment_id = %s AND name = %s",
                        (int(experiment_id), name))
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def inputs_of(client: TrackingClient, run_id: str) -> list[tuple[str, str, list]]:
    """(name, digest, tags) of each dataset input of the run, as the server returns them."""
    got = client.get_run(run_id).get("inputs", {}).get("dataset_inputs", [])
    return [(d["dataset"]["name"], d["dataset"]["digest"], d.get("tags", [])) for d in got]


@pytest.fixture
def admin(mlflow_prod_proxied: MlflowServer) -> TrackingClient:
    env = mlflow_prod_proxied.client_env()
    return TrackingClient(mlflow_prod_proxied.uri, TrackingSettings(
        username=env["MLFLOW_TRACKING_USERNAME"], password=env["MLFLOW_TRACKING_PASSWORD"]))


def new_runs(client: TrackingClient, experiment_id: str, n: int) -> list[str]:
    return [client.create_run(experiment_id)["info"]["run_id"] for _ in range(n)]


def test_the_server_refuses_all_but_one_of_concurrent_first_uses(
        admin: TrackingClient, postgres: PostgresCluster, unique: str) -> None:
    experiment_id = admin.create_experiment(f"dataset-race-raw-{unique}")
    auth = admin.transport.settings.username, admin.transport.settings.password
    for round_ in range(2):  # the second round races for a dataset of its own, after one exists
        name = f"shared-{round_}-{unique}"
        run_ids = new_runs(admin, experiment_id, RACERS)

        def post(run_id: str, name: str = name) -> requests.Response:
            return requests.post(f"{admin.uri}/api/2.0/mlflow/runs/log-inputs", auth=auth, timeout=120,
                                 json={"run_id": run_id, "datasets": [dataset(name)]})

        answers = racing(postgres, [lambda r=r: post(r) for r in run_ids])
        won = [r for r, a in zip(run_ids, answers, strict=True) if a.ok]
        lost = [(r, a) for r, a in zip(run_ids, answers, strict=True) if not a.ok]
        assert len(won) == 1 and len(lost) == RACERS - 1, [a.text for a in answers]
        for _, answer in lost:
            assert answer.status_code == 400, answer.text
            body = answer.json()
            assert body["error_code"] == "BAD_REQUEST", body
            assert "duplicate key value violates unique constraint" in body["message"], body
        assert dataset_rows(postgres, experiment_id, name) == 1
        # The losing requests wrote nothing (not even the run's input edge) ...
        assert [inputs_of(admin, r) for r, _ in lost] == [[]] * (RACERS - 1)
        # ... and the same request sent again finds the winner's dataset and succeeds.
        for run_id, _ in lost:
            assert post(run_id).ok
        expected = [(name, f"d-{name}"[:36], [{"key": "mlflow.data.context", "value": "training"}])]
        assert [inputs_of(admin, r) for r in run_ids] == [expected] * RACERS


def test_log_inputs_sends_the_losing_request_again(admin: TrackingClient, postgres: PostgresCluster,
                                                   unique: str) -> None:
    experiment_id = admin.create_experiment(f"dataset-race-client-{unique}")
    run_ids = new_runs(admin, experiment_id, RACERS)
    names = [f"shared-{unique}", f"other-{unique}"]
    racing(postgres, [lambda r=r: admin.log_inputs(r, [dataset(n) for n in names]) for r in run_ids])
    for run_id in run_ids:
        got = inputs_of(admin, run_id)
        assert sorted(n for n, _, _ in got) == sorted(names), (run_id, got)
    assert [dataset_rows(postgres, experiment_id, n) for n in names] == [1, 1]


def test_an_import_with_workers_logs_every_run_s_datasets_once(
        mlflow_src: MlflowServer, mlflow_prod_proxied: MlflowServer, admin: TrackingClient,
        postgres: PostgresCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unique: str) -> None:
    """Runs that share two datasets, imported by `RACERS` workers whose first log-inputs collide."""
    for key, value in mlflow_prod_proxied.client_env().items():  # the MLflow client's credentials
        monkeypatch.setenv(key, value)
    source = MlflowClient(tracking_uri=mlflow_src.uri)
    src_exp = source.create_experiment(f"dataset-race-src-{unique}")
    shared = [Dataset(name=f"{kind}-{unique}", digest=f"{kind}-digest", source_type="local",
                      source=f'{{"uri": "file:///data/{kind}.csv"}}', schema='{"mlflow_colspec": []}',
                      profile='{"num_rows": 3}') for kind in ("train", "eval")]
    src_runs = []
    for i in range(RACERS):
        run = source.create_run(src_exp, run_name=f"r{i}")
        source.log_inputs(run.info.run_id, [
            DatasetInput(shared[0], [InputTag("mlflow.data.context", "training")]),
            DatasetInput(shared[1], [InputTag("mlflow.data.context", "eval"), InputTag("fold", str(i))]),
        ])
        source.set_terminated(run.info.run_id)
        src_runs.append(run.info.run_id)
    exported = export_experiment(TrackingClient(mlflow_src.uri), src_exp, tmp_path / "export")
    assert exported.failed == [] and len(exported.ok_runs) == RACERS

    name = f"dataset-race-dst-{unique}"
    [imported] = racing(postgres, [lambda: import_experiment(admin, tmp_path / "export", name, workers=RACERS)],
                        blocked=RACERS)
    assert imported.failed == [] and imported.outcome().phase == "Succeeded", imported.failed
    assert sorted(r.src_run_id for r in imported.runs) == sorted(src_runs)

    def described(inputs: list) -> list:
        return sorted((d.dataset.name, d.dataset.digest, d.dataset.source, d.dataset.schema, d.dataset.profile,
                       sorted((t.key, t.value) for t in d.tags)) for d in inputs)

    dst = MlflowClient(tracking_uri=admin.uri)
    for r in imported.runs:
        want = described(source.get_run(r.src_run_id).inputs.dataset_inputs)
        got = described(dst.get_run(r.dst_run_id).inputs.dataset_inputs)
        assert got == want and len(got) == 2, (r, got)
    assert [dataset_rows(postgres, imported.experiment_id, d.name) for d in shared] == [1, 1]
