"""Exports into and imports from an S3 bucket (SeaweedFS), as users run them: the commands as subprocesses.

A round trip export-experiment -> ``s3://`` -> import-experiment carries every run field by field,
a file above the (lowered) multipart threshold in parts and byte-equal, and leaves no local copy;
an export killed with SIGKILL leaves no manifest, its import is refused in one line, and its rerun
skips the runs it had finished; wrong keys, an unknown bucket, an unreachable endpoint, TLS to a
plain endpoint and a prefix that holds someone else's objects are one line and a non-zero exit,
with nothing written. `prune` keeps the newest finished exports and never an unfinished one.

Every test writes under a prefix of its own in the session's exports bucket; no tracking server
stores its artifacts on S3 here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from mlflow.entities import LoggedModelStatus
from mlflow.tracking import MlflowClient

from devstack.mlflow_server import MlflowServer
from devstack.procs import free_port
from devstack.s3 import S3Server
from ferry.api.job import JobPayload
from ferry.cli import experiments
from ferry.errors import InputError
from ferry.outcome import Counts, Outcome
from ferry.runner import engines
from ferry.runner.job import execute, read_spec
from ferry.storage import layout, spool
from ferry.storage.location import S3Location
from ferry.storage.transfer import export_to, finished_exports, import_from, prune
from ferry.tracking import TrackingClient, tags_of
from tests.engine.seed import make_run, run_view, seed_experiment

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
MiB = 1 << 20
THRESHOLD = 5 * MiB  # S3's smallest part: the default (64 MiB) lowered through the environment


@pytest.fixture
def bucket(exports_bucket: str) -> str:
    return exports_bucket


@pytest.fixture
def env(s3: S3Server, tmp_path: Path) -> dict[str, str]:
    """The commands' environment: S3 keys and region only (no MLflow S3 variables), a spool we can watch."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("AWS_", "MLFLOW_", "FERRY_S3_"))}
    full.update(FERRY_HTTP_MAX_ATTEMPTS="1", AWS_ACCESS_KEY_ID=s3.access_key, AWS_SECRET_ACCESS_KEY=s3.secret_key,
                AWS_DEFAULT_REGION="us-east-1", FERRY_SPOOL_DIR=str(tmp_path / "spool"),
                FERRY_S3_MULTIPART_THRESHOLD=str(THRESHOLD), FERRY_S3_MULTIPART_CHUNKSIZE=str(THRESHOLD))
    (tmp_path / "spool").mkdir()
    return full


def cli(name: str, *args: str, env: dict[str, str], uri: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True, timeout=300,
                          env={**env, "MLFLOW_TRACKING_URI": uri})


def one_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def by_source(client: TrackingClient, experiment_id: str) -> dict[str, str]:
    return {tags_of(r["data"])["ferry.source.run_id"]: r["info"]["run_id"]
            for r in client.search_runs([experiment_id], run_view_type="ALL")}


def test_round_trip_through_a_bucket_field_by_field_with_a_multipart_file(
        mlflow_src: MlflowServer, mlflow_dst: MlflowServer, s3: S3Server, bucket: str, env: dict[str, str],
        tmp_path: Path, unique: str) -> None:
    seeded = seed_experiment(mlflow_src.uri, f"s3-trip-{unique}", tmp_path / "seed")
    client = MlflowClient(tracking_uri=mlflow_src.uri)
    heavy = make_run(client, seeded.experiment_id, "heavy", 5_000)
    big = os.urandom(2 * THRESHOLD + 4321)
    (tmp_path / "heavy").mkdir()
    (tmp_path / "heavy" / "weights.bin").write_bytes(big)
    client.log_artifacts(heavy, str(tmp_path / "heavy"), "model")
    # The trained model, logged the MLflow 3 way: an object of its own, streamed like a run.
    trained = client.create_logged_model(seeded.experiment_id, name="trained", source_run_id=heavy, model_type="clf")
    weights = os.urandom(THRESHOLD + 999)
    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "weights.bin").write_bytes(weights)
    client.log_model_artifacts(trained.model_id, str(tmp_path / "trained"))
    client.finalize_logged_model(trained.model_id, LoggedModelStatus.READY)
    prefix = f"ferry-exports/{unique}/exp"
    url = f"s3://{bucket}/{prefix}"

    done = cli("export-experiment", "--experiment", seeded.experiment_name, "--output-dir", url,
               "--s3-endpoint-url", s3.endpoint_url, "--export-deleted-runs", "True", env=env, uri=mlflow_src.uri)
    assert done.returncode == 0, done.stderr
    assert url in done.stdout and str(tmp_path) not in done.stdout, done.stdout
    assert s3.secret_key not in done.stdout + done.stderr
    assert list((tmp_path / "spool").iterdir()) == [], "the local spool is removed"

    runs = sorted([*seeded.all_runs, heavy])
    keys = set(s3.keys(bucket, prefix + "/"))
    assert f"{prefix}/{layout.MANIFEST}" in keys and f"{prefix}/experiment.json" in keys
    logged = f"logged_models/{trained.model_id}"
    objects = sorted([logged, *(f"runs/{r}" for r in runs)])
    assert sorted(k.removeprefix(f"{prefix}/{layout.OBJECTS}/").removesuffix(".done")
                  for k in keys if k.startswith(f"{prefix}/{layout.OBJECTS}/")) == objects
    manifest = json.loads(s3.client().get_object(Bucket=bucket, Key=f"{prefix}/{layout.MANIFEST}")["Body"].read())
    assert manifest["objects"] == objects and manifest["phase"] == "Succeeded"
    assert f"{prefix}/{logged}/artifacts/weights.bin" in keys
    etag = s3.client().head_object(Bucket=bucket, Key=f"{prefix}/runs/{heavy}/artifacts/model/weights.bin")["ETag"]
    assert etag.strip('"').endswith("-3"), f"not uploaded in three parts: {etag}"

    name = f"s3-imported-{unique}"
    done = cli("import-experiment", "--experiment-name", name, "--input-dir", url,
               "--s3-endpoint-url", s3.endpoint_url, env=env, uri=mlflow_dst.uri)
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "spool").iterdir()) == []
    src, dst = TrackingClient(mlflow_src.uri), TrackingClient(mlflow_dst.uri)
    exp = dst.get_experiment_by_name(name)
    assert exp is not None and tags_of(exp)["team"] == "ferry"
    mapping = by_source(dst, exp["experiment_id"])
    assert sorted(mapping) == runs
    for src_id, dst_id in mapping.items():
        assert run_view(dst, dst_id) == run_view(src, src_id), src_id
    assert run_view(dst, mapping[heavy])["artifacts"]["model/weights.bin"] == big
    dst_client = MlflowClient(tracking_uri=mlflow_dst.uri)
    (model,) = dst_client.search_logged_models([exp["experiment_id"]])
    assert (model.name, model.source_run_id, model.model_type) == ("trained", mapping[heavy], "clf")
    fetched = mlflow.artifacts.download_artifacts(artifact_uri=f"{model.artifact_location}/weights.bin",
                                                  dst_path=str(tmp_path / "fetched"), tracking_uri=mlflow_dst.uri)
    assert Path(fetched).read_bytes() == weights
    assert tags_of(dst.get_run(mapping[seeded.child])["data"])["mlflow.parentRunId"] == mapping[seeded.parent]


def test_a_killed_export_is_refused_by_import_and_its_rerun_skips_the_finished_runs(
        mlflow_src: MlflowServer, mlflow_dst: MlflowServer, s3: S3Server, bucket: str, env: dict[str, str],
        tmp_path: Path, unique: str) -> None:
    client = MlflowClient(tracking_uri=mlflow_src.uri)
    exp_id = client.create_experiment(f"s3-killed-{unique}")
    (tmp_path / "files").mkdir()
    for i in range(3):
        (tmp_path / "files" / f"part-{i}.bin").write_bytes(os.urandom(150_000))
    run_ids = []
    for i in range(10):
        run_id = make_run(client, exp_id, f"run-{i}", i * 1_000)
        client.log_param(run_id, "i", str(i))
        client.log_artifacts(run_id, str(tmp_path / "files"))
        run_ids.append(run_id)
    prefix = f"ferry-exports/{unique}/killed"
    url = f"s3://{bucket}/{prefix}"
    marker_prefix = f"{prefix}/{layout.OBJECTS}/"
    args = [str(BIN / "export-experiment"), "--experiment", exp_id, "--output-dir", url,
            "--s3-endpoint-url", s3.endpoint_url, "--workers", "1", "--quiet"]

    proc = subprocess.Popen(args, env={**env, "MLFLOW_TRACKING_URI": mlflow_src.uri},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(s3.keys(bucket, marker_prefix)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the export ended before it could be killed"
    finished = {k.removeprefix(marker_prefix + "runs/").removesuffix(".done") for k in s3.keys(bucket, marker_prefix)}
    assert 3 <= len(finished) < len(run_ids)
    keys = set(s3.keys(bucket, prefix + "/"))
    assert f"{prefix}/{layout.MANIFEST}" not in keys
    before = {r: s3.client().head_object(Bucket=bucket, Key=f"{prefix}/runs/{r}/run.json")["LastModified"]
              for r in finished}

    refused = cli("import-experiment", "--experiment-name", f"never-{unique}", "--input-dir", url,
                  "--s3-endpoint-url", s3.endpoint_url, env=env, uri=mlflow_dst.uri)
    one_line(refused, url, "unfinished export")
    assert TrackingClient(mlflow_dst.uri).get_experiment_by_name(f"never-{unique}") is None

    done = cli("export-experiment", *args[1:], env=env, uri=mlflow_src.uri)
    assert done.returncode == 0, done.stderr
    assert f"({len(finished)} already there)" in done.stdout, done.stdout
    for run_id, modified in before.items():  # skipped, not uploaded again
        assert s3.client().head_object(Bucket=bucket, Key=f"{prefix}/runs/{run_id}/run.json")["LastModified"] == modified
    doc = json.loads(s3.client().get_object(Bucket=bucket, Key=f"{prefix}/experiment.json")["Body"].read())
    assert sorted(doc["mlflow"]["runs"]) == sorted(run_ids)

    done = cli("import-experiment", "--experiment-name", f"s3-resumed-{unique}", "--input-dir", url,
               "--s3-endpoint-url", s3.endpoint_url, env=env, uri=mlflow_dst.uri)
    assert done.returncode == 0, done.stderr
    dst = TrackingClient(mlflow_dst.uri)
    exp = dst.get_experiment_by_name(f"s3-resumed-{unique}")
    assert exp is not None and sorted(by_source(dst, exp["experiment_id"])) == sorted(run_ids)


def test_bad_destinations_are_one_line_and_write_nothing(
        mlflow_src: MlflowServer, mlflow_dst: MlflowServer, s3: S3Server, bucket: str, env: dict[str, str],
        unique: str) -> None:
    exp_id = MlflowClient(tracking_uri=mlflow_src.uri).create_experiment(f"s3-bad-{unique}")
    prefix = f"ferry-exports/{unique}/bad"
    url = f"s3://{bucket}/{prefix}"
    buckets = {b["Name"] for b in s3.client().list_buckets()["Buckets"]}

    def export(target: str, endpoint: str = s3.endpoint_url, **extra: str) -> subprocess.CompletedProcess[str]:
        """The command in this process (a subprocess costs seconds each; the round trip runs those)."""
        args = ["--experiment", exp_id, "--output-dir", target, "--s3-endpoint-url", endpoint]
        result = CliRunner().invoke(experiments.export_experiment, args,
                                    env={**env, "MLFLOW_TRACKING_URI": mlflow_src.uri, **extra})
        return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)

    wrong = cli("export-experiment", "--experiment", exp_id, "--output-dir", url, "--s3-endpoint-url",
                s3.endpoint_url, env={**env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}, uri=mlflow_src.uri)
    one_line(wrong, "access denied", bucket, "AWS_SECRET_ACCESS_KEY")
    assert "not-the-secret" not in wrong.stderr
    one_line(export(f"s3://ferry-missing-{unique}/x"), f"ferry-missing-{unique}", "does not exist")
    closed = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    one_line(export(url, closed), "cannot reach S3", closed, "--s3-endpoint-url")
    assert time.monotonic() - started < 30
    one_line(export(url, s3.endpoint_url.replace("http://", "https://")), "TLS failure", "AWS_CA_BUNDLE")
    one_line(export(f"gs://{bucket}/x"), "gs:// is not supported")
    one_line(export("s3://Not_A_Bucket/x"), "invalid bucket")
    assert s3.keys(bucket, prefix + "/") == []
    assert {b["Name"] for b in s3.client().list_buckets()["Buckets"]} == buckets, "no bucket was created"

    s3.client().put_object(Bucket=bucket, Key=f"{prefix}/someone-else.txt", Body=b"not ours")
    one_line(export(url), url, "not an mlflow-ferry export")
    assert s3.keys(bucket, prefix + "/") == [f"{prefix}/someone-else.txt"]
    one_line(cli("import-experiment", "--experiment-name", f"x-{unique}", "--input-dir", f"{url}/nothing",
                 "--s3-endpoint-url", s3.endpoint_url, env=env, uri=mlflow_dst.uri), "holds no export")


def test_prune_keeps_the_newest_finished_exports_and_never_an_unfinished_one(
        s3: S3Server, bucket: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        unique: str) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "FERRY_SPOOL_DIR"):
        monkeypatch.setenv(name, env[name])
    parent = S3Location(bucket=bucket, prefix=f"ferry-exports/{unique}/scheduled", endpoint=s3.endpoint_url)

    def export(name: str, fail: bool = False) -> None:
        def work(root: Path) -> Outcome:
            (root / "experiments.json").write_text(json.dumps({"mlflow": {"experiments": []}, "name": name}))
            if fail:  # one run finished and moved to the bucket, then the export stops
                (root / "runs" / "r1").mkdir(parents=True)
                (root / "runs" / "r1" / "run.json").write_text("{}")
                spool.current().finished(root / "runs" / "r1")
                raise InputError("stopped")
            return Outcome.of(Counts(experiments=1))

        try:
            assert export_to(parent.child(name), work).path == parent.child(name).url
        except InputError:
            assert fail

    for stamp in ("20260101T000000Z", "20260102T000000Z", "20260103T000000Z"):
        export(f"nightly-{stamp}")
    export("nightly-20260104T000000Z", fail=True)  # no manifest: unfinished
    export("other-20260101T000000Z")
    for stamp in ("20250101T000000Z", "20250102T000000Z"):  # a sibling whose names sort after nightly-'s
        export(f"nightly-full-{stamp}")

    def listed() -> list[str]:
        return sorted({k.split("/")[3] for k in s3.keys(bucket, parent.prefix + "/")})

    assert [loc.prefix.rsplit("/", 1)[1] for loc in finished_exports(parent, "nightly")] == [
        "nightly-20260101T000000Z", "nightly-20260102T000000Z", "nightly-20260103T000000Z"]
    removed = prune(parent, 1, resource="nightly", current="nightly-20260103T000000Z")
    assert [loc.url for loc in removed] == [parent.child("nightly-20260101T000000Z").url,
                                            parent.child("nightly-20260102T000000Z").url]
    assert listed() == ["nightly-20260103T000000Z", "nightly-20260104T000000Z", "nightly-full-20250101T000000Z",
                        "nightly-full-20250102T000000Z", "other-20260101T000000Z"]
    removed = prune(parent, 1, resource="nightly-full", current="nightly-full-20250102T000000Z")
    assert [loc.url for loc in removed] == [parent.child("nightly-full-20250101T000000Z").url]
    assert "nightly-20260103T000000Z" in listed()

    with pytest.raises(InputError, match="unfinished export"):
        import_from(parent.child("nightly-20260104T000000Z"), lambda root: Outcome.of(Counts()))
    seen: list[str] = []
    import_from(parent.child("nightly-20260103T000000Z"),
                lambda root: seen.append((root / "experiments.json").read_text()) or Outcome.of(Counts(runs=1)))
    assert json.loads(seen[0])["name"] == "nightly-20260103T000000Z"


def test_a_scheduled_export_job_writes_its_own_prefix_prunes_beyond_keep_and_an_import_job_reads_it(
        mlflow_src: MlflowServer, mlflow_dst: MlflowServer, s3: S3Server, bucket: str, env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch, unique: str) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "FERRY_SPOOL_DIR"):
        monkeypatch.setenv(name, env[name])
    client = MlflowClient(tracking_uri=mlflow_src.uri)
    exp_name = f"s3-job-{unique}"
    exp_id = client.create_experiment(exp_name)
    run_id = make_run(client, exp_id, "only", 0)
    client.log_param(run_id, "alpha", "1")
    s3_spec = {"bucket": bucket, "prefix": f"ferry-exports/{unique}/jobs", "endpoint": s3.endpoint_url}
    spec = {"source": {"trackingUri": mlflow_src.uri}, "objects": {"experiments": [exp_name]},
            "destination": {"s3": s3_spec}, "schedule": "0 * * * *", "keep": 1}
    parent = S3Location(bucket=bucket, prefix=s3_spec["prefix"], endpoint=s3.endpoint_url)
    for stamp in ("20260101T000000Z", "20260101T010000Z"):
        payload = JobPayload(kind="MlflowExport", name="nightly", namespace="d", spec=spec, keep=1,
                             storage=parent.child(f"nightly-{stamp}"), output_path=parent.child(f"nightly-{stamp}").url)
        outcome = execute(engines.ENGINES["MlflowExport"], read_spec(payload), payload, None)
        assert outcome.phase == "Succeeded" and outcome.counts.runs == 1, outcome
        assert outcome.path == parent.child(f"nightly-{stamp}").url
    assert [loc.prefix for loc in finished_exports(parent, "nightly")] == [parent.child("nightly-20260101T010000Z").prefix]

    source = {"s3": {**s3_spec, "prefix": f"{s3_spec['prefix']}/nightly-20260101T010000Z"}}
    spec = {"destination": {"trackingUri": mlflow_dst.uri}, "source": source,
            "target": {"renames": {"experiments": {exp_name: f"{exp_name}-copy"}}}}
    payload = JobPayload(kind="MlflowImport", name="restore", namespace="d", spec=spec,
                         storage=S3Location.model_validate(source["s3"]))
    outcome = execute(engines.ENGINES["MlflowImport"], read_spec(payload), payload, None)
    assert outcome.phase == "Succeeded" and outcome.counts.runs == 1, outcome
    dst = TrackingClient(mlflow_dst.uri)
    exp = dst.get_experiment_by_name(f"{exp_name}-copy")
    assert exp is not None
    [copy] = dst.search_runs([exp["experiment_id"]])
    assert run_view(dst, copy["info"]["run_id"]) == run_view(TrackingClient(mlflow_src.uri), run_id)
