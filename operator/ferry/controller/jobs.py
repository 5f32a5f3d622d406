"""The batch/v1 Job for one piece of work: named deterministically, owned by its resource, locked down.

Deterministic names make "nothing starts twice" a property of the API server (a second create is
409 AlreadyExists), whatever the operator remembers after a restart. Secrets reach the container
only as ``envFrom``/``secretKeyRef``; the spec travels as JSON in one env var and carries
references only. A bucket's keys are read key by key (``secretKeyRef``), so the Job gets those
three variables of the Secret and nothing else from it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel

from ferry.api import API_VERSION, Kind
from ferry.api.common import (
    DATABRICKS_CONFIG_DIR,
    DATABRICKS_CONFIG_KEY,
    S3_ACCESS_KEY_ID,
    S3_SECRET_ACCESS_KEY,
    S3_SESSION_TOKEN,
    JobSettings,
    S3Storage,
    TrackingServer,
    is_databricks,
)
from ferry.api.job import DATA_DIR, ENV_VAR, KIROFRAME_TOKEN_ENV, SCRATCH_DIR, TERMINATION_LOG, JobPayload
from ferry.api.kiroframe import KiroframeSyncSpec
from ferry.api.mirror import MlflowMirrorSpec
from ferry.api.mlflow_import import WEBHOOK_SECRETS_DIR, MlflowImportSpec
from ferry.controller.resource import Resource
from ferry.controller.settings import OperatorSettings

KIND_LABEL = "ferry.dev/kind"
NAME_LABEL = "ferry.dev/name"
PATH_ANNOTATION = "ferry.dev/path"
SCHEDULED_ANNOTATION = "ferry.dev/scheduled-time"
RECORDED_ANNOTATION = "ferry.dev/recorded"  # the Job's result is in its resource's status
MAX_NAME = 63  # a Job's name becomes the pods' `job-name` label value
SECRET_FILE_MODE = 0o440  # a mounted Secret's files: owner root, group the pod's fsGroup (the Job's user)


def one_shot_job_name(name: str, uid: str) -> str:
    """``<resource>-<5 hex of its uid>``: stable for this object, new for a re-created one."""
    suffix = hashlib.sha1(uid.encode()).hexdigest()[:5]
    return f"{name[: MAX_NAME - len(suffix) - 1].rstrip('-.')}-{suffix}"


def scheduled_job_name(name: str, scheduled_unix: int) -> str:
    """``<resource>-<unix time of the scheduled run>``, as a CronJob names its Jobs."""
    suffix = str(scheduled_unix)
    return f"{name[: MAX_NAME - len(suffix) - 1].rstrip('-.')}-{suffix}"


def sync_now_job_name(name: str, uid: str, value: str) -> str:
    """``<resource>-now-<8 hex of its uid and the request>``: one Job per requested value of this object."""
    suffix = "now-" + hashlib.sha1(f"{uid}/{value}".encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - len(suffix) - 1].rstrip('-.')}-{suffix}"


def start_timeout(resource: Resource, settings: OperatorSettings) -> int:
    """Seconds the resource's Job may take to start: ``spec.job.startTimeoutSeconds`` or the operator's."""
    job = resource.spec.get("job") or {}
    value = job.get("startTimeoutSeconds") if isinstance(job, dict) else None
    return value if isinstance(value, int) and value > 0 else settings.job_start_timeout_seconds


def in_data(sub_path: str) -> str:
    """The directory inside the Job's container for `sub_path` of the mounted claim."""
    return f"{DATA_DIR}/{sub_path}".rstrip("/") if sub_path else DATA_DIR


def labels(kind: Kind, name: str) -> dict[str, str]:
    return {
        KIND_LABEL: kind.kind,
        NAME_LABEL: name[:63],
        "app.kubernetes.io/name": "mlflow-ferry",
        "app.kubernetes.io/instance": name[:63],
        "app.kubernetes.io/component": kind.singular,
        "app.kubernetes.io/managed-by": "ferry-operator",
    }


def owner_reference(kind: Kind, name: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind.kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def build_job(
    resource: Resource,
    spec: BaseModel,
    *,
    job_name: str,
    settings: OperatorSettings,
    claim_name: str | None = None,
    claim_read_only: bool = False,
    s3: S3Storage | None = None,
    annotations: dict[str, str] | None = None,
    **resolved: Any,
) -> dict[str, Any]:
    """The Job for one piece of work on `resource`, whose validated spec is `spec`.

    `resolved` are the `JobPayload` fields the operator worked out for this run (paths inside
    the volume, the watermark, the scheduled time). `s3` is the bucket location of this run
    (instead of a claim): the payload gets the place, the environment the Secret's keys.
    """
    kind = resource.kind
    payload = JobPayload(kind=kind.kind, name=resource.name, namespace=resource.namespace, spec=resource.spec,
                         storage=s3.location() if s3 is not None else None, **resolved)  # fmt: skip
    job: JobSettings = getattr(spec, "job", None) or JobSettings()
    lbls = labels(kind, resource.name)
    mounts = [{"name": "scratch", "mountPath": SCRATCH_DIR}]
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {}}]
    if claim_name:
        mounts.append({"name": "data", "mountPath": DATA_DIR, "readOnly": claim_read_only})
        volumes.append(
            {"name": "data", "persistentVolumeClaim": {"claimName": claim_name, "readOnly": claim_read_only}}
        )
    hook_secrets = spec.webhook_secrets if isinstance(spec, MlflowImportSpec) else None
    if hook_secrets:  # one file per key; never in the environment, so never in an env dump
        mounts.append({"name": "webhook-secrets", "mountPath": WEBHOOK_SECRETS_DIR, "readOnly": True})
        volumes.append({"name": "webhook-secrets", "secret": {"secretName": hook_secrets.secret_name,
                                                              "defaultMode": SECRET_FILE_MODE}})
    for prefix, server in tracking_servers(spec):
        if is_databricks(server.tracking_uri) and server.credentials_secret is not None:
            name = f"databricks-{_side(prefix)}"
            mounts.append({"name": name, "mountPath": databricks_config_dir(prefix), "readOnly": True})
            volumes.append({"name": name, "secret": {
                "secretName": server.credentials_secret.name, "optional": True, "defaultMode": SECRET_FILE_MODE,
                "items": [{"key": DATABRICKS_CONFIG_KEY, "path": DATABRICKS_CONFIG_KEY}]}})
    container: dict[str, Any] = {
        "name": "ferry",
        "image": job.image or settings.job_image,
        "imagePullPolicy": job.image_pull_policy or settings.job_image_pull_policy,
        "command": ["ferry", "job"],
        "env": _env(spec, payload, job, s3),
        "resources": _resources(job, settings),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts,
    }
    env_from = _env_from(spec)
    if env_from:
        container["envFrom"] = env_from
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": job.service_account_name or settings.job_service_account,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.job_run_as_user,
            "runAsGroup": settings.job_run_as_user,
            "fsGroup": settings.job_run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }
    if job.node_selector:
        pod_spec["nodeSelector"] = job.node_selector
    if job.tolerations:
        pod_spec["tolerations"] = [t.wire() for t in job.tolerations]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name,
            "namespace": resource.namespace,
            "labels": lbls,
            "annotations": annotations or {},
            "ownerReferences": [owner_reference(kind, resource.name, resource.uid)],
        },
        "spec": {
            "backoffLimit": _pick(job.backoff_limit, settings.job_backoff_limit),
            "activeDeadlineSeconds": _pick(job.active_deadline_seconds, settings.job_active_deadline_seconds),
            "ttlSecondsAfterFinished": _pick(job.ttl_seconds_after_finished, settings.job_ttl_seconds_after_finished),
            "template": {"metadata": {"labels": lbls}, "spec": pod_spec},
        },
    }


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value


def _env(spec: BaseModel, payload: JobPayload, job: JobSettings, s3: S3Storage | None) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": ENV_VAR, "value": payload.model_dump_json(by_alias=True, exclude_none=True)},
        {"name": "HOME", "value": SCRATCH_DIR},
        {"name": "TMPDIR", "value": SCRATCH_DIR},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    if isinstance(spec, KiroframeSyncSpec):
        token = spec.kiroframe.token_secret
        env.append({"name": KIROFRAME_TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": token.name, "key": token.key}}})
    if s3 is not None and s3.credentials_secret is not None:
        env += s3_credentials_env(s3.credentials_secret.name)
    for prefix, server in tracking_servers(spec):
        if is_databricks(server.tracking_uri) and server.credentials_secret is not None:
            env.append({"name": f"{prefix}DATABRICKS_CONFIG_FILE",
                        "value": f"{databricks_config_dir(prefix)}/{DATABRICKS_CONFIG_KEY}"})
    env += [var.wire() for var in job.env or []]
    return env


def s3_credentials_env(secret: str) -> list[dict[str, Any]]:
    """The bucket's keys from `secret`, each variable from the key of its own name; a session token is optional.

    A missing Secret (or key) keeps the pod from starting, which the resource's status reports
    with the kubelet's reason (``CreateContainerConfigError``) until startTimeoutSeconds.
    """
    def ref(key: str, **extra: Any) -> dict[str, Any]:
        return {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, **extra}}}

    return [ref(S3_ACCESS_KEY_ID), ref(S3_SECRET_ACCESS_KEY), ref(S3_SESSION_TOKEN, optional=True)]


def databricks_config_dir(prefix: str) -> str:
    """Where a workspace's configuration file (its Secret's .databrickscfg key, if any) is mounted.

    The key is optional: a Secret of environment variables alone mounts as an empty directory,
    and databricks-sdk passes over a configuration file that does not exist.
    """
    return f"{DATABRICKS_CONFIG_DIR}/{_side(prefix)}"


def _side(prefix: str) -> str:
    """``src``/``dst`` for a mirror's two servers, ``workspace`` for the one server of any other resource."""
    return prefix.rstrip("_").lower() or "workspace"


SOURCE_ENV_PREFIX = "SRC_"
DESTINATION_ENV_PREFIX = "DST_"


def tracking_servers(spec: BaseModel) -> list[tuple[str, TrackingServer]]:
    """The MLflow servers the Job talks to, each with the prefix its credentials get in the environment.

    An import's destination or an export's (a sync's) source, unprefixed: MLflow's own variable
    names, so one Secret serves mlflow-export-import too. A mirror talks to two servers whose
    Secrets hold the same keys: each Secret's keys get a prefix of their own (``envFrom.prefix``),
    ``SRC_MLFLOW_TRACKING_TOKEN`` beside ``DST_MLFLOW_TRACKING_TOKEN``.
    """
    if isinstance(spec, MlflowMirrorSpec):
        return [(SOURCE_ENV_PREFIX, spec.source), (DESTINATION_ENV_PREFIX, spec.destination)]
    server: TrackingServer = spec.destination if isinstance(spec, MlflowImportSpec) else spec.source  # type: ignore[attr-defined]
    return [("", server)]


def _env_from(spec: BaseModel) -> list[dict[str, Any]]:
    env_from: list[dict[str, Any]] = []
    for prefix, server in tracking_servers(spec):
        if server.credentials_secret is not None:
            env_from.append({"secretRef": {"name": server.credentials_secret.name}, **({"prefix": prefix} if prefix else {})})
    return env_from


def _resources(job: JobSettings, settings: OperatorSettings) -> dict[str, Any]:
    if job.resources is not None:
        return job.resources.wire()
    return {
        "requests": {"cpu": settings.job_cpu_request, "memory": settings.job_memory_request},
        "limits": {"memory": settings.job_memory_limit},
    }
