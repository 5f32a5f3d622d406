"""MlflowImport: an export directory into a tracking server (like a Velero Restore)."""

from __future__ import annotations

from pydantic import Field

from ferry.api.common import ApiModel, BaseStatus, JobSettings, Name, PvcLocation, TrackingServer


class ExportRef(ApiModel):
    name: Name = Field(description="An MlflowExport in the same namespace; the import waits for it.")


class ImportSource(ApiModel):
    """Exactly one of exportRef and pvc."""

    export_ref: ExportRef | None = None
    pvc: PvcLocation | None = None


ONE_SOURCE = {"oneOf": [{"required": ["exportRef"]}, {"required": ["pvc"]}]}


class Renames(ApiModel):
    experiments: dict[str, str] = Field(default_factory=dict, description="Source name -> destination name.")
    models: dict[str, str] = Field(default_factory=dict, description="Source name -> destination name.")


class ImportTarget(ApiModel):
    experiment_name: str | None = Field(default=None, min_length=1, description="Import all runs into this experiment.")
    model_name: str | None = Field(default=None, min_length=1, description="Import the model under this name.")
    renames: Renames | None = None


class ImportOptions(ApiModel):
    import_source_tags: bool = False
    use_src_user_id: bool = False
    delete_model: bool = Field(default=False, description="Delete the destination model first.")
    create_model: bool = True
    import_stages_and_aliases: bool = True
    import_metadata: bool = True
    mlmodel_fix: bool = True
    await_creation_for: int | None = Field(
        default=None, ge=0, le=3600, description="Seconds to wait for each model version to become READY."
    )


class MlflowImportSpec(ApiModel):
    destination: TrackingServer
    source: ImportSource = Field(json_schema_extra=ONE_SOURCE)
    target: ImportTarget | None = None
    options: ImportOptions | None = None
    job: JobSettings | None = None


class MlflowImportStatus(BaseStatus):
    source_path: str | None = Field(default=None, description="Directory imported, inside its claim.")
