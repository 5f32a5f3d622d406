"""References between resources: an MlflowImport's ``source.exportRef`` names an MlflowExport.

An import applied together with its export waits for it (``Pending``, ``WaitingForExport``)
and starts on the export's claim and path once the export has ``Succeeded`` or
``PartiallyFailed``; it fails when the export failed, and is refused when the export does not
appear within the grace period or is scheduled (which export would it be?).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ferry.controller import phases
from ferry.controller.actions import Actions, Emit, PatchStatus
from ferry.controller.phases import transition
from ferry.controller.resource import Resource
from ferry.outcome import Phase

READY_PHASES = (Phase.SUCCEEDED, Phase.PARTIALLY_FAILED)


@dataclass(frozen=True)
class ExportLocation:
    claim: str
    sub_path: str


def resolve_export(resource: Resource, ref: str, export: Resource | None, now: datetime,
                   grace_seconds: float) -> ExportLocation | Actions:
    """Where the export `ref` wrote, once it is finished; otherwise what to do meanwhile."""
    if export is None:
        if now - resource.created > timedelta(seconds=grace_seconds):
            return phases.fail_validation(resource, [
                f"spec.source.exportRef.name: MlflowExport '{ref}' does not exist in namespace {resource.namespace}"
            ], now)  # fmt: skip
        return wait_for_export(resource, f"MlflowExport {ref} does not exist yet", now)
    if export.scheduled:
        return phases.fail_validation(resource, [
            f"spec.source.exportRef.name: MlflowExport '{ref}' is scheduled; import one of its exports with source.pvc"
        ], now)  # fmt: skip
    exported = export.status
    if exported.phase in READY_PHASES and exported.claim_name:
        return ExportLocation(exported.claim_name, exported.path or "")
    if exported.phase in (Phase.FAILED, Phase.FAILED_VALIDATION):
        message = f"MlflowExport {ref} {exported.phase.value}: {exported.message or ''}".strip()
        return phases.finish_without_job(resource, message, now)
    waiting_for = exported.phase.value if exported.phase else "not started"
    return wait_for_export(resource, f"Waiting for MlflowExport {ref} ({waiting_for})", now)


def wait_for_export(resource: Resource, message: str, now: datetime) -> Actions:
    old = resource.status
    if old.phase is Phase.PENDING and old.message == message:
        return []
    status = transition(resource, Phase.PENDING, "WaitingForExport", message, now,
                        message=message, observed_generation=resource.generation, validation_errors=None)
    actions: Actions = [PatchStatus(status)]
    if old.phase is not Phase.PENDING:
        actions.append(Emit("WaitingForExport", message))
    return actions
