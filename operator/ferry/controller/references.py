"""Where an export is, and an MlflowImport's ``source.exportRef``, which names an MlflowExport.

An export lives in a directory of a claim or under a prefix of a bucket (`ExportLocation`). An
import applied together with its export waits for it (``Pending``, ``WaitingForExport``)
and starts on the export's claim and path (or bucket prefix, endpoint and keys) once the export
has ``Succeeded`` or ``PartiallyFailed``; it fails when the export failed, and is refused when
the export does not appear within the grace period or is scheduled (which export would it be?).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from ferry.api.common import PvcLocation, S3Storage
from ferry.api.export import MlflowExportSpec
from ferry.api.mlflow_import import MlflowImportSpec
from ferry.controller import phases
from ferry.controller.actions import Actions, Emit, PatchStatus
from ferry.controller.jobs import in_data
from ferry.controller.phases import transition
from ferry.controller.resource import Resource
from ferry.outcome import Phase
from ferry.storage.location import is_s3_url

READY_PHASES = (Phase.SUCCEEDED, Phase.PARTIALLY_FAILED)


@dataclass(frozen=True)
class ExportLocation:
    """A directory `sub_path` of `claim`, or (claim None) the bucket prefix `s3` with the Secret of its keys."""

    claim: str | None
    sub_path: str = ""
    s3: S3Storage | None = None

    @property
    def path(self) -> str:
        """What status and the Job's annotation say: the directory in the claim, or ``s3://bucket/prefix``."""
        return self.s3.location().url if self.s3 is not None else self.sub_path

    @property
    def job_path(self) -> str:
        """What the Job reads or writes: the directory inside its container, or the ``s3://`` URL."""
        return self.path if self.s3 is not None else in_data(self.sub_path)


def located(pvc: PvcLocation | None, s3: S3Storage | None, run: str = "") -> ExportLocation:
    """The claim directory or bucket prefix a spec names, with `run` (one scheduled run's name) below it."""
    if s3 is not None:
        return ExportLocation(None, s3=s3.model_copy(update={"prefix": s3.location(run).prefix}))
    assert pvc is not None  # validation: exactly one of them
    return ExportLocation(pvc.claim_name, "/".join(p for p in (pvc.sub_path.strip("/"), run) if p))


def export_location(spec: MlflowExportSpec, run: str = "") -> ExportLocation:
    """Where an export (one scheduled run, `run`) writes."""
    return located(spec.destination.pvc, spec.destination.s3, run)


def import_location(spec: MlflowImportSpec) -> ExportLocation | None:
    """Where an import reads, unless it names an MlflowExport (`resolve_export`)."""
    source = spec.source
    return None if source.export_ref is not None else located(source.pvc, source.s3)


def _in_bucket(export: Resource, url: str) -> ExportLocation | None:
    """The bucket prefix `url` an export wrote, reached with its spec's endpoint, region and keys."""
    try:
        s3 = MlflowExportSpec.model_validate(export.spec).destination.s3
    except ValidationError:
        return None
    if s3 is None:
        return None
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return ExportLocation(None, s3=s3.model_copy(update={"bucket": bucket, "prefix": prefix.strip("/")}))


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
            f"spec.source.exportRef.name: MlflowExport '{ref}' is scheduled; import one of its exports with source.pvc or source.s3"
        ], now)  # fmt: skip
    exported = export.status
    if exported.phase in READY_PHASES and is_s3_url(url := exported.path or ""):
        where = _in_bucket(export, url)
        if where is not None:
            return where
        return phases.finish_without_job(
            resource, f"MlflowExport {ref} wrote {url}, but its spec no longer names spec.destination.s3", now)
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
