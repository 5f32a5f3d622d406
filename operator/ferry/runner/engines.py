"""From a resource's spec (camelCase, as applied) to the engine calls that do the work.

Engines are imported inside each adapter: an import Job never loads the Kiroframe client, a sync
Job never loads the export machinery.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ferry.api.export import MlflowExportSpec
from ferry.api.job import KIROFRAME_TOKEN_ENV, SCRATCH_DIR, JobPayload
from ferry.api.kiroframe import KiroframeSyncSpec
from ferry.api.mlflow_import import MlflowImportSpec
from ferry.errors import UsageError
from ferry.outcome import Outcome
from ferry.progress import ProgressSink

WORKERS = int(os.environ.get("FERRY_WORKERS", "4"))


def run_export(payload: JobPayload, on_progress: ProgressSink | None) -> Outcome:
    from ferry.engine import options as engine_options
    from ferry.engine.service import export_objects

    spec = MlflowExportSpec.model_validate(payload.spec)
    options = spec.options.wire() if spec.options else {}
    selection = engine_options.Selection(
        experiments=spec.objects.experiments,
        run_ids=spec.objects.run_ids,
        models=spec.objects.models,
        model_versions=[(v.model, v.version) for v in spec.objects.model_versions],
    )
    export_options = engine_options.ExportOptions(**_snake(options))
    out_dir = Path(payload.output_path or "")
    outcome = export_objects(
        spec.source.tracking_uri, out_dir, selection, export_options, workers=WORKERS, on_progress=on_progress
    )
    if payload.keep and outcome.phase != "Failed":
        prune_exports(out_dir, payload.name, payload.keep)
    return outcome


def run_import(payload: JobPayload, on_progress: ProgressSink | None) -> Outcome:
    from ferry.engine import options as engine_options
    from ferry.engine.service import import_objects

    spec = MlflowImportSpec.model_validate(payload.spec)
    options = _snake(spec.options.wire()) if spec.options else {}
    target = spec.target
    if target is not None:
        options.update(experiment_name=target.experiment_name, model_name=target.model_name)
    renames = target.renames if target and target.renames else None
    return import_objects(
        spec.destination.tracking_uri,
        Path(payload.input_path or ""),
        engine_options.ImportOptions(**{k: v for k, v in options.items() if v is not None}),
        experiment_renames=renames.experiments if renames else {},
        model_renames=renames.models if renames else {},
        workers=WORKERS,
        on_progress=on_progress,
    )


def run_kiroframe(payload: JobPayload, on_progress: ProgressSink | None) -> Outcome:
    from ferry.kiroframe.settings import KiroframeSettings
    from ferry.kiroframe.sync import run_sync

    spec = KiroframeSyncSpec.model_validate(payload.spec)
    token = os.environ.get(KIROFRAME_TOKEN_ENV, "")
    if not token:
        raise UsageError(f"the Kiroframe token is missing: {KIROFRAME_TOKEN_ENV} is empty")
    options = spec.options.wire() if spec.options else {}
    incremental = options.get("incremental", True)
    settings = KiroframeSettings(
        tracking_url=spec.source.tracking_uri,
        kiroframe_url=spec.kiroframe.url,
        profiling_token=token,
        base_dir=Path(SCRATCH_DIR) / "kiroframe",
        export_models=options.get("exportModels", True),
        include_schema_profile=options.get("includeSchemaProfile", False),
        download_artifacts=options.get("downloadArtifacts", False),
        experiment_page_size=options.get("experimentPageSize", 100),
        run_page_size=options.get("runPageSize", 1000),
        incremental=incremental,
        since=payload.watermark if incremental else None,
        workers=WORKERS,
    )
    return run_sync(settings, on_progress=on_progress)


def prune_exports(out_dir: Path, name: str, keep: int) -> list[Path]:
    """Remove the oldest ``<name>-<time>`` siblings of `out_dir` beyond `keep` (names sort by time)."""
    siblings = sorted(p for p in out_dir.parent.glob(f"{name}-*") if p.is_dir())
    removed = siblings[: max(len(siblings) - keep, 0)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def _snake(camel: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in camel.items():
        out["".join(f"_{c.lower()}" if c.isupper() else c for c in key)] = value
    return out


ENGINES = {"MlflowExport": run_export, "MlflowImport": run_import, "KiroframeSync": run_kiroframe}
