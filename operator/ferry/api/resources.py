"""The four kinds, with what the CRD, the controller and the runner need to know of each."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from ferry.api.export import MlflowExportSpec, MlflowExportStatus
from ferry.api.kiroframe import KiroframeSyncSpec, KiroframeSyncStatus
from ferry.api.mirror import SYNC_NOW_ANNOTATION, MlflowMirrorSpec, MlflowMirrorStatus
from ferry.api.mlflow_import import MlflowImportSpec, MlflowImportStatus
from ferry.api.status import BaseStatus

GROUP = "ferry.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "ferry"


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0
    description: str = ""


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_name: str
    spec: type[BaseModel]
    status: type[BaseStatus]
    description: str
    columns: tuple[PrinterColumn, ...] = field(default=())
    always_scheduled: bool = False  # runs on spec.schedule only, never once

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


PHASE = PrinterColumn("Phase", ".status.phase", description="Where the work is.")
PROGRESS = PrinterColumn("Progress", ".status.progress.summary", description="Objects done/total.")
AGE = PrinterColumn("Age", ".metadata.creationTimestamp", type="date")
MESSAGE = PrinterColumn("Message", ".status.message", priority=1)

MLFLOW_EXPORT = Kind(
    kind="MlflowExport",
    plural="mlflowexports",
    short_name="mlexport",
    spec=MlflowExportSpec,
    status=MlflowExportStatus,
    description="Exports MLflow runs, experiments and registered models to a directory, once or on a schedule.",
    columns=(PHASE, PROGRESS, PrinterColumn("Source", ".spec.source.trackingUri"), AGE, MESSAGE),
)
MLFLOW_IMPORT = Kind(
    kind="MlflowImport",
    plural="mlflowimports",
    short_name="mlimport",
    spec=MlflowImportSpec,
    status=MlflowImportStatus,
    description="Imports an export directory (ferry's or mlflow-export-import's) into an MLflow tracking server.",
    columns=(PHASE, PROGRESS, PrinterColumn("Destination", ".spec.destination.trackingUri"), AGE, MESSAGE),
)
KIROFRAME_SYNC = Kind(
    kind="KiroframeSync",
    plural="kiroframesyncs",
    short_name="kfsync",
    spec=KiroframeSyncSpec,
    status=KiroframeSyncStatus,
    description="Pushes MLflow metadata to Kiroframe on a cron schedule, incrementally.",
    always_scheduled=True,
    columns=(
        PHASE,
        PROGRESS,
        PrinterColumn("Schedule", ".spec.schedule"),
        PrinterColumn("Last Sync", ".status.lastSuccessfulTime", type="date"),
        AGE,
        MESSAGE,
    ),
)

MLFLOW_MIRROR = Kind(
    kind="MlflowMirror",
    plural="mlflowmirrors",
    short_name="mlmirror",
    spec=MlflowMirrorSpec,
    status=MlflowMirrorStatus,
    description="Keeps a standby MLflow tracking server in step with a primary on a cron schedule, incrementally, "
    f"server to server; the annotation {SYNC_NOW_ANNOTATION} starts one sync at once (a cut-over).",
    always_scheduled=True,
    columns=(
        PHASE,
        PrinterColumn("Lag", ".status.lagSeconds", type="integer",
                      description="Seconds the standby is behind, as of the latest sync."),
        PrinterColumn("Last Sync", ".status.lastSyncTime", type="date"),
        AGE,
        MESSAGE,
    ),
)

KINDS: tuple[Kind, ...] = (MLFLOW_EXPORT, MLFLOW_IMPORT, KIROFRAME_SYNC, MLFLOW_MIRROR)
BY_KIND: dict[str, Kind] = {k.kind: k for k in KINDS}
BY_PLURAL: dict[str, Kind] = {k.plural: k for k in KINDS}
