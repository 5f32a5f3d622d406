"""From a resource's validated spec to the engine calls that do the work.

The spec's option models are the engine's (`ferry.options`): each adapter hands them over as
they are. Engines are imported inside each adapter: an import Job never loads the Kiroframe
client, a sync Job never loads the export machinery. An export or import whose payload names
object storage (`JobPayload.storage`, this run's prefix already resolved by the operator) runs
the same engine call on a local spool that `ferry.storage.transfer` streams to or from the bucket.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferry.api.export import MlflowExportSpec
from ferry.api.job import KIROFRAME_TOKEN_ENV, SCRATCH_DIR, JobPayload
from ferry.api.kiroframe import KiroframeSyncSpec
from ferry.api.mirror import MlflowMirrorSpec
from ferry.api.mlflow_import import WEBHOOK_SECRETS_DIR, MlflowImportSpec
from ferry.errors import UsageError
from ferry.options import ExportOptions, ImportOptions, KiroframeOptions
from ferry.outcome import Outcome, Phase
from ferry.progress import ProgressSink
from ferry.storage.retention import FINISHED, beyond_keep, mark_finished

WORKERS = int(os.environ.get("FERRY_WORKERS", "4"))

# An adapter: (the kind's validated spec, the payload, the progress sink) -> the Outcome.
Engine = Callable[[Any, JobPayload, ProgressSink | None], Outcome]


def run_export(spec: MlflowExportSpec, payload: JobPayload, on_progress: ProgressSink | None) -> Outcome:
    from ferry.engine.service import export_objects

    def export(out_dir: Path) -> Outcome:
        return export_objects(spec.source.tracking_uri, out_dir, spec.objects, spec.options or ExportOptions(),
                              workers=WORKERS, on_progress=on_progress)

    if payload.storage is not None:
        return export_to_bucket(spec, payload, export)
    out_dir = Path(payload.output_path or "")
    outcome = export(out_dir)
    if payload.keep and outcome.phase is not Phase.FAILED:
        prune_exports(out_dir, payload.name, payload.keep)
    return outcome


def export_to_bucket(spec: MlflowExportSpec, payload: JobPayload, export: Callable[[Path], Outcome]) -> Outcome:
    """`export` streamed to ``payload.storage``; a scheduled run then prunes its oldest finished siblings.

    A failed prune does not undo a finished export: it is one warning line in the Job's log.
    """
    from ferry.errors import FerryError
    from ferry.storage import transfer

    assert payload.storage is not None
    outcome = transfer.export_to(payload.storage, export)
    parent = spec.destination.s3
    if payload.keep and outcome.phase is not Phase.FAILED and parent is not None:
        try:
            transfer.prune(parent.location(), payload.keep, resource=payload.name,
                           current=payload.storage.prefix.rsplit("/", 1)[-1])
        except FerryError as err:
            print(f"Warning: old exports under {parent.location().url} not pruned: {err.message}", file=sys.stderr)
    return outcome


def run_import(spec: MlflowImportSpec, payload: JobPayload, on_progress: ProgressSink | None) -> Outcome:
    from ferry.engine.service import import_objects

    def import_(in_dir: Path) -> Outcome:
        return import_objects(spec.destination.tracking_uri, in_dir,
                              spec.options or ImportOptions(), spec.target, workers=WORKERS, on_progress=on_progress,
                              webhook_secrets=Path(WEBHOOK_SECRETS_DIR) if spec.webhook_secrets else None)

    if payload.storage is not None:
        from ferry.storage import transfer

        return transfer.import_from(payload.storage, import_)
    return import_(Path(payload.input_path or ""))


def run_kiroframe(spec: KiroframeSyncSpec, payload: JobPayload, on_progress: ProgressSink | None) -> Outcome:
    from ferry.kiroframe.settings import KiroframeSettings
    from ferry.kiroframe.sync import run_sync

    token = os.environ.get(KIROFRAME_TOKEN_ENV, "")
    if not token:
        raise UsageError(f"the Kiroframe token is missing: {KIROFRAME_TOKEN_ENV} is empty")
    options = spec.options or KiroframeOptions()
    settings = KiroframeSettings(
        **options.model_dump(),  # the same names as the settings' fields
        tracking_url=spec.source.tracking_uri,
        kiroframe_url=spec.kiroframe.url,
        profiling_token=token,
        base_dir=Path(SCRATCH_DIR) / "kiroframe",
        since=payload.watermark if options.incremental else None,
        workers=WORKERS,
    )
    return run_sync(settings, on_progress=on_progress)


def run_mirror(spec: MlflowMirrorSpec, payload: JobPayload, on_progress: ProgressSink | None) -> Outcome:
    """One sync of the standby: each server with its own credentials (the Job's SRC_* and DST_* variables)."""
    from ferry.engine.mirror import mirror
    from ferry.tracking import TrackingClient
    from ferry.tracking.settings import TrackingSettings

    source = TrackingClient(spec.source.tracking_uri, TrackingSettings.from_env("SRC_"))
    destination = TrackingClient(spec.destination.tracking_uri, TrackingSettings.from_env("DST_"))
    return mirror(source, destination, spec.objects, spec.options, spec.renames, since=payload.watermark,
                  last_full_compare=payload.last_full_compare, workers=WORKERS, on_progress=on_progress)


def prune_exports(out_dir: Path, name: str, keep: int) -> list[Path]:
    """Remove the oldest finished exports of resource `name` beside `out_dir` beyond `keep`.

    `out_dir` (the export just written) is marked finished first. Only directories named exactly
    as `name`'s runs and marked finished are candidates; `out_dir` never is.
    """
    mark_finished(out_dir)
    finished = [p.name for p in out_dir.parent.iterdir()
                if p.is_dir() and not p.is_symlink() and (p / FINISHED).is_file()]
    removed = [out_dir.parent / n for n in beyond_keep(finished, name, keep, current=out_dir.name)]
    for path in removed:
        (path / FINISHED).unlink(missing_ok=True)  # first: from here on it is no finished export
        shutil.rmtree(path, ignore_errors=True)
    return removed


ENGINES: dict[str, Engine] = {"MlflowExport": run_export, "MlflowImport": run_import, "KiroframeSync": run_kiroframe,
                              "MlflowMirror": run_mirror}
