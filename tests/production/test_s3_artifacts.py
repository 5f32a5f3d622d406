"""Artifacts in S3 without the artifact proxy, against a real S3 server (SeaweedFS) and MLflow.

The backend itself (`ferry.tracking.s3`): a tree with an empty file, a nested directory and a file
above the multipart threshold goes up and comes back byte-equal; wrong keys, a missing bucket or
object and an unreachable endpoint are one-line `ferry.errors` exceptions. Then the engine: an
experiment whose run was written into S3 by the real `mlflow` client of a ``--no-serve-artifacts``
server is exported and imported into the proxied production server, and the other way round, an
import into the direct server writes the artifacts into its bucket itself.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from devstack.mlflow_server import MlflowServer
from devstack.procs import free_port
from devstack.production import DIRECT_BUCKET
from devstack.s3 import S3Server
from ferry.engine.experiments import export_experiment, import_experiment
from ferry.errors import FerryError, NotFoundError, ServerError
from ferry.tracking import ArtifactStore, TrackingClient
from ferry.tracking.s3 import S3Artifacts, s3_client

pytestmark = pytest.mark.slow

MiB = 1 << 20
THRESHOLD = 5 * MiB  # S3's smallest part; the default (64 MiB) is lowered here, not written
ENVIRONMENT = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
               "MLFLOW_TRACKING_TOKEN", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
               "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_CA_BUNDLE", "MLFLOW_S3_IGNORE_TLS")


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Exactly `env` in the environment, as far as MLflow, S3 and ferry read it."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def make_tree(root: Path, big: int = 0) -> dict[str, bytes]:
    """Files under `root` (an empty one, a nested directory, optionally one of `big` bytes) -> contents."""
    files = {
        "empty.txt": b"",
        "model/MLmodel": b"artifact_path: model\nflavors: {}\n",
        "model/data/nested/weights.bin": os.urandom(70_000),
        "reports/summary report.json": b'{"accuracy": 0.93}\n',
    }
    if big:
        files["model/data/big.bin"] = os.urandom(big)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def one_line(err: FerryError, *words: str) -> None:
    message = str(err)
    assert "\n" not in message and "Traceback" not in message, message
    for word in words:
        assert word in message, message


@pytest.fixture
def bucket(exports_bucket: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's exports bucket, with the S3 server's endpoint and keys in the environment.
    Each test writes under a prefix of its own."""
    use_env(monkeypatch, s3.env())
    return exports_bucket


@pytest.fixture
def root(bucket: str, unique: str) -> str:
    """A fresh artifact root in the bucket: ``s3://<bucket>/ferry-units/<unique>``."""
    return f"s3://{bucket}/ferry-units/{unique}"


# -- the backend ------------------------------------------------------------------------------------

def test_a_tree_with_an_empty_file_and_a_multipart_file_round_trips_byte_equal(
        s3: S3Server, bucket: str, root: str, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src", big=2 * THRESHOLD + 123)
    backend = S3Artifacts(root, multipart_threshold=THRESHOLD, multipart_chunksize=THRESHOLD)
    for rel in files:
        assert backend.upload(tmp_path / "src" / rel, rel) == len(files[rel])

    prefix = root.removeprefix(f"s3://{bucket}/")
    assert sorted(s3.keys(bucket, prefix + "/")) == sorted(f"{prefix}/{rel}" for rel in files)
    etag = s3.client().head_object(Bucket=bucket, Key=f"{prefix}/model/data/big.bin")["ETag"]
    assert etag.strip('"').endswith("-3"), f"not uploaded in three parts: {etag}"
    small = s3.client().head_object(Bucket=bucket, Key=f"{prefix}/model/MLmodel")["ETag"]
    assert "-" not in small, small

    assert [(f.path, f.is_dir, f.file_size) for f in backend.list("")] == [
        ("empty.txt", False, 0), ("model", True, None), ("reports", True, None)]
    assert [f.path for f in backend.list("model/data")] == ["model/data/big.bin", "model/data/nested"]
    assert backend.list("model/MLmodel") == [], "a file has no children"

    # Through the artifact layer, as the engine reads it: temporary names renamed, none left over.
    store = ArtifactStore(TrackingClient("http://127.0.0.1:9"), root)
    assert isinstance(store._backend, S3Artifacts)
    assert store.download_tree(tmp_path / "back") == (len(files), sum(map(len, files.values())))
    assert read_tree(tmp_path / "back") == files
    assert not list((tmp_path / "back").rglob("*.part"))
    assert store.read_bytes("reports/summary report.json") == files["reports/summary report.json"]

    # A multipart download (parts fetched concurrently) is byte-equal too.
    backend.download("model/data/big.bin", tmp_path / "big.bin")
    assert (tmp_path / "big.bin").read_bytes() == files["model/data/big.bin"]


def test_one_client_per_configuration_is_shared(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = S3Artifacts(f"{root}/a"), S3Artifacts(f"{root}/b")
    assert first.client is second.client is s3_client()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "other")
    assert s3_client() is not first.client, "changed keys must not reuse the old client"


def test_wrong_keys_are_a_one_line_server_error(root: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "f.txt").write_text("x")
    S3Artifacts(root).upload(tmp_path / "f.txt", "f.txt")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    wrong = S3Artifacts(root)
    for attempt in (lambda: wrong.list(""), lambda: wrong.upload(tmp_path / "f.txt", "g.txt"),
                    lambda: wrong.download("f.txt", tmp_path / "back.txt")):
        with pytest.raises(ServerError) as err:
            attempt()
        one_line(err.value, "access denied", root, "AWS_SECRET_ACCESS_KEY")
        assert err.value.__cause__ is None and err.value.__suppress_context__


def test_a_missing_bucket_or_object_is_not_found(root: str, tmp_path: Path, unique: str) -> None:
    missing = S3Artifacts(f"s3://ferry-missing-{unique}/root")  # never written: SeaweedFS would create it
    with pytest.raises(NotFoundError) as listing:
        missing.list("")
    one_line(listing.value, f"ferry-missing-{unique}", "does not exist")
    with pytest.raises(NotFoundError) as download:
        missing.download("f.txt", tmp_path / "f.txt")
    one_line(download.value, f"s3://ferry-missing-{unique}/root/f.txt")

    store = ArtifactStore(TrackingClient("http://127.0.0.1:9"), root)
    with pytest.raises(NotFoundError) as obj:
        store.download_file("no/such.bin", tmp_path / "out" / "such.bin")
    one_line(obj.value, f"{root}/no/such.bin", "not found")
    assert not list((tmp_path / "out").iterdir()), "a failed download leaves no file behind"
    assert store.list("no") == []


def test_an_unreachable_endpoint_is_a_server_error_within_seconds(
        root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", closed)
    (tmp_path / "f.txt").write_text("x")
    backend = S3Artifacts(root)
    for attempt in (lambda: backend.list(""), lambda: backend.upload(tmp_path / "f.txt", "f.txt"),
                    lambda: backend.download("f.txt", tmp_path / "back.txt")):
        started = time.monotonic()
        with pytest.raises(ServerError) as err:
            attempt()
        assert time.monotonic() - started < 15
        one_line(err.value, "cannot reach S3", closed, "MLFLOW_S3_ENDPOINT_URL")


def test_tls_to_a_plain_endpoint_is_a_server_error(s3: S3Server, root: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3.endpoint_url.replace("http://", "https://"))
    with pytest.raises(ServerError) as err:
        S3Artifacts(root).list("")
    one_line(err.value, "TLS failure", "AWS_CA_BUNDLE", "MLFLOW_S3_IGNORE_TLS")


# -- the engine -------------------------------------------------------------------------------------

def seed_run(server: MlflowServer, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict]:
    """An experiment with one run and a tree of artifacts, written by the real MLflow client."""
    use_env(monkeypatch, server.client_env())
    client = MlflowClient(tracking_uri=server.uri)
    experiment_id = client.create_experiment(name)
    run = client.create_run(experiment_id)
    files = make_tree(tmp_path / "seed")
    client.log_artifacts(run.info.run_id, str(tmp_path / "seed"))
    client.log_param(run.info.run_id, "alpha", "0.5")
    client.set_terminated(run.info.run_id)
    return run.info.run_id, files


def move_experiment(src: MlflowServer, dst: MlflowServer, name: str, tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """Our engine: export `name` from `src`, import it into `dst`; each with its own client_env."""
    out = tmp_path / "export"
    use_env(monkeypatch, src.client_env())
    exported = export_experiment(TrackingClient(src.uri), name, out)
    assert exported.failed == [] and len(exported.ok_runs) == 1, exported
    use_env(monkeypatch, dst.client_env())
    imported = import_experiment(TrackingClient(dst.uri), out)
    assert imported.failed == [] and len(imported.runs) == 1, imported
    return imported.runs[0].dst_run_id, out / "runs" / exported.ok_runs[0] / "artifacts"


def artifacts_of(server: MlflowServer, run_id: str, dest: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Every artifact of `run_id`, downloaded by the real MLflow client."""
    use_env(monkeypatch, server.client_env())
    MlflowClient(tracking_uri=server.uri).download_artifacts(run_id, "", str(dest))
    return read_tree(dest)


def test_an_experiment_in_direct_s3_moves_to_the_proxied_server_byte_equal(
        mlflow_prod_direct: MlflowServer, mlflow_prod_proxied: MlflowServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, unique: str) -> None:
    name = f"s3-direct-out-{unique}"
    src_run, files = seed_run(mlflow_prod_direct, name, tmp_path, monkeypatch)
    src_uri = MlflowClient(tracking_uri=mlflow_prod_direct.uri).get_run(src_run).info.artifact_uri
    assert src_uri.startswith(f"s3://{DIRECT_BUCKET}/"), src_uri

    dst_run, exported = move_experiment(mlflow_prod_direct, mlflow_prod_proxied, name, tmp_path, monkeypatch)
    assert read_tree(exported) == files
    assert artifacts_of(mlflow_prod_proxied, dst_run, tmp_path / "dst", monkeypatch) == files


def test_an_import_into_a_direct_s3_server_writes_the_bucket_itself(
        mlflow_prod_proxied: MlflowServer, mlflow_prod_direct: MlflowServer, s3: S3Server, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, unique: str) -> None:
    name = f"s3-direct-in-{unique}"
    _, files = seed_run(mlflow_prod_proxied, name, tmp_path, monkeypatch)

    dst_run, _ = move_experiment(mlflow_prod_proxied, mlflow_prod_direct, name, tmp_path, monkeypatch)
    dst_uri = MlflowClient(tracking_uri=mlflow_prod_direct.uri).get_run(dst_run).info.artifact_uri
    assert dst_uri.startswith(f"s3://{DIRECT_BUCKET}/artifacts/"), dst_uri
    prefix = dst_uri.removeprefix(f"s3://{DIRECT_BUCKET}/") + "/"
    assert sorted(s3.keys(DIRECT_BUCKET, prefix)) == sorted(prefix + rel for rel in files)
    objects = s3.client()
    for rel, data in files.items():
        assert objects.get_object(Bucket=DIRECT_BUCKET, Key=prefix + rel)["Body"].read() == data, rel
    assert artifacts_of(mlflow_prod_direct, dst_run, tmp_path / "dst", monkeypatch) == files

    # A rerun finds the run imported before and writes nothing twice.
    use_env(monkeypatch, mlflow_prod_direct.client_env())
    again = import_experiment(TrackingClient(mlflow_prod_direct.uri), tmp_path / "export")
    assert again.failed == [] and [r.dst_run_id for r in again.runs] in ([], [dst_run]), again
    assert sorted(s3.keys(DIRECT_BUCKET, prefix)) == sorted(prefix + rel for rel in files)
