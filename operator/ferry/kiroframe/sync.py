"""One sync: export MLflow into a new folder, push it to Kiroframe, move the watermark.

The order of things is what makes a sync safe to kill and rerun:

0. The sync locks its base directory (`SyncLock`; another sync of it waits, then fails), removes
   the ``.partial`` folders a killed sync left there (the lock means none is being written), and
   checks the token with Kiroframe (`ImportClient.check_token`): a refused token fails the sync
   before anything is exported.
1. An interrupted push found in the base directory is finished first, and that is the whole run:
   its records were exported for a watermark not yet committed, and only the unacknowledged ones
   are sent (the journal knows which).
2. The new watermark is taken before MLflow is read, so a run that changes during the export is
   sent again next time rather than never.
3. The folder appears under its final name only when every file is written, and is marked
   push-pending until Kiroframe has answered for every record.
4. The watermark is saved (state file, ``summary.json``, `Outcome.watermark`) only then. A push
   that stops early (token refused, Kiroframe down beyond the retry budget) leaves the old one.

Records Kiroframe refuses one by one (a 4xx) are listed as failures; they do not hold the
watermark back, since sending them again would be refused again.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ferry.errors import FerryError
from ferry.kiroframe import journal
from ferry.kiroframe.export import Exporter
from ferry.kiroframe.folder import (
    EXPORT_LOG,
    MODELS_JSON,
    SUMMARY_JSON,
    ExportFolder,
    remove_leftovers,
    write_json,
)
from ferry.kiroframe.lock import SyncLock, SyncLocked
from ferry.kiroframe.push import ImportClient, NoImportApi, Redirected, TokenRejected, push, source_id
from ferry.kiroframe.settings import KiroframeSettings
from ferry.kiroframe.state import read_watermark, write_watermark
from ferry.outcome import Counts, Outcome, Phase
from ferry.progress import ProgressSink, Tracker
from ferry.tracking import TrackingClient

log = logging.getLogger("ferry.kiroframe")

FILE_LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(filename)s:%(lineno)d: %(message)s"


class Redact(logging.Filter):
    """Replace the profiling token wherever it would appear in a log line."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secret:
            message = record.getMessage()
            if self._secret in message:
                record.msg, record.args = message.replace(self._secret, "***"), None
        return True


@contextmanager
def _file_log(folder: Path, settings: KiroframeSettings) -> Iterator[None]:
    """Log to the folder's export.log while the sync works on it (the folder may be renamed)."""
    handler = logging.FileHandler(folder / EXPORT_LOG, encoding="utf-8")
    handler.setLevel(settings.log_level)
    handler.setFormatter(logging.Formatter(FILE_LOG_FORMAT))
    handler.addFilter(Redact(settings.token))
    log.addHandler(handler)
    if log.getEffectiveLevel() > logging.getLevelName(settings.log_level):
        log.setLevel(settings.log_level)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


def _now_ms() -> int:
    return int(time.time() * 1000)


def run_sync(settings: KiroframeSettings, *, on_progress: ProgressSink | None = None) -> Outcome:
    """Export (and unless told not to, push) once; see the module's docstring for the order."""
    settings.require()
    base = settings.export_root
    base.mkdir(parents=True, exist_ok=True)
    lock = SyncLock(base, settings.lock_wait_seconds)
    try:
        lock.acquire()
    except SyncLocked as err:
        log.error("%s", err.message)
        return Outcome(phase=Phase.FAILED, message=err.message)
    try:
        return _locked_sync(settings, base, Tracker(on_progress))
    finally:
        lock.release()


def _locked_sync(settings: KiroframeSettings, base: Path, tracker: Tracker) -> Outcome:
    remove_leftovers(base)
    if settings.import_to_kiroframe:
        try:
            _import_client(settings).check_token()
        except (TokenRejected, NoImportApi, Redirected) as err:
            message = f"{err.message}; nothing was exported"
            log.error("%s", message)
            return Outcome(phase=Phase.FAILED, message=message)
    if settings.import_to_kiroframe and settings.resume:
        unfinished = journal.interrupted_push(base)
        if unfinished is not None:
            with _file_log(unfinished, settings):
                log.info("Finishing the interrupted push of %s", unfinished.name)
                return _push_and_commit(settings, unfinished, tracker, resumed=True)

    src = source_id(settings.tracking_url or "")
    since = settings.since
    if since is None and settings.incremental:
        since = read_watermark(settings.state_path, src)
    watermark = _now_ms()
    folder = ExportFolder(base)
    with _file_log(folder.path, settings):
        log.info("Prepared working directory: %s", folder.final_path)
        log.info("Exporting %s from %s", f"changes since {since} ms" if since is not None else "everything",
                 settings.tracking_url)
        exporter = Exporter(settings, TrackingClient(settings.tracking_url or ""), folder, since, tracker)
        try:
            models = exporter.run()
        except (FerryError, OSError) as err:
            log.error("Export failed: %s", err)
            _keep_only_log(folder)
            return Outcome(phase=Phase.FAILED, message=_one_line(err), path=str(folder.final_path))
        summary: dict[str, Any] = {**exporter.summary(), "watermark": None, "posted": 0,
                                   "failed": list(exporter.stats.history_errors)}
        path = folder.finish(models=models, manifest=exporter.manifest, summary=summary)
        log.info("Wrote the export to %s", path)
        if not settings.import_to_kiroframe:
            _commit(settings, path, watermark, summary)
            return _outcome(path, summary, watermark, "exported; not sent to Kiroframe")
        journal.mark_pending(path, watermark)
        return _push_and_commit(settings, path, tracker, resumed=False)


def _push_and_commit(settings: KiroframeSettings, folder: Path, tracker: Tracker, *, resumed: bool) -> Outcome:
    summary = _read_json(folder / SUMMARY_JSON)
    watermark = journal.pending_watermark(folder)
    client = _import_client(settings)
    log.info("Importing data to Kiroframe as %s:%s", "mlflow", client.source_id)
    deliveries = journal.DeliveryJournal(folder)
    try:
        result = push(journal.records(folder), client, deliveries, workers=settings.workers, tracker=tracker)
    except FerryError as err:
        log.error("Push stopped: %s", err.message)
        summary["posted"] = deliveries.acknowledged_count
        write_json(folder / SUMMARY_JSON, summary)
        return Outcome(phase=Phase.FAILED, message=err.message, path=str(folder), counts=_counts(folder, summary))
    finally:
        deliveries.close()
    log.info("Sent %d records to Kiroframe (%d sent before), %d refused",
             result.posted, result.skipped, len(result.rejected))
    summary["posted"] = deliveries.acknowledged_count
    summary["failed"] = [*summary.get("failed", []), *result.rejected]
    if watermark is None:  # a marker written by hand or damaged: finish, but move nothing
        journal.clear_pending(folder)
        write_json(folder / SUMMARY_JSON, summary)
        return _outcome(folder, summary, None, "sent")
    _commit(settings, folder, watermark, summary)
    journal.clear_pending(folder)
    note = "finished an interrupted push" if resumed else "sent"
    return _outcome(folder, summary, watermark, note)


def _import_client(settings: KiroframeSettings) -> ImportClient:
    return ImportClient(settings.kiroframe_url or "", settings.token, settings.tracking_url or "",
                        retry_seconds=settings.retry_seconds, backoff_seconds=settings.backoff_seconds,
                        backoff_max_seconds=settings.backoff_max_seconds, timeout=settings.timeout)


def _commit(settings: KiroframeSettings, folder: Path, watermark: int, summary: dict[str, Any]) -> None:
    summary["watermark"] = watermark
    write_json(folder / SUMMARY_JSON, summary)
    write_watermark(settings.state_path, source_id(settings.tracking_url or ""), watermark)
    log.info("Watermark is now %d", watermark)


def _counts(folder: Path, summary: dict[str, Any]) -> Counts:
    models_path = folder / MODELS_JSON
    models = _read_json(models_path) if models_path.exists() else []
    return Counts(experiments=int(summary.get("experiments", 0)), runs=int(summary.get("runs", 0)),
                  models=len(models), versions=sum(len(m.get("latest_versions", [])) for m in models))


def _outcome(folder: Path, summary: dict[str, Any], watermark: int | None, done: str) -> Outcome:
    failed = list(summary.get("failed", []))
    counts = _counts(folder, summary)
    message = (f"{done}: {counts.experiments} experiments, {counts.runs} runs, {counts.models} models; "
               f"{summary.get('posted', 0)} records acknowledged, {len(failed)} failed")
    outcome = Outcome.of(counts, failed, message=message, path=str(folder))
    outcome.watermark = watermark
    return outcome


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _keep_only_log(folder: ExportFolder) -> None:
    """After a failed export keep export.log (under the final name) and nothing half-written."""
    folder.abandon()
    for item in folder.path.iterdir():
        if item.name != EXPORT_LOG:
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    folder.path.rename(folder.final_path)


def _one_line(err: BaseException) -> str:
    return err.message if isinstance(err, FerryError) else " ".join(str(err).split())
