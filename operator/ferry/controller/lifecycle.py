"""One-shot resources (an MlflowExport without a schedule, an MlflowImport): validate, start, follow.

A one-shot resource gets exactly one Job, named from its uid, and is immutable once started: a
later spec change is reported once per generation (``SpecChangeIgnored``) and otherwise
ignored. `decide` is the whole lifecycle as a pure function of the resource, what was observed
of its Job and its export, and the time; `Observed` says what the caller must read first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from ferry.api.export import MlflowExportSpec
from ferry.api.mlflow_import import MlflowImportSpec
from ferry.controller import phases
from ferry.controller.actions import Actions, CreateJob, Emit, PatchStatus
from ferry.controller.convergence import converge
from ferry.controller.cron import parse_time
from ferry.controller.jobs import PATH_ANNOTATION, build_job, one_shot_job_name, start_timeout
from ferry.controller.phases import transition
from ferry.controller.policy import violations
from ferry.controller.references import ExportLocation, export_location, import_location, resolve_export
from ferry.controller.resource import Resource
from ferry.controller.settings import OperatorSettings
from ferry.controller.validation import validate
from ferry.outcome import Phase

SPEC_APPLIED = "SpecApplied"  # condition: False once a change to a started resource was ignored


@dataclass(frozen=True)
class Observed:
    """What was read besides the resource: its Job (and the Job's pods), an import's export, and
    the labels of the Secrets an unstarted resource names, when the policy asks for a label.

    `job_read` says whether the Job was looked up at all: the Job's own events keep a running
    resource up to date, so only a resumed or periodic look reads it (and notices it gone).
    """

    job_read: bool = False
    job: dict[str, Any] | None = None
    pods: list[dict[str, Any]] = field(default_factory=list)
    export: Resource | None = None
    secret_labels: dict[str, dict[str, str] | None] = field(default_factory=dict)


def wants_job(resource: Resource) -> bool:
    """The resource has started and is not done: its Job must be read."""
    status = resource.status
    return bool(status.job_name) and not (status.phase is not None and status.phase.terminal)


def pending_since(resource: Resource) -> datetime | None:
    """When the resource last became Pending (its Job was created): the Succeeded condition's time."""
    succeeded = next((c for c in resource.status.conditions or [] if c.type == "Succeeded"), None)
    return parse_time(succeeded.last_transition_time) if succeeded is not None else None


def wants_export(resource: Resource) -> str | None:
    """The MlflowExport an unstarted import must look at, if it names one."""
    if resource.kind.kind != "MlflowImport" or resource.status.job_name:
        return None
    ref = ((resource.spec.get("source") or {}).get("exportRef") or {}).get("name")
    return ref if isinstance(ref, str) else None


def decide(resource: Resource, observed: Observed, now: datetime, settings: OperatorSettings) -> Actions:
    status = resource.status
    if status.job_name:
        actions = ignored_spec_change(resource, now)
        for action in actions:
            if isinstance(action, PatchStatus):
                resource = resource.patched(action.status)
        if wants_job(resource) and observed.job_read:
            if observed.job is None:
                actions += phases.finish_without_job(
                    resource, f"Job {status.job_name} disappeared before it finished", now)
            else:
                actions += converge(resource, observed.job, observed.pods, now, start_timeout(resource, settings))
        return actions
    if status.phase is not None and status.phase.terminal and status.phase is not Phase.FAILED_VALIDATION:
        return []
    spec, errors = validate(resource.kind, resource.spec)
    if spec is not None and not errors:
        errors = list(violations(spec, settings.policy, settings.job_image, observed.secret_labels,
                               settings.api_server_hosts))
    if errors:
        return phases.fail_validation(resource, errors, now)
    if isinstance(spec, MlflowExportSpec):
        target = export_location(spec)
        return start(resource, spec, target, now, settings, read_only=False, output_path=target.job_path)
    assert isinstance(spec, MlflowImportSpec)
    where: ExportLocation | Actions | None = import_location(spec)
    if where is None:
        assert spec.source.export_ref is not None
        where = resolve_export(resource, spec.source.export_ref.name, observed.export, now,
                               settings.export_ref_grace_seconds)
    if not isinstance(where, ExportLocation):
        return where
    return start(resource, spec, where, now, settings, read_only=True, input_path=where.job_path,
                 status_fields={"source_path": where.path})


def start(resource: Resource, spec: BaseModel, where: ExportLocation, now: datetime, settings: OperatorSettings,
          *, read_only: bool, status_fields: dict[str, Any] | None = None, **paths: str) -> Actions:
    """Create the one Job of a one-shot resource (its name is fixed by the uid) and say so in status."""
    job_name = one_shot_job_name(resource.name, resource.uid)
    job = build_job(resource, spec, job_name=job_name, settings=settings, claim_name=where.claim,
                    claim_read_only=read_only, s3=where.s3, annotations={PATH_ANNOTATION: where.path}, **paths)
    message = f"Job {job_name} created"
    status = transition(resource, Phase.PENDING, "JobCreated", message, now, job_name=job_name,
                        observed_generation=resource.generation, validation_errors=None, message=message,
                        **(status_fields or {}))  # fmt: skip
    return [CreateJob(job, then=[PatchStatus(status)], refused=lambda reason: phases.job_refused(resource, reason, now))]


def ignored_spec_change(resource: Resource, now: datetime) -> Actions:
    """Once per generation: a started one-shot resource does not follow changes to its spec."""
    started, generation = resource.status.observed_generation, resource.generation
    if generation is None or generation == started:
        return []
    said = next((c for c in resource.status.conditions or [] if c.type == SPEC_APPLIED), None)
    if said is not None and said.observed_generation == generation:
        return []
    message = f"{resource.kind.kind} started with generation {started}; it cannot change once started"
    conditions = phases.set_condition(resource.status.conditions, SPEC_APPLIED, "False", "SpecChangeIgnored",
                                      message, generation, now)
    return [PatchStatus(resource.new_status(conditions=conditions)), Emit("SpecChangeIgnored", message, warning=True)]
