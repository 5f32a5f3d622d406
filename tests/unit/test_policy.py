"""The tenancy policy: what a resource may ask of its Job, as the user reads a refusal.

The defaults allow only what the operator's own defaults do; each loosening is one chart value.
A refusal is `FailedValidation` naming the rule, and no Job is created.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ferry.api.resources import KIROFRAME_SYNC, MLFLOW_EXPORT, MLFLOW_IMPORT, MLFLOW_MIRROR
from ferry.controller.lifecycle import Observed, decide
from ferry.controller.policy import Policy, credential_secrets, violations
from ferry.controller.schedules import tick
from ferry.controller.settings import OperatorSettings
from ferry.controller.validation import validate
from tests.unit.decisions import (
    EXPORT_SPEC,
    IMPORT_PVC_SPEC,
    MIRROR_SPEC,
    NOW,
    SETTINGS,
    SYNC_SPEC,
    created_job,
    kinds,
    resource,
    the_patch,
)

IMAGE = SETTINGS.job_image


def spec_with(base: dict[str, Any], **job: Any) -> dict[str, Any]:
    spec = copy.deepcopy(base)
    spec["job"] = job
    return spec


def refusals(kind: Any, spec: dict[str, Any], policy: Policy | None = None,
             labels: dict[str, dict[str, str] | None] | None = None) -> list[str]:
    model, errors = validate(kind, spec)
    assert model is not None and not errors, errors
    return list(violations(model, policy or Policy(), IMAGE, labels))


def settings(**policy: Any) -> OperatorSettings:
    return OperatorSettings(job_image=IMAGE, export_ref_grace_seconds=30, policy=Policy.model_validate(policy))


# --- the defaults -----------------------------------------------------------------------------------


def test_defaults_allow_what_the_operator_does_itself() -> None:
    assert refusals(MLFLOW_EXPORT, EXPORT_SPEC) == []
    assert refusals(MLFLOW_EXPORT, spec_with(EXPORT_SPEC, image=IMAGE, env=[{"name": "FERRY_WORKERS", "value": "2"}],
                                             resources={"limits": {"memory": "64Gi"}})) == []


@pytest.mark.parametrize(("job", "rule"), [
    ({"image": "evil.example/miner:latest"}, "policy.allowedImages: spec.job.image 'evil.example/miner:latest' "
                                             "is not allowed (allowed: ferry:test)"),
    ({"serviceAccountName": "admin"}, "policy.serviceAccounts: spec.job.serviceAccountName may not be set: Jobs "
                                      "run as the operator's Job ServiceAccount"),
    ({"env": [{"name": "TZ", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]},
     "policy.env: spec.job.env[0].valueFrom is not allowed: literal values only"),
    ({"env": [{"name": "TZ", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]},
     "policy.env: spec.job.env[0].valueFrom is not allowed: literal values only"),
])
def test_defaults_refuse_another_image_account_or_secret_env(job: dict[str, Any], rule: str) -> None:
    assert refusals(MLFLOW_EXPORT, spec_with(EXPORT_SPEC, **job)) == [rule]


FAMILIES = ["PYTHONPATH", "LD_PRELOAD", "PYTHONSTARTUP", "PYTHONHOME", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
            "AWS_CA_BUNDLE", "DATABRICKS_HOST", "MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "HTTP_PROXY",
            "HTTPS_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "FERRY_TAG_PREFIX"]


@pytest.mark.parametrize("name", FAMILIES)
def test_env_that_changes_code_trust_or_destinations_is_refused_by_default(name: str) -> None:
    spec = spec_with(EXPORT_SPEC, env=[{"name": "FERRY_WORKERS", "value": "2"}, {"name": name, "value": "/tmp/evil"}])
    assert refusals(MLFLOW_EXPORT, spec) == [
        f"policy.env.allowedNames: spec.job.env[1] sets {name!r}, which is not allowed (allowed: "
        "FERRY_WORKERS, FERRY_HISTORY_WORKERS, FERRY_METRIC_HISTORY, FERRY_HTTP_TIMEOUT, FERRY_HTTP_MAX_ATTEMPTS, "
        "FERRY_HTTP_RETRY_SECONDS, FERRY_HTTP_POOL_SIZE, FERRY_PROGRESS_INTERVAL, TZ)"]
    named = Policy.model_validate({"env": {"allowedNames": ["FERRY_WORKERS", name]}})
    assert refusals(MLFLOW_EXPORT, spec, named) == []  # the admin allows it by name


INTERNAL = {
    "http://127.0.0.1:5000": "'127.0.0.1', a loopback address",
    "http://localhost:5000": "'localhost', a name of this machine",
    "http://[::1]:5000": "'::1', a loopback address",
    "http://[::ffff:169.254.169.254]": "'::ffff:169.254.169.254', a link-local address",
    "http://169.254.169.254/latest/meta-data": "'169.254.169.254', a link-local address",
    "http://0.0.0.0:5000": "'0.0.0.0', an unspecified address",
    "http://metadata.google.internal": "'metadata.google.internal', a name of this machine, the metadata service",
    "https://kubernetes.default.svc": "'kubernetes.default.svc', a name of this machine, the metadata service",
    "https://kubernetes.default.svc.cluster.local:443": "'kubernetes.default.svc.cluster.local', a name of",
    "https://10.96.0.1": "'10.96.0.1', the Kubernetes API server",
}


@pytest.mark.parametrize("uri", list(INTERNAL))
def test_internal_addresses_are_refused_unless_the_admin_lists_them(uri: str) -> None:
    spec = copy.deepcopy(EXPORT_SPEC)
    spec["source"]["trackingUri"] = uri
    model, errors = validate(MLFLOW_EXPORT, spec)
    assert model is not None and not errors, errors
    (refusal,) = violations(model, Policy(), IMAGE, api_server_hosts=["10.96.0.1"])
    assert refusal.startswith(f"policy.allowedInternalHosts: spec.source.trackingUri names {INTERNAL[uri]}"), refusal
    host = refusal.split("'")[1]
    assert list(violations(model, Policy(allowed_internal_hosts=[host]), IMAGE, api_server_hosts=["10.96.0.1"])) == []


def test_cluster_services_and_public_hosts_are_not_internal() -> None:
    for uri in ("http://mlflow.ml.svc.cluster.local:5000", "http://10.0.0.7:5000", "https://mlflow.example.com",
                "http://192.168.1.20"):
        spec = copy.deepcopy(EXPORT_SPEC)
        spec["source"]["trackingUri"] = uri
        assert refusals(MLFLOW_EXPORT, spec) == [], uri


def test_internal_kiroframe_and_s3_endpoints_are_refused_too() -> None:
    sync = copy.deepcopy(SYNC_SPEC)
    sync["kiroframe"]["url"] = "http://127.0.0.1:8080"
    assert [r.split(" names")[0] for r in refusals(KIROFRAME_SYNC, sync)] == [
        "policy.allowedInternalHosts: spec.kiroframe.url"]
    export = copy.deepcopy(EXPORT_SPEC)
    export["destination"] = {"s3": {"bucket": "backups", "endpoint": "http://169.254.169.254"}}
    assert [r.split(" names")[0] for r in refusals(MLFLOW_EXPORT, export)] == [
        "policy.allowedInternalHosts: spec.destination.s3.endpoint"]


def test_credentials_secrets_need_the_label_by_default() -> None:
    assert Policy().credentials_secret_label == "ferry.dev/credentials=true"
    spec = copy.deepcopy(SYNC_SPEC)
    assert refusals(KIROFRAME_SYNC, spec, labels={"kf": {"app": "db"}}) == [
        "policy.credentialsSecretLabel: spec.kiroframe.tokenSecret.name names Secret 'kf', which does not carry "
        "the label ferry.dev/credentials=true"]
    assert refusals(KIROFRAME_SYNC, spec, labels={"kf": {"ferry.dev/credentials": "true"}}) == []
    assert refusals(KIROFRAME_SYNC, spec, Policy(credentials_secret_label=""), labels={"kf": {}}) == []


def test_a_refused_resource_gets_failed_validation_and_no_job() -> None:
    spec = spec_with(IMPORT_PVC_SPEC, image="evil.example/miner:latest", serviceAccountName="admin")
    actions = decide(resource(MLFLOW_IMPORT, spec, name="restore"), Observed(), NOW, SETTINGS)
    assert kinds(actions) == ["PatchStatus", "Emit"]
    patch = the_patch(actions)
    assert patch["phase"] == "FailedValidation"
    assert [e.split(":")[0] for e in patch["validationErrors"]] == ["policy.allowedImages", "policy.serviceAccounts"]
    assert patch["message"].startswith("2 problem(s) in the spec: policy.allowedImages: spec.job.image")


# --- loosened by the admin ----------------------------------------------------------------------------


def test_allowed_prefixes_accounts_and_value_from_let_the_same_spec_run() -> None:
    spec = spec_with(EXPORT_SPEC, image="registry.example/ferry:1.2", serviceAccountName="mlflow-reader",
                     env=[{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}])
    loose = settings(allowedImages=["registry.example/"],
                     serviceAccounts={"allowOverride": True, "allowed": ["mlflow-reader"]},
                     env={"allowValueFrom": True, "allowedNames": ["LEVEL"]})
    job = created_job(decide(resource(MLFLOW_EXPORT, spec), Observed(), NOW, loose)).job
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/ferry:1.2"
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "mlflow-reader"

    other = spec_with(EXPORT_SPEC, serviceAccountName="admin")
    assert refusals(MLFLOW_EXPORT, other, loose.policy) == [
        "policy.serviceAccounts: spec.job.serviceAccountName 'admin' is not allowed (allowed: mlflow-reader)"]


def test_value_from_never_reads_a_secret_the_resource_does_not_name_as_credentials() -> None:
    spec = copy.deepcopy(EXPORT_SPEC)
    spec["source"]["credentialsSecret"] = {"name": "mlflow-creds"}
    spec["job"] = {"env": [
        {"name": "OK", "valueFrom": {"secretKeyRef": {"name": "mlflow-creds", "key": "MLFLOW_TRACKING_TOKEN"}}},
        {"name": "NO", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    ]}
    loose = Policy.model_validate({"env": {"allowValueFrom": True, "allowedNames": ["OK", "NO"]}})
    assert refusals(MLFLOW_EXPORT, spec, loose) == [
        "policy.env: spec.job.env[1].valueFrom reads Secret 'db', which the resource does not name as credentials"]


# --- credentials Secrets by label ---------------------------------------------------------------------


def test_credentials_secrets_are_every_secret_the_spec_names() -> None:
    spec = copy.deepcopy(IMPORT_PVC_SPEC)
    spec["destination"]["credentialsSecret"] = {"name": "dst"}
    spec["webhookSecrets"] = {"secretName": "hooks"}
    model, _ = validate(MLFLOW_IMPORT, spec)
    assert dict(credential_secrets(model)) == {"spec.destination.credentialsSecret.name": "dst",
                                               "spec.webhookSecrets.secretName": "hooks"}
    sync, _ = validate(KIROFRAME_SYNC, SYNC_SPEC)
    assert dict(credential_secrets(sync)) == {"spec.kiroframe.tokenSecret.name": "kf"}


def test_an_unlabelled_credentials_secret_is_refused_and_a_labelled_one_runs() -> None:
    spec = copy.deepcopy(EXPORT_SPEC)
    spec["source"]["credentialsSecret"] = {"name": "prod-db"}
    labelled = settings(credentialsSecretLabel="ferry.dev/credentials=true")
    unlabelled = Observed(secret_labels={"prod-db": {"app": "postgres"}})
    patch = the_patch(decide(resource(MLFLOW_EXPORT, spec), unlabelled, NOW, labelled))
    assert patch["validationErrors"] == [
        "policy.credentialsSecretLabel: spec.source.credentialsSecret.name names Secret 'prod-db', which does not "
        "carry the label ferry.dev/credentials=true"]
    marked = Observed(secret_labels={"prod-db": {"ferry.dev/credentials": "true"}})
    assert created_job(decide(resource(MLFLOW_EXPORT, spec), marked, NOW, labelled))
    # A Secret that does not exist is the kubelet's to report (Pending with its reason), not the policy's.
    assert created_job(decide(resource(MLFLOW_EXPORT, spec), Observed(secret_labels={"prod-db": None}), NOW,
                              labelled))


def test_a_schedule_reads_the_labels_only_when_a_run_is_due() -> None:
    read: list[str] = []

    def labels(spec: Any) -> dict[str, dict[str, str] | None]:
        read.append("read")
        return {"kf": {}}

    strict = settings(credentialsSecretLabel="ferry.dev/credentials")
    waiting = resource(KIROFRAME_SYNC, SYNC_SPEC, created="2024-01-31T11:59:00Z")
    tick(waiting, NOW, strict, lambda: [], labels)
    assert read == []
    due = resource(KIROFRAME_SYNC, SYNC_SPEC, created="2024-01-30T02:59:00Z")
    patch = the_patch(tick(due, NOW, strict, lambda: [], labels))
    assert read == ["read"]
    assert patch["phase"] == "FailedValidation"
    assert patch["validationErrors"][0].startswith("policy.credentialsSecretLabel: spec.kiroframe.tokenSecret.name")


def test_a_mirrors_two_secrets_both_need_the_label() -> None:
    model, _ = validate(MLFLOW_MIRROR, MIRROR_SPEC)
    assert dict(credential_secrets(model)) == {"spec.source.credentialsSecret.name": "primary",
                                               "spec.destination.credentialsSecret.name": "standby"}
    policy = Policy.model_validate({"credentialsSecretLabel": "ferry.dev/credentials"})
    marked = {"ferry.dev/credentials": "true"}
    assert refusals(MLFLOW_MIRROR, MIRROR_SPEC, policy, {"primary": marked, "standby": marked}) == []
    assert refusals(MLFLOW_MIRROR, MIRROR_SPEC, policy, {"primary": marked, "standby": {}}) == [
        "policy.credentialsSecretLabel: spec.destination.credentialsSecret.name names Secret 'standby', which "
        "does not carry the label ferry.dev/credentials"]
    due = resource(MLFLOW_MIRROR, MIRROR_SPEC, created="2024-01-30T02:59:00Z")
    patch = the_patch(tick(due, NOW, settings(credentialsSecretLabel="ferry.dev/credentials"), lambda: [],
                           lambda spec: {"primary": {}, "standby": marked}))
    assert patch["phase"] == "FailedValidation"
    assert patch["validationErrors"] == [
        "policy.credentialsSecretLabel: spec.source.credentialsSecret.name names Secret 'primary', which "
        "does not carry the label ferry.dev/credentials"]


def test_a_mirrors_source_and_destination_both_obey_the_tracking_hosts() -> None:
    policy = Policy.model_validate({"allowedTrackingHosts": ["mlflow:5000", "mlflow-standby:5000"]})
    assert refusals(MLFLOW_MIRROR, MIRROR_SPEC, policy) == []
    away = copy.deepcopy(MIRROR_SPEC)
    away["destination"]["trackingUri"] = "http://10.0.0.7:5000"
    assert refusals(MLFLOW_MIRROR, away, policy) == [
        "policy.allowedTrackingHosts: spec.destination.trackingUri host '10.0.0.7' is not allowed "
        "(allowed: mlflow:5000, mlflow-standby:5000)"]
    away["source"]["trackingUri"] = "http://169.254.169.254"
    assert [" ".join(line.split()[:2]) for line in refusals(MLFLOW_MIRROR, away, policy)] == [
        "policy.allowedTrackingHosts: spec.source.trackingUri", "policy.allowedInternalHosts: spec.source.trackingUri",
        "policy.allowedTrackingHosts: spec.destination.trackingUri"]


# --- hosts, buckets, resources ------------------------------------------------------------------------


def test_host_allow_lists_stop_jobs_reaching_other_addresses() -> None:
    policy = Policy.model_validate({"allowedTrackingHosts": ["*.mlflow.example.com", "mlflow:5000"],
                                    "allowedKiroframeHosts": ["kf.example"]})
    assert refusals(MLFLOW_EXPORT, EXPORT_SPEC, policy) == []  # mlflow:5000
    inside = copy.deepcopy(EXPORT_SPEC)
    inside["source"]["trackingUri"] = "http://169.254.169.254/latest"
    assert refusals(MLFLOW_EXPORT, inside, policy) == [
        "policy.allowedTrackingHosts: spec.source.trackingUri host '169.254.169.254' is not allowed "
        "(allowed: *.mlflow.example.com, mlflow:5000)",
        "policy.allowedInternalHosts: spec.source.trackingUri names '169.254.169.254', a link-local address; Jobs "
        "reach it only if the admin lists it"]
    sync = copy.deepcopy(SYNC_SPEC)
    sync["source"]["trackingUri"] = "https://eu.mlflow.example.com"
    sync["kiroframe"]["url"] = "https://kf.internal"
    assert refusals(KIROFRAME_SYNC, sync, policy) == [
        "policy.allowedKiroframeHosts: spec.kiroframe.url host 'kf.internal' is not allowed (allowed: kf.example)"]


def test_s3_endpoints_and_buckets() -> None:
    spec = copy.deepcopy(EXPORT_SPEC)
    spec["destination"] = {"s3": {"bucket": "team-a-backups", "endpoint": "https://minio.internal:9000"}}
    policy = Policy.model_validate({"allowedS3Buckets": ["team-a-*"], "allowedS3Endpoints": ["s3.amazonaws.com"]})
    assert refusals(MLFLOW_EXPORT, spec, policy) == [
        "policy.allowedS3Endpoints: spec.destination.s3.endpoint host 'minio.internal' is not allowed "
        "(allowed: s3.amazonaws.com)"]
    spec["destination"]["s3"] = {"bucket": "team-b"}
    assert refusals(MLFLOW_EXPORT, spec, policy) == [
        "policy.allowedS3Buckets: spec.destination.s3.bucket 'team-b' is not allowed (allowed: team-a-*)"]


def test_resource_caps_like_a_limit_range() -> None:
    policy = Policy.model_validate({"resources": {"maxCpu": "2", "maxMemory": "4Gi", "allowNodeSelector": False,
                                                  "allowTolerations": False}})
    within = spec_with(EXPORT_SPEC, resources={"requests": {"cpu": "500m"}, "limits": {"cpu": 2, "memory": "4Gi"}})
    assert refusals(MLFLOW_EXPORT, within, policy) == []
    over = spec_with(EXPORT_SPEC, resources={"requests": {"cpu": "3"}}, nodeSelector={"gpu": "a100"},
                     tolerations=[{"operator": "Exists"}])
    assert refusals(MLFLOW_EXPORT, over, policy) == [
        "policy.resources.allowNodeSelector: spec.job.nodeSelector may not be set",
        "policy.resources.allowTolerations: spec.job.tolerations may not be set",
        "policy.resources.maxCpu: spec.job.resources.requests.cpu 3 is over 2",
        "policy.resources.maxMemory: spec.job.resources.limits.memory must be set (at most 4Gi)",
    ]


def test_a_bad_policy_value_is_refused_when_the_operator_starts() -> None:
    with pytest.raises(ValueError, match=r"maxMemory|max_memory"):
        Policy.model_validate({"resources": {"maxMemory": "lots"}})
    with pytest.raises(ValueError, match="allowedImage"):
        Policy.model_validate({"allowedImage": ["x"]})
