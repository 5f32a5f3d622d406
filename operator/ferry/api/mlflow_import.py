"""MlflowImport: an export directory into a tracking server (like a Velero Restore)."""

from __future__ import annotations

from pydantic import Field

from ferry.api.common import ApiModel, BaseStatus, JobSettings, Name, PvcLocation, TrackingServer
from ferry.options import ImportOptions, ImportTarget


class ExportRef(ApiModel):
    name: Name = Field(description="An MlflowExport in the same namespace; the import waits for it.")


class ImportSource(ApiModel):
    """Exactly one of exportRef and pvc."""

    export_ref: ExportRef | None = None
    pvc: PvcLocation | None = None


ONE_SOURCE = {"oneOf": [{"required": ["exportRef"]}, {"required": ["pvc"]}]}


class MlflowImportSpec(ApiModel):
    destination: TrackingServer
    source: ImportSource = Field(json_schema_extra=ONE_SOURCE)
    target: ImportTarget | None = None
    options: ImportOptions | None = None
    job: JobSettings | None = None


class MlflowImportStatus(BaseStatus):
    source_path: str | None = Field(default=None, description="Directory imported, inside its claim.")
