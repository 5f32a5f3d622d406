"""Builders for the controller's decisions: resources, Jobs and pods as the API server hands them over,
and readers that turn the actions a decision returns into what a user would see.

The clock is fixed (`NOW`), so every time a decision writes is a known string.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from ferry.api import API_VERSION, Kind
from ferry.api.job import ENV_VAR
from ferry.controller.actions import Action, AnnotateJob, CreateJob, DeleteJob, Emit, PatchStatus
from ferry.controller.cron import format_time
from ferry.controller.jobs import PATH_ANNOTATION, RECORDED_ANNOTATION, SCHEDULED_ANNOTATION
from ferry.controller.resource import Resource
from ferry.controller.settings import OperatorSettings
from ferry.outcome import Outcome

NOW = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
NOW_TEXT = "2024-01-31T12:00:00Z"
NAMESPACE = "ml"
UID = "uid-1"
SETTINGS = OperatorSettings(job_image="ferry:test", export_ref_grace_seconds=30)

PATH, SCHEDULED, RECORDED = PATH_ANNOTATION, SCHEDULED_ANNOTATION, RECORDED_ANNOTATION

# --- specs, as a user applies them ----------------------------------------------------------------

EXPORT_SPEC: dict[str, Any] = {
    "source": {"trackingUri": "http://mlflow:5000"},
    "objects": {"experiments": ["churn"]},
    "destination": {"pvc": {"claimName": "backups", "subPath": "nightly/"}},
}
SCHEDULED_EXPORT_SPEC: dict[str, Any] = {
    "source": {"trackingUri": "http://mlflow:5000"},
    "objects": {"experiments": ["churn"]},
    "destination": {"pvc": {"claimName": "backups", "subPath": "exports"}},
    "schedule": "0 3 * * *",
    "keep": 5,
}
IMPORT_PVC_SPEC: dict[str, Any] = {
    "destination": {"trackingUri": "http://mlflow-dst:5000"},
    "source": {"pvc": {"claimName": "archive", "subPath": "exports/nightly-20240131T030000Z/"}},
}
IMPORT_REF_SPEC: dict[str, Any] = {
    "destination": {"trackingUri": "http://mlflow-dst:5000"},
    "source": {"exportRef": {"name": "backup"}},
}
SYNC_SPEC: dict[str, Any] = {
    "source": {"trackingUri": "http://mlflow:5000"},
    "kiroframe": {"url": "https://kf.example", "tokenSecret": {"name": "kf"}},
    "schedule": "0 3 * * *",
}

MIRROR_SPEC: dict[str, Any] = {
    "source": {"trackingUri": "http://mlflow:5000", "credentialsSecret": {"name": "primary"}},
    "destination": {"trackingUri": "http://mlflow-standby:5000", "credentialsSecret": {"name": "standby"}},
    "schedule": "0 3 * * *",
}


def ago(seconds: float) -> str:
    return format_time(NOW - timedelta(seconds=seconds))


def resource(
    kind: Kind,
    spec: dict[str, Any],
    status: dict[str, Any] | None = None,
    *,
    name: str = "nightly",
    generation: int = 1,
    created: str | None = None,
) -> Resource:
    """One of our resources as read from the API server; created an hour before `NOW` unless told."""
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": kind.kind,
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": UID, "generation": generation,
                     "creationTimestamp": created or ago(3600)},
        "spec": spec,
    }  # fmt: skip
    if status is not None:
        body["status"] = status
    return Resource(kind, body)


def condition(
    type_: str,
    status: str,
    reason: str,
    since: str = "2024-01-01T00:00:00Z",
    generation: int = 1,
    message: str | None = None,
) -> dict[str, Any]:
    """A condition as stored in a resource's status."""
    stored = {"type": type_, "status": status, "reason": reason, "lastTransitionTime": since,
              "observedGeneration": generation}  # fmt: skip
    if message:
        stored["message"] = message
    return stored


# --- Jobs and pods ----------------------------------------------------------------------------------


def job(
    name: str,
    status: str = "Running",
    annotations: dict[str, str] | None = None,
    *,
    claim: str | None = "backups",
    created: str = "2024-01-31T03:00:00Z",
    started: str | None = "2024-01-31T03:00:02Z",
    completed: str | None = "2024-01-31T03:05:00Z",
    reason: str = "",
) -> dict[str, Any]:
    """A Job as the API server shows it: ``Pending``, ``Running``, ``Complete`` or ``Failed`` (with `reason`)."""
    job_status: dict[str, Any] = {}
    if started is not None and status != "Pending":
        job_status["startTime"] = started
    if status == "Running":
        job_status["active"] = 1
    elif status == "Complete":
        job_status["succeeded"] = 1
        job_status["conditions"] = [{"type": "Complete", "status": "True", "lastTransitionTime": completed}]
        if completed is not None:
            job_status["completionTime"] = completed
    elif status == "Failed":
        job_status["failed"] = 1
        job_status["conditions"] = [{"type": "Failed", "status": "True", "reason": reason or "BackoffLimitExceeded",
                                     "lastTransitionTime": completed}]  # fmt: skip
    volumes: list[dict[str, Any]] = [{"name": "scratch", "emptyDir": {}}]
    if claim is not None:
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": False}})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NAMESPACE, "creationTimestamp": created,
                     "annotations": dict(annotations or {})},
        "spec": {"template": {"spec": {"volumes": volumes}}},
        "status": job_status,
    }  # fmt: skip


def pod(
    termination: Outcome | str, exit_code: int = 0, finished: str = "2024-01-31T03:04:59Z"
) -> dict[str, Any]:
    """A Job's pod whose container ended with `termination` as its termination message."""
    message = termination.to_termination_message() if isinstance(termination, Outcome) else termination
    terminated = {"exitCode": exit_code, "message": message, "finishedAt": finished}
    return {"status": {"containerStatuses": [{"name": "ferry", "state": {"terminated": terminated}}]}}


def running_pod() -> dict[str, Any]:
    """A Job's pod whose container runs: the engine is working."""
    return {"metadata": {"name": "p", "creationTimestamp": "2024-01-31T03:00:01Z"},
            "status": {"phase": "Running", "containerStatuses": [{"name": "ferry", "state": {"running": {}}}]}}


def waiting_pod(reason: str, message: str = "") -> dict[str, Any]:
    """A Job's pod whose container waits to be created, with the kubelet's reason."""
    waiting = {"reason": reason, **({"message": message} if message else {})}
    return {"metadata": {"name": "p", "creationTimestamp": "2024-01-31T03:00:01Z"},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "ferry", "state": {"waiting": waiting}}]}}


# --- reading what a decision returns ---------------------------------------------------------------


def patches(actions: list[Action] | tuple[Action, ...]) -> list[dict[str, Any]]:
    """The status merge patches, in order, as sent to the API server."""
    return [a.status.wire() for a in actions if isinstance(a, PatchStatus)]


def the_patch(actions: list[Action] | tuple[Action, ...]) -> dict[str, Any]:
    (patch,) = patches(actions)
    return patch


def events(actions: list[Action] | tuple[Action, ...]) -> list[tuple[str, str, bool]]:
    """(reason, message, warning) of each Event."""
    return [(a.reason, a.message, a.warning) for a in actions if isinstance(a, Emit)]


def kinds(actions: list[Action] | tuple[Action, ...]) -> list[str]:
    """The actions' types in order, e.g. ``["PatchStatus", "Emit"]``."""
    return [type(a).__name__ for a in actions]


def created_job(actions: list[Action] | tuple[Action, ...]) -> CreateJob:
    (create,) = [a for a in actions if isinstance(a, CreateJob)]
    return create


def deleted(actions: list[Action] | tuple[Action, ...]) -> list[str]:
    return [a.name for a in actions if isinstance(a, DeleteJob)]


def annotated(actions: list[Action] | tuple[Action, ...]) -> list[tuple[str, dict[str, str]]]:
    return [(a.name, a.annotations) for a in actions if isinstance(a, AnnotateJob)]


def conditions(patch: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The patch's conditions by type."""
    return {c["type"]: c for c in patch["conditions"]}


def said(patch: dict[str, Any], type_: str) -> tuple[str, str, str | None]:
    """(status, reason, message) of one condition in a patch."""
    found = conditions(patch)[type_]
    return found["status"], found["reason"], found.get("message")


def transition_times(patch: dict[str, Any]) -> dict[str, str]:
    """When each condition in a patch last changed its status."""
    return {c["type"]: c["lastTransitionTime"] for c in patch["conditions"]}


def payload(job_body: dict[str, Any]) -> dict[str, Any]:
    """What the Job's container reads from FERRY_JOB."""
    (container,) = job_body["spec"]["template"]["spec"]["containers"]
    (value,) = [e["value"] for e in container["env"] if e["name"] == ENV_VAR]
    return dict(json.loads(value))


def volumes(job_body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in job_body["spec"]["template"]["spec"]["volumes"]}


def mounts(job_body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (container,) = job_body["spec"]["template"]["spec"]["containers"]
    return {m["name"]: m for m in container["volumeMounts"]}
