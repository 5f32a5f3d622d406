"""Exports to and imports from object storage: the Job each gets, and what status says about it.

An S3 place mounts no volume; the bucket's keys reach the container only as three
``secretKeyRef`` variables (the session token optional); the payload names the place with this
run's prefix, and ``status.path`` / ``status.sourcePath`` the ``s3://`` URL a user reads.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ferry.api.resources import MLFLOW_EXPORT, MLFLOW_IMPORT
from ferry.controller.convergence import converge
from ferry.controller.lifecycle import Observed, decide
from ferry.controller.schedules import tick
from ferry.outcome import Counts, Outcome
from tests.unit.decisions import (
    IMPORT_REF_SPEC,
    NOW,
    PATH,
    SCHEDULED,
    SETTINGS,
    ago,
    condition,
    created_job,
    job,
    payload,
    pod,
    resource,
    said,
    the_patch,
    volumes,
    waiting_pod,
)

S3 = {"bucket": "ml-backups", "prefix": "nightly", "endpoint": "https://minio.storage:9000", "region": "eu-west-1",
      "credentialsSecret": {"name": "backup-s3"}}  # fmt: skip
SOURCE = {"trackingUri": "http://mlflow:5000", "credentialsSecret": {"name": "mlflow-creds"}}
EXPORT_SPEC = {"source": SOURCE, "objects": {"experiments": ["churn"]}, "destination": {"s3": S3}}
URL = "s3://ml-backups/nightly"
PLACE = {"bucket": "ml-backups", "prefix": "nightly", "endpoint": "https://minio.storage:9000", "region": "eu-west-1",
         "insecureSkipTlsVerify": False}  # fmt: skip
KEYS = [
    {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "backup-s3", "key": "AWS_ACCESS_KEY_ID"}}},
    {"name": "AWS_SECRET_ACCESS_KEY",
     "valueFrom": {"secretKeyRef": {"name": "backup-s3", "key": "AWS_SECRET_ACCESS_KEY"}}},
    {"name": "AWS_SESSION_TOKEN",
     "valueFrom": {"secretKeyRef": {"name": "backup-s3", "key": "AWS_SESSION_TOKEN", "optional": True}}},
]  # fmt: skip
DONE = Outcome.of(Counts(experiments=1, runs=3), [])


def container(job_body: dict) -> dict:
    (only,) = job_body["spec"]["template"]["spec"]["containers"]
    return only


def from_secrets(job_body: dict) -> list[dict]:
    return [e for e in container(job_body)["env"] if "valueFrom" in e]


def test_export_to_s3_mounts_no_claim_and_reads_the_keys_by_reference() -> None:
    create = created_job(decide(resource(MLFLOW_EXPORT, EXPORT_SPEC), Observed(), NOW, SETTINGS))
    assert set(volumes(create.job)) == {"scratch"}
    assert [m["name"] for m in container(create.job)["volumeMounts"]] == ["scratch"]
    assert from_secrets(create.job) == KEYS
    # the tracking server's Secret stays envFrom; the bucket's is read key by key, never whole
    assert container(create.job)["envFrom"] == [{"secretRef": {"name": "mlflow-creds"}}]
    sent = payload(create.job)
    assert (sent["outputPath"], sent["storage"]) == (URL, PLACE) and "inputPath" not in sent
    assert "credentialsSecret" not in sent["storage"]
    assert create.job["metadata"]["annotations"] == {PATH: URL}
    assert the_patch(create.then)["phase"] == "Pending"


def test_export_to_s3_without_a_secret_uses_the_pods_own_credentials() -> None:
    spec = {**EXPORT_SPEC, "destination": {"s3": {"bucket": "ml-backups", "insecureSkipTLSVerify": True}}}
    create = created_job(decide(resource(MLFLOW_EXPORT, spec), Observed(), NOW, SETTINGS))
    assert from_secrets(create.job) == []
    sent = payload(create.job)
    assert sent["outputPath"] == "s3://ml-backups"
    assert sent["storage"] == {"bucket": "ml-backups", "prefix": "", "insecureSkipTlsVerify": True}


def test_finished_s3_export_says_its_url_and_no_claim() -> None:
    running = resource(MLFLOW_EXPORT, EXPORT_SPEC, {
        "phase": "Running", "jobName": "nightly-f0552", "observedGeneration": 1,
        "conditions": [condition("Succeeded", "Unknown", "Running"), condition("Validated", "True", "SpecValid")],
    })  # fmt: skip
    finished = job("nightly-f0552", "Complete", {PATH: URL}, claim=None)
    patch = the_patch(converge(running, finished, [pod(DONE)], NOW))
    assert (patch["phase"], patch["path"]) == ("Succeeded", URL)
    assert patch["claimName"] is None  # removed: an earlier claim does not hold this export


def test_missing_bucket_secret_keeps_the_export_pending_with_the_kubelets_reason() -> None:
    pending = resource(MLFLOW_EXPORT, EXPORT_SPEC, {
        "phase": "Pending", "jobName": "nightly-f0552", "observedGeneration": 1,
        "conditions": [condition("Succeeded", "Unknown", "JobCreated"), condition("Validated", "True", "SpecValid")],
    })  # fmt: skip
    stuck = waiting_pod("CreateContainerConfigError", 'secret "backup-s3" not found')
    patch = the_patch(converge(pending, job("nightly-f0552", "Running", claim=None, created=ago(10)), [stuck], NOW,
                                 300))  # fmt: skip
    words = 'Job nightly-f0552 cannot start: CreateContainerConfigError: secret "backup-s3" not found'
    assert (patch["phase"], patch["message"]) == ("Pending", words)
    assert said(patch, "Succeeded") == ("Unknown", "CreateContainerConfigError", words)


def test_scheduled_s3_export_writes_each_run_under_a_prefix_of_its_own_and_passes_keep() -> None:
    spec = {**EXPORT_SPEC, "schedule": "0 3 * * *", "keep": 4}
    export = resource(MLFLOW_EXPORT, spec, {"phase": "Pending"}, created="2024-01-30T12:00:00Z")
    due = datetime(2024, 1, 31, 3, 0, 5, tzinfo=UTC)
    create = created_job(tick(export, due, SETTINGS, lambda: []))
    run = f"{URL}/nightly-20240131T030000Z"
    assert create.job["metadata"]["annotations"] == {SCHEDULED: "2024-01-31T03:00:00Z", PATH: run}
    sent = payload(create.job)
    assert (sent["outputPath"], sent["keep"]) == (run, 4)
    assert sent["storage"] == {**PLACE, "prefix": "nightly/nightly-20240131T030000Z"}
    assert set(volumes(create.job)) == {"scratch"} and from_secrets(create.job) == KEYS


def test_import_from_s3_reads_the_prefix_with_the_keys_by_reference() -> None:
    spec = {"destination": {"trackingUri": "http://mlflow-dst:5000"},
            "source": {"s3": {**S3, "prefix": "nightly/nightly-20240131T030000Z"}}}  # fmt: skip
    create = created_job(decide(resource(MLFLOW_IMPORT, spec, name="restore"), Observed(), NOW, SETTINGS))
    run = f"{URL}/nightly-20240131T030000Z"
    assert set(volumes(create.job)) == {"scratch"} and from_secrets(create.job) == KEYS
    sent = payload(create.job)
    assert (sent["inputPath"], sent["storage"]["prefix"]) == (run, "nightly/nightly-20240131T030000Z")
    assert "outputPath" not in sent and "envFrom" not in container(create.job)
    patch = the_patch(create.then)
    assert (patch["phase"], patch["sourcePath"]) == ("Pending", run)


def test_import_of_an_s3_export_reads_its_url_with_the_exports_endpoint_and_keys() -> None:
    done = resource(MLFLOW_EXPORT, EXPORT_SPEC, {"phase": "Succeeded", "path": URL}, name="backup")
    create = created_job(decide(resource(MLFLOW_IMPORT, IMPORT_REF_SPEC, name="restore"), Observed(export=done),
                                NOW, SETTINGS))  # fmt: skip
    assert set(volumes(create.job)) == {"scratch"} and from_secrets(create.job) == KEYS
    sent = payload(create.job)
    assert (sent["inputPath"], sent["storage"]) == (URL, PLACE)
    assert the_patch(create.then)["sourcePath"] == URL


def test_import_of_an_s3_export_whose_spec_lost_its_bucket_fails_and_says_so() -> None:
    changed = {**EXPORT_SPEC, "destination": {"pvc": {"claimName": "backups"}}}
    done = resource(MLFLOW_EXPORT, changed, {"phase": "Succeeded", "path": URL}, name="backup")
    actions = decide(resource(MLFLOW_IMPORT, IMPORT_REF_SPEC, name="restore"), Observed(export=done), NOW, SETTINGS)
    patch = the_patch(actions)
    assert patch["phase"] == "Failed"
    assert patch["message"] == f"MlflowExport backup wrote {URL}, but its spec no longer names spec.destination.s3"
