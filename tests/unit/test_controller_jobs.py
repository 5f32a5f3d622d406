"""The Job a resource gets: owned, labelled, locked down, and with no secret in it."""

from __future__ import annotations

import json

from ferry.api.job import ENV_VAR
from ferry.api.resources import KIROFRAME_SYNC, MLFLOW_EXPORT, MLFLOW_MIRROR
from ferry.controller.jobs import build_job, one_shot_job_name, scheduled_job_name, sync_now_job_name
from ferry.controller.resource import Resource
from ferry.controller.settings import OperatorSettings

SETTINGS = OperatorSettings(job_image="ferry:test", job_backoff_limit=2)


def body(kind: str, spec: dict) -> dict:
    return {
        "apiVersion": "ferry.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "nightly", "namespace": "ml", "uid": "1234-abcd", "generation": 1},
        "spec": spec,
    }


EXPORT_SPEC = {
    "source": {"trackingUri": "http://mlflow:5000", "credentialsSecret": {"name": "mlflow-creds"}},
    "objects": {"experiments": ["e"]},
    "destination": {"pvc": {"claimName": "backups", "subPath": "x"}},
    "job": {"backoffLimit": 0, "env": [{"name": "EXTRA", "value": "1"}], "nodeSelector": {"pool": "batch"}},
}


def export_job() -> dict:
    resource = Resource(MLFLOW_EXPORT, body("MlflowExport", EXPORT_SPEC))
    spec = MLFLOW_EXPORT.spec.model_validate(EXPORT_SPEC)
    return build_job(resource, spec, job_name="nightly-abcde", settings=SETTINGS, claim_name="backups",
                     output_path="/data/x")


def test_job_is_owned_labelled_and_takes_spec_job_over_defaults() -> None:
    job = export_job()
    meta = job["metadata"]
    assert meta["ownerReferences"] == [
        {"apiVersion": "ferry.dev/v1alpha1", "kind": "MlflowExport", "name": "nightly", "uid": "1234-abcd",
         "controller": True, "blockOwnerDeletion": True}
    ]  # fmt: skip
    assert meta["labels"]["ferry.dev/kind"] == "MlflowExport" and meta["labels"]["ferry.dev/name"] == "nightly"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "ferry-operator"
    assert job["spec"]["template"]["metadata"]["labels"] == meta["labels"]
    assert job["spec"]["backoffLimit"] == 0  # spec.job wins over the operator's 2
    assert job["spec"]["activeDeadlineSeconds"] == SETTINGS.job_active_deadline_seconds
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["nodeSelector"] == {"pool": "batch"}
    assert pod["serviceAccountName"] == "ferry-job"


def test_job_runs_non_root_with_read_only_root_and_scratch() -> None:
    pod = export_job()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["command"] == ["ferry", "job"] and container["image"] == "ferry:test"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }  # fmt: skip
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert set(mounts) == {"/tmp", "/data"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["scratch"] == {"name": "scratch", "emptyDir": {}}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": "backups", "readOnly": False}


def test_credentials_only_by_reference_and_spec_travels_as_json() -> None:
    container = export_job()["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "mlflow-creds"}}]
    env = {e["name"]: e for e in container["env"]}
    payload = json.loads(env[ENV_VAR]["value"])
    assert payload["spec"] == EXPORT_SPEC and payload["outputPath"] == "/data/x"
    assert env["EXTRA"] == {"name": "EXTRA", "value": "1"}
    literal_names = {e["name"] for e in container["env"] if "value" in e}
    assert not {n for n in literal_names if "TOKEN" in n or "PASSWORD" in n}


def test_kiroframe_token_comes_from_secret_key_ref() -> None:
    spec = {
        "source": {"trackingUri": "http://mlflow:5000"},
        "kiroframe": {"url": "https://kf.example", "tokenSecret": {"name": "kf", "key": "profiling"}},
        "schedule": "*/5 * * * *",
    }
    resource = Resource(KIROFRAME_SYNC, body("KiroframeSync", spec))
    job = build_job(resource, KIROFRAME_SYNC.spec.model_validate(spec), job_name="n-1", settings=SETTINGS,
                    watermark=42)
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["KIROFRAME_TOKEN"] == {
        "name": "KIROFRAME_TOKEN", "valueFrom": {"secretKeyRef": {"name": "kf", "key": "profiling"}}
    }  # fmt: skip
    assert json.loads(env[ENV_VAR]["value"])["watermark"] == 42
    assert "envFrom" not in container
    assert [v["name"] for v in job["spec"]["template"]["spec"]["volumes"]] == ["scratch"]
    assert container["resources"]["limits"] == {"memory": SETTINGS.job_memory_limit}


MIRROR_SPEC = {
    "source": {"trackingUri": "http://mlflow:5000", "credentialsSecret": {"name": "primary"}},
    "destination": {"trackingUri": "http://mlflow-standby:5000", "credentialsSecret": {"name": "standby"}},
    "schedule": "*/5 * * * *",
}


def test_a_mirrors_two_credentials_secrets_reach_the_job_under_prefixes_of_their_own() -> None:
    """Both Secrets hold MLFLOW_TRACKING_* keys: unprefixed, the second would shadow the first."""
    resource = Resource(MLFLOW_MIRROR, body("MlflowMirror", MIRROR_SPEC))
    job = build_job(resource, MLFLOW_MIRROR.spec.model_validate(MIRROR_SPEC), job_name="n-1", settings=SETTINGS,
                    watermark=42, last_full_compare=41)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "primary"}, "prefix": "SRC_"},
                                    {"secretRef": {"name": "standby"}, "prefix": "DST_"}]
    payload = json.loads({e["name"]: e for e in container["env"]}[ENV_VAR]["value"])
    assert (payload["kind"], payload["watermark"], payload["lastFullCompare"]) == ("MlflowMirror", 42, 41)
    assert [v["name"] for v in job["spec"]["template"]["spec"]["volumes"]] == ["scratch"]

    only_source = {**MIRROR_SPEC, "destination": {"trackingUri": "http://mlflow-standby:5000"}}
    job = build_job(Resource(MLFLOW_MIRROR, body("MlflowMirror", only_source)),
                    MLFLOW_MIRROR.spec.model_validate(only_source), job_name="n-1", settings=SETTINGS)
    assert job["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "primary"}, "prefix": "SRC_"}]


def test_a_databricks_workspace_gets_its_secret_as_environment_and_its_configuration_file_mounted() -> None:
    """DATABRICKS_* keys arrive by envFrom; a .databrickscfg key, if the Secret has one, as a file the SDK is told of."""
    spec_body = {**MIRROR_SPEC, "source": {"trackingUri": "databricks://prod", "credentialsSecret": {"name": "dbx"}}}
    job = build_job(Resource(MLFLOW_MIRROR, body("MlflowMirror", spec_body)),
                    MLFLOW_MIRROR.spec.model_validate(spec_body), job_name="n-1", settings=SETTINGS)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["envFrom"][0] == {"secretRef": {"name": "dbx"}, "prefix": "SRC_"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SRC_DATABRICKS_CONFIG_FILE"] == "/etc/ferry/databricks/src/.databrickscfg"
    assert "DST_DATABRICKS_CONFIG_FILE" not in env  # the standby is an http(s) server
    volume = {v["name"]: v for v in pod["volumes"]}["databricks-src"]
    assert volume["secret"] == {"secretName": "dbx", "optional": True, "defaultMode": 0o440,
                                "items": [{"key": ".databrickscfg", "path": ".databrickscfg"}]}
    assert {"name": "databricks-src", "mountPath": "/etc/ferry/databricks/src", "readOnly": True} in \
        container["volumeMounts"]


def test_job_names_are_deterministic_and_fit_a_label() -> None:
    """The same name in every operator process, restarted or not (the sha1 of the uid, never a
    per-process hash), or a restarted operator would start a second Job for the same work."""
    long = "a" * 80
    assert one_shot_job_name("nightly", "uid-1") == "nightly-f0552"
    assert one_shot_job_name("nightly", "uid-1") != one_shot_job_name("nightly", "uid-2")
    assert len(one_shot_job_name(long, "u")) <= 63
    assert scheduled_job_name("sync", 1700000000) == "sync-1700000000"
    assert len(scheduled_job_name(long, 1700000000)) <= 63
    assert sync_now_job_name("standby", "uid-1", "cut-over") == "standby-now-6f96c6eb"
    assert sync_now_job_name("standby", "uid-1", "cut-over") != sync_now_job_name("standby", "uid-1", "again")
    assert sync_now_job_name("standby", "uid-1", "x") != sync_now_job_name("standby", "uid-2", "x")
    assert sync_now_job_name("standby", "uid-1", "x").startswith("standby-now-")
    assert len(sync_now_job_name(long, "u", "x")) <= 63
