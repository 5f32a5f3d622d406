"""MlflowImport: an export directory into a tracking server (like a Velero Restore)."""

from __future__ import annotations

from pydantic import Field

from ferry.api.common import ApiModel, JobSettings, Name, PvcLocation, S3Storage, TrackingServer
from ferry.api.status import BaseStatus
from ferry.options import ImportOptions, ImportTarget


class ExportRef(ApiModel):
    """A one-shot MlflowExport whose directory (or bucket prefix) is imported."""

    name: Name = Field(
        description="Name of an MlflowExport without schedule in the same namespace. The import waits until it "
        "Succeeded or PartiallyFailed and reads where it wrote (a claim's directory, or a bucket prefix with "
        "the export's endpoint and credentialsSecret); it fails if the export fails, and fails "
        "validation if the export is scheduled or still does not exist after a grace period (30 s by default)."
    )


class ImportSource(ApiModel):
    """Exactly one of exportRef, pvc and s3."""

    export_ref: ExportRef | None = Field(default=None, description="Import what an MlflowExport wrote.")
    pvc: PvcLocation | None = Field(
        default=None,
        description="Import a directory on a claim, mounted read-only: e.g. one run of a scheduled export, or "
        "an mlflow-export-import export.",
    )
    s3: S3Storage | None = Field(
        default=None,
        description="Import an export in object storage: the bucket prefix that holds it (e.g. one run of a "
        "scheduled export, <prefix>/<name>-<time>).",
    )


ONE_SOURCE = {"oneOf": [{"required": ["exportRef"]}, {"required": ["pvc"]}, {"required": ["s3"]}]}
# Where the Job finds the webhookSecrets Secret: mounted read-only, one file per key (webhook name).
WEBHOOK_SECRETS_DIR = "/etc/ferry/webhook-secrets"


class WebhookSecrets(ApiModel):
    """The signing secrets of the imported webhooks, which MLflow never exports."""

    secret_name: Name = Field(
        description="Name of a Secret in the resource's namespace whose keys are webhook names and whose values "
        "are their signing secrets (an empty value: the webhook has none). Mounted read-only into the Job, "
        "never copied into its environment or the status. A webhook without a key is imported without a "
        "secret and reported (PartiallyFailed)."
    )


class MlflowImportSpec(ApiModel):
    """Which export directory to import into which tracking server, and how; runs once."""

    destination: TrackingServer = Field(description="The tracking server to import into.")
    source: ImportSource = Field(
        json_schema_extra=ONE_SOURCE,
        description="The export to import: exactly one of exportRef, pvc and s3.",
    )
    target: ImportTarget | None = Field(
        default=None, description="Names in the destination. Unset: the source names."
    )
    options: ImportOptions | None = Field(default=None, description="How to import. Unset: every option's default.")
    webhook_secrets: WebhookSecrets | None = Field(
        default=None,
        description="Secrets of the webhooks the export holds. Unset: every webhook is imported without a secret "
        "and reported.",
    )
    job: JobSettings | None = Field(
        default=None, description="How the Job is run. Unset fields take the operator's defaults."
    )


class MlflowImportStatus(BaseStatus):
    """The state of the import; written by the operator."""

    source_path: str | None = Field(
        default=None,
        description="What was imported: a directory relative to its claim's root (unset: the root itself), or "
        "s3://<bucket>/<prefix>.",
    )
