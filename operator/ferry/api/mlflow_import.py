"""MlflowImport: an export directory into a tracking server (like a Velero Restore)."""

from __future__ import annotations

from pydantic import Field

from ferry.api.common import ApiModel, JobSettings, Name, PvcLocation, TrackingServer
from ferry.api.status import BaseStatus
from ferry.options import ImportOptions, ImportTarget


class ExportRef(ApiModel):
    """A one-shot MlflowExport whose directory is imported."""

    name: Name = Field(
        description="Name of an MlflowExport without schedule in the same namespace. The import waits until it "
        "Succeeded or PartiallyFailed and reads its directory; it fails if the export fails, and fails "
        "validation if the export is scheduled or still does not exist after a grace period (30 s by default)."
    )


class ImportSource(ApiModel):
    """Exactly one of exportRef and pvc."""

    export_ref: ExportRef | None = Field(default=None, description="Import what an MlflowExport wrote.")
    pvc: PvcLocation | None = Field(
        default=None,
        description="Import a directory on a claim, mounted read-only: e.g. one run of a scheduled export, or "
        "an mlflow-export-import export.",
    )


ONE_SOURCE = {"oneOf": [{"required": ["exportRef"]}, {"required": ["pvc"]}]}


class MlflowImportSpec(ApiModel):
    """Which export directory to import into which tracking server, and how; runs once."""

    destination: TrackingServer = Field(description="The tracking server to import into.")
    source: ImportSource = Field(
        json_schema_extra=ONE_SOURCE, description="The export directory to import: exactly one of exportRef and pvc."
    )
    target: ImportTarget | None = Field(
        default=None, description="Names in the destination. Unset: the source names."
    )
    options: ImportOptions | None = Field(default=None, description="How to import. Unset: every option's default.")
    job: JobSettings | None = Field(
        default=None, description="How the Job is run. Unset fields take the operator's defaults."
    )


class MlflowImportStatus(BaseStatus):
    """The state of the import; written by the operator."""

    source_path: str | None = Field(
        default=None, description="Directory imported, relative to its claim's root (unset: the root itself)."
    )
