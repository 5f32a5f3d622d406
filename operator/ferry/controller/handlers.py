"""kopf handlers: resources become Jobs, Jobs become status.

Level-based and idempotent on purpose: every handler re-reads what it needs and derives the same
answer, Jobs have deterministic names (a second create is a 409), and a finished Job is marked
``ferry.dev/recorded`` once its result is in the resource's status. So a restarted operator (kopf
``resume`` plus the initial listing of Jobs) converges without starting or reporting anything twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import kopf

from ferry.api import GROUP, Kind
from ferry.outcome import TERMINAL_PHASES
from ferry.api.job import DATA_DIR, JobPayload
from ferry.api.resources import BY_KIND, KIROFRAME_SYNC, MLFLOW_EXPORT, MLFLOW_IMPORT
from ferry.controller import schedule, settings
from ferry.controller.jobs import (
    KIND_LABEL,
    PATH_ANNOTATION,
    SCHEDULED_ANNOTATION,
    build_job,
    one_shot_job_name,
    scheduled_job_name,
)
from ferry.controller.kube import Kube
from ferry.controller.status import (
    JobState,
    job_state,
    outcome_of,
    pod_termination,
    result_status,
    set_condition,
    succeeded_condition,
)
from ferry.controller.validation import validate

RECORDED_ANNOTATION = "ferry.dev/recorded"
log = logging.getLogger("ferry.controller")
_kube: Kube | None = None


def kube() -> Kube:
    global _kube
    if _kube is None:
        _kube = Kube()
    return _kube


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our CRDs have strict status schemas: kopf keeps its bookkeeping in annotations instead.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # No cluster-wide reads of CustomResourceDefinitions and Namespaces: the CRDs are installed
    # before the operator starts, and namespaces are named (no globs). That keeps RBAC minimal.
    settings.scanning.disabled = True
    settings.execution.max_workers = 16
    settings.watching.server_timeout = 600
    kube()


# --- small helpers ------------------------------------------------------------------------------


def _ref(kind: Kind, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": kind.kind,
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")},
    }


def emit(kind: Kind, meta: dict[str, Any], reason: str, message: str, *, warning: bool = False) -> None:
    kopf.event(_ref(kind, meta), type="Warning" if warning else "Normal", reason=reason, message=message[:1000])


def patch(kind: Kind, meta: dict[str, Any], status: dict[str, Any]) -> None:
    kube().patch_status(kind, meta["namespace"], meta["name"], _without_empty_strings(status))


def _without_empty_strings(value: Any) -> Any:
    """"" becomes None (unset): the 1.20 API server reads an empty string as null and refuses it."""
    if isinstance(value, dict):
        return {k: _without_empty_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_empty_strings(v) for v in value]
    return None if value == "" else value


def with_conditions(
    status: dict[str, Any], old: dict[str, Any], phase: str, reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    conditions = set_condition(
        old.get("conditions"), "Succeeded", succeeded_condition(phase), reason, message, generation
    )
    conditions = set_condition(
        conditions,
        "Validated",
        "False" if phase == "FailedValidation" else "True",
        "InvalidSpec" if phase == "FailedValidation" else "SpecValid",
        message if phase == "FailedValidation" else "",
        generation,
    )
    return {**status, "phase": phase, "conditions": conditions}


def fail_validation(kind: Kind, body: dict[str, Any], errors: list[str]) -> None:
    meta, old = body["metadata"], body.get("status") or {}
    if old.get("phase") == "FailedValidation" and old.get("validationErrors") == errors:
        return
    summary = f"{len(errors)} problem(s) in the spec: " + "; ".join(errors)
    status = {"validationErrors": errors, "message": summary, "observedGeneration": meta.get("generation")}
    patch(kind, meta, with_conditions(status, old, "FailedValidation", "FailedValidation", summary, meta.get("generation")))
    emit(kind, meta, "FailedValidation", summary, warning=True)


def finish_without_job(kind: Kind, body: dict[str, Any], message: str) -> None:
    meta, old = body["metadata"], body.get("status") or {}
    status = {"message": message, "completionTime": schedule.format_time(schedule.now())}
    patch(kind, meta, with_conditions(status, old, "Failed", "Failed", message, meta.get("generation")))
    emit(kind, meta, "Failed", message, warning=True)


def create_job(kind: Kind, body: dict[str, Any], job: dict[str, Any]) -> bool | None:
    """Create the Job; None if the API server refused its content (that is the spec's fault)."""
    from kubernetes.client.exceptions import ApiException

    try:
        created = kube().create_job(job)
    except ApiException as err:
        if err.status in (400, 422):
            fail_validation(kind, body, [f"spec.job: the Job was refused: {_api_reason(err)}"])
            return None
        raise kopf.TemporaryError(f"creating Job {job['metadata']['name']}: {_api_reason(err)}", delay=5) from err
    if created:
        emit(kind, body["metadata"], "JobCreated", f"Created Job {job['metadata']['name']}")
    return created


def _api_reason(err: Any) -> str:
    import json

    try:
        return json.loads(err.body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(err.reason)


# --- one-shot resources: MlflowExport without schedule, MlflowImport -----------------------------


def _one_shot(spec: dict[str, Any], **_: Any) -> bool:
    return not spec.get("schedule")


def scheduled(spec: dict[str, Any], **_: Any) -> bool:
    return bool(spec.get("schedule"))


@kopf.on.resume(GROUP, "mlflowexports", when=_one_shot)
@kopf.on.create(GROUP, "mlflowexports", when=_one_shot)
@kopf.on.update(GROUP, "mlflowexports", when=_one_shot)
def reconcile_export(body: kopf.Body, **_: Any) -> None:
    reconcile_one_shot(MLFLOW_EXPORT, dict(body))


@kopf.on.resume(GROUP, "mlflowimports")
@kopf.on.create(GROUP, "mlflowimports")
@kopf.on.update(GROUP, "mlflowimports")
def reconcile_import(body: kopf.Body, **_: Any) -> None:
    reconcile_one_shot(MLFLOW_IMPORT, dict(body))


_warned_generations: set[tuple[str, int]] = set()


def reconcile_one_shot(kind: Kind, body: dict[str, Any]) -> None:
    meta = body["metadata"]
    status = body.get("status") or {}
    phase = status.get("phase")
    generation = meta.get("generation")
    if status.get("jobName"):
        started_at = status.get("observedGeneration")
        key = (meta["uid"], generation)
        if generation != started_at and key not in _warned_generations:
            _warned_generations.add(key)
            emit(kind, meta, "SpecChangeIgnored",
                 f"{kind.kind} started with generation {started_at}; it cannot change once started", warning=True)
        if phase not in TERMINAL_PHASES:
            job = kube().read_job(meta["namespace"], status["jobName"])
            if job is None:
                finish_without_job(kind, body, f"Job {status['jobName']} disappeared before it finished")
            else:
                converge(job)
        return
    if phase in TERMINAL_PHASES and phase != "FailedValidation":
        return
    model, errors = validate(kind, body.get("spec") or {})
    if errors:
        fail_validation(kind, body, errors)
        return
    if kind is MLFLOW_EXPORT:
        start_export(body, model)
    else:
        start_import(body, model)


def _start_status(body: dict[str, Any], job_name: str, reason: str, extra: dict[str, Any]) -> dict[str, Any]:
    meta, old = body["metadata"], body.get("status") or {}
    status = {
        "jobName": job_name,
        "observedGeneration": meta.get("generation"),
        "validationErrors": None,
        "message": f"Job {job_name} created",
        **extra,
    }
    return with_conditions(status, old, "Pending", reason, f"Job {job_name} created", meta.get("generation"))


def start_export(body: dict[str, Any], spec: Any) -> None:
    sub_path = spec.destination.pvc.sub_path.strip("/")
    _start_one_shot(MLFLOW_EXPORT, body, spec.destination.pvc.claim_name, sub_path, read_only=False,
                    paths={"output_path": _in_data(sub_path)}, status={})


def _in_data(sub_path: str) -> str:
    return f"{DATA_DIR}/{sub_path}".rstrip("/") if sub_path else DATA_DIR


def start_import(body: dict[str, Any], spec: Any) -> None:
    if spec.source.pvc is not None:
        claim, sub_path = spec.source.pvc.claim_name, spec.source.pvc.sub_path.strip("/")
    else:
        found = resolve_export(body, spec.source.export_ref.name)
        if found is None:
            return
        claim, sub_path = found
    _start_one_shot(MLFLOW_IMPORT, body, claim, sub_path, read_only=True,
                    paths={"input_path": _in_data(sub_path)}, status={"sourcePath": sub_path})


def _start_one_shot(kind: Kind, body: dict[str, Any], claim: str, sub_path: str, *, read_only: bool,
                    paths: dict[str, str], status: dict[str, Any]) -> None:
    """Create the one Job of a one-shot resource (its name is fixed by the uid) and say so in status."""
    meta = body["metadata"]
    job_name = one_shot_job_name(meta["name"], meta["uid"])
    payload = JobPayload(kind=kind.kind, name=meta["name"], namespace=meta["namespace"], spec=body["spec"], **paths)
    job = build_job(
        kind, body, payload, job_name=job_name, settings=settings.current(),
        claim_name=claim, claim_read_only=read_only, annotations={PATH_ANNOTATION: sub_path},
    )  # fmt: skip
    if create_job(kind, body, job) is not None:
        patch(kind, meta, _start_status(body, job_name, "JobCreated", status))


def resolve_export(body: dict[str, Any], ref: str) -> tuple[str, str] | None:
    """(claim, path) of a finished MlflowExport; otherwise wait, fail or refuse, and return None."""
    meta = body["metadata"]
    export = kube().get_resource(MLFLOW_EXPORT, meta["namespace"], ref)
    if export is None:
        age = schedule.now() - schedule.parse_time(meta["creationTimestamp"])
        if age > timedelta(seconds=settings.current().export_ref_grace_seconds):
            fail_validation(
                MLFLOW_IMPORT, body,
                [f"spec.source.exportRef.name: MlflowExport '{ref}' does not exist in namespace {meta['namespace']}"],
            )  # fmt: skip
            return None
        return wait_for_export(body, f"MlflowExport {ref} does not exist yet")
    if (export.get("spec") or {}).get("schedule"):
        fail_validation(MLFLOW_IMPORT, body, [
            f"spec.source.exportRef.name: MlflowExport '{ref}' is scheduled; import one of its exports with source.pvc"
        ])  # fmt: skip
        return None
    exported = export.get("status") or {}
    phase = exported.get("phase")
    if phase in ("Succeeded", "PartiallyFailed") and exported.get("claimName"):
        return exported["claimName"], exported.get("path") or ""
    if phase in ("Failed", "FailedValidation"):
        finish_without_job(MLFLOW_IMPORT, body, f"MlflowExport {ref} {phase}: {exported.get('message', '')}".strip())
        return None
    return wait_for_export(body, f"Waiting for MlflowExport {ref} ({phase or 'not started'})")


def wait_for_export(body: dict[str, Any], message: str) -> None:
    meta, old = body["metadata"], body.get("status") or {}
    if old.get("phase") == "Pending" and old.get("message") == message:
        return None
    status = {"message": message, "observedGeneration": meta.get("generation"), "validationErrors": None}
    patch(MLFLOW_IMPORT, meta, with_conditions(status, old, "Pending", "WaitingForExport", message, meta.get("generation")))
    if old.get("phase") != "Pending":
        emit(MLFLOW_IMPORT, meta, "WaitingForExport", message)
    return None


# --- Jobs back to status ---------------------------------------------------------------------------


@kopf.on.event("batch", "v1", "jobs", labels={KIND_LABEL: kopf.PRESENT})
def job_event(type: str, body: kopf.Body, **_: Any) -> None:
    if type == "DELETED":
        job_deleted(dict(body))
    else:
        converge(dict(body))


def _owner(job: dict[str, Any]) -> tuple[Kind, dict[str, Any]] | None:
    """The resource that owns `job`, read fresh, if it still exists and is still the same object."""
    for ref in job["metadata"].get("ownerReferences", []):
        kind = BY_KIND.get(ref.get("kind", ""))
        if kind is not None and ref.get("controller"):
            resource = kube().get_resource(kind, job["metadata"]["namespace"], ref["name"])
            if resource is not None and resource["metadata"]["uid"] == ref["uid"]:
                return kind, resource
    return None


def _is_scheduled(kind: Kind, resource: dict[str, Any]) -> bool:
    return kind is KIROFRAME_SYNC or scheduled(resource.get("spec") or {})


def converge(job: dict[str, Any]) -> None:
    """Bring the owner's status up to `job`'s state; a finished Job is recorded exactly once."""
    if (job["metadata"].get("annotations") or {}).get(RECORDED_ANNOTATION):
        return
    owned = _owner(job)
    if owned is None:
        return
    kind, resource = owned
    state = job_state(job)
    if _is_scheduled(kind, resource):
        converge_scheduled(kind, resource, job, state)
    else:
        converge_one_shot(kind, resource, job, state)


def converge_one_shot(kind: Kind, resource: dict[str, Any], job: dict[str, Any], state: JobState) -> None:
    meta, old = resource["metadata"], resource.get("status") or {}
    name = job["metadata"]["name"]
    if old.get("jobName") not in (None, name) or old.get("phase") in TERMINAL_PHASES:
        return
    if not state.finished:
        mark_running(kind, resource, name, state)
        return
    outcome = finished_outcome(job, state)
    status = result_status(outcome, state)
    status.update(jobName=name, startTime=old.get("startTime") or state.start_time)
    if kind is MLFLOW_EXPORT and outcome.phase != "Failed":
        status.update(path=_annotation(job, PATH_ANNOTATION), claimName=_claim_of(job))
    patch(kind, meta, with_conditions(status, old, outcome.phase, outcome.phase, status["message"], old.get("observedGeneration")))
    emit(kind, meta, outcome.phase, f"Job {name}: {status['message']}", warning=outcome.phase != "Succeeded")
    kube().annotate_job(meta["namespace"], name, {RECORDED_ANNOTATION: "true"})


def mark_running(kind: Kind, resource: dict[str, Any], job_name: str, state: JobState) -> None:
    meta, old = resource["metadata"], resource.get("status") or {}
    if state.phase != "Running" or (old.get("phase") == "Running" and old.get("jobName") == job_name):
        return
    message = f"Job {job_name} is running"
    status = {"jobName": job_name, "startTime": state.start_time or schedule.format_time(schedule.now()), "message": message}
    patch(kind, meta, with_conditions(status, old, "Running", "Running", message, meta.get("generation")))
    emit(kind, meta, "Running", message)


def finished_outcome(job: dict[str, Any], state: JobState) -> Any:
    pods = kube().pods_of_job(job["metadata"]["namespace"], job["metadata"]["name"])
    message, exit_code = pod_termination(pods)
    return outcome_of(state, message, exit_code)


def _annotation(job: dict[str, Any], key: str) -> str | None:
    return (job["metadata"].get("annotations") or {}).get(key)


def _claim_of(job: dict[str, Any]) -> str | None:
    for volume in job["spec"]["template"]["spec"].get("volumes", []):
        if volume.get("name") == "data":
            return volume["persistentVolumeClaim"]["claimName"]
    return None


def job_deleted(job: dict[str, Any]) -> None:
    """A Job deleted before it finished (by hand, by Replace): its resource must not wait forever."""
    if job_state(job).finished or _annotation(job, RECORDED_ANNOTATION):
        return
    owned = _owner(job)
    if owned is None:
        return
    kind, resource = owned
    name = job["metadata"]["name"]
    old = resource.get("status") or {}
    if _is_scheduled(kind, resource):
        active = [a for a in old.get("active") or [] if a.get("name") != name]
        patch(kind, resource["metadata"], {"active": active or None})
    elif old.get("jobName") == name and old.get("phase") not in TERMINAL_PHASES:
        finish_without_job(kind, resource, f"Job {name} was deleted before it finished")


# --- schedules: KiroframeSync, MlflowExport with schedule -------------------------------------------

# ferry.controller.periodic calls tick() for each of them on the operator's clock (no kopf timers:
# they would put a finalizer on every scheduled object).


def tick(kind: Kind, body: dict[str, Any]) -> None:
    """Start the run that is due, if any: at most one per look, whatever was missed."""
    meta, spec, old = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    model, errors = validate(kind, spec)
    if errors:
        fail_validation(kind, body, errors)
        return
    status: dict[str, Any] = {}
    if old.get("phase") == "FailedValidation":
        last_phase = (old.get("lastResult") or {}).get("phase", "Pending")
        status = with_conditions({"validationErrors": None, "message": None}, old, last_phase, "SpecValid", "",
                                 meta.get("generation"))  # fmt: skip
    now = schedule.now()
    marks = [old.get("lastScheduleTime"), old.get("lastMissedTime"), meta["creationTimestamp"]]
    last = max(schedule.parse_time(t) for t in marks if t)
    plan = schedule.plan(model.schedule, model.time_zone, last, now, model.starting_deadline_seconds)
    if old.get("nextScheduleTime") != schedule.format_time(plan.next):
        status["nextScheduleTime"] = schedule.format_time(plan.next)
    missed = (old.get("missedRuns") or 0) + plan.missed
    if not old.get("phase"):  # a new schedule says so, rather than showing no phase at all
        waiting = ("Suspended: no run starts while spec.suspend is true" if model.suspend
                   else f"Waiting for the first run at {schedule.format_time(plan.next)}")
        status = with_conditions({**status, "message": waiting}, old, "Pending", "WaitingForSchedule", waiting,
                                 meta.get("generation"))  # fmt: skip
    if model.suspend or (plan.due is None and not plan.missed):
        if status:
            patch(kind, meta, status)
        return
    if plan.due is None:
        status.update(missedRuns=missed, lastMissedTime=schedule.format_time(now))
        patch(kind, meta, status)
        emit(kind, meta, "MissedSchedule", f"{plan.missed} run(s) missed their startingDeadlineSeconds", warning=True)
        return
    jobs = kube().jobs_of(kind, meta["namespace"], meta["name"], meta["uid"])
    active = [j["metadata"]["name"] for j in jobs if not job_state(j).finished]
    due = schedule.format_time(plan.due)
    if active and model.concurrency_policy == "Forbid":
        status.update(missedRuns=missed + 1, lastMissedTime=due)
        patch(kind, meta, status)
        emit(kind, meta, "RunSkipped", f"Run of {due} skipped: Job {active[0]} is still active (Forbid)")
        return
    if active and model.concurrency_policy == "Replace":
        for name in active:
            kube().delete_job(meta["namespace"], name)
            emit(kind, meta, "RunReplaced", f"Deleted Job {name} to start the run of {due} (Replace)")
        active = []
    job_name = scheduled_job_name(meta["name"], int(plan.due.timestamp()))
    job = scheduled_job(kind, body, model, job_name, due)
    if create_job(kind, body, job) is None:
        return
    status.update(
        lastScheduleTime=due, missedRuns=missed or None, jobName=job_name,
        active=[{"name": n} for n in active if n != job_name] + [{"name": job_name, "scheduledTime": due}],
        observedGeneration=meta.get("generation"),
    )  # fmt: skip
    status["message"] = message = f"Job {job_name} created for the run of {due}"
    patch(kind, meta, with_conditions(status, old, "Pending", "JobCreated", message, meta.get("generation")))


def scheduled_job(kind: Kind, body: dict[str, Any], spec: Any, job_name: str, due: str) -> dict[str, Any]:
    meta, old = body["metadata"], body.get("status") or {}
    payload = JobPayload(kind=kind.kind, name=meta["name"], namespace=meta["namespace"], spec=body["spec"],
                         scheduled_time=due)  # fmt: skip
    claim = None
    annotations = {SCHEDULED_ANNOTATION: due}
    if kind is MLFLOW_EXPORT:
        stamp = due.replace("-", "").replace(":", "")
        sub_path = "/".join(p for p in (spec.destination.pvc.sub_path.strip("/"), f"{meta['name']}-{stamp}") if p)
        payload.output_path, payload.keep = _in_data(sub_path), spec.keep
        claim = spec.destination.pvc.claim_name
        annotations[PATH_ANNOTATION] = sub_path
    elif spec.options is None or spec.options.incremental:
        payload.watermark = old.get("watermark")
    return build_job(kind, body, payload, job_name=job_name, settings=settings.current(), claim_name=claim,
                     annotations=annotations)  # fmt: skip


def converge_scheduled(kind: Kind, resource: dict[str, Any], job: dict[str, Any], state: JobState) -> None:
    meta, old = resource["metadata"], resource.get("status") or {}
    name = job["metadata"]["name"]
    if not state.finished:
        mark_running(kind, resource, name, state)
        return
    outcome = finished_outcome(job, state)
    result = result_status(outcome, state)
    last_result = {
        "phase": outcome.phase, "jobName": name, "scheduledTime": _annotation(job, SCHEDULED_ANNOTATION),
        "completionTime": result["completionTime"], "counts": result["counts"], "message": result["message"],
    }  # fmt: skip
    status = {
        **result,
        "lastResult": last_result,
        "active": [a for a in old.get("active") or [] if a.get("name") != name] or None,
    }
    if outcome.phase != "Failed":
        status["lastSuccessfulTime"] = result["completionTime"]
        if kind is MLFLOW_EXPORT:
            last_result["path"] = _annotation(job, PATH_ANNOTATION)
            status.update(path=last_result["path"], claimName=_claim_of(job))
        if outcome.watermark is not None:
            status["watermark"] = outcome.watermark
    patch(kind, meta, with_conditions(status, old, outcome.phase, outcome.phase, result["message"], meta.get("generation")))
    emit(kind, meta, outcome.phase, f"Job {name}: {result['message']}", warning=outcome.phase != "Succeeded")
    kube().annotate_job(meta["namespace"], name, {RECORDED_ANNOTATION: "true"})
    prune_history(kind, resource)


def prune_history(kind: Kind, resource: dict[str, Any]) -> None:
    """Delete finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit, oldest first."""
    meta, spec = resource["metadata"], resource.get("spec") or {}
    limits = {"Complete": spec.get("successfulJobsHistoryLimit", 3), "Failed": spec.get("failedJobsHistoryLimit", 1)}
    jobs = kube().jobs_of(kind, meta["namespace"], meta["name"], meta["uid"])
    jobs.sort(key=lambda j: j["metadata"]["creationTimestamp"], reverse=True)
    for phase, limit in limits.items():
        finished = [j for j in jobs if job_state(j).phase == phase]
        for old_job in finished[limit:]:
            kube().delete_job(meta["namespace"], old_job["metadata"]["name"])
