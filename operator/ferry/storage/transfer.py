"""An export into, or an import from, an `S3Location`, with a bounded local spool in between.

Export: the engine writes into a temporary local directory as usual. Each run and each logged
model (the bulk of an export: artifacts, trained models) is an object of its own: when its
completion file (``run.json``, ``logged_model.json``, written last) is down, `ExportSpool` uploads
the object's files (large ones in parts), writes its marker and deletes the local copy, so the
local disk holds only the objects in flight. What is left when the engine is done (the experiment
and index files, registered models, prompts, traces ...) is uploaded after it, and the manifest
last. A rerun after a crash lists the markers once and the engine skips those objects, as it
skips finished object directories in a local export.

Import: the manifest must be there (else the export is unfinished, and nothing is imported).
Everything but the objects' artifacts is downloaded first (the engine reads those files to decide
what to do), and each run's or logged model's artifacts are downloaded only while it is imported,
then deleted.

`export_to` / `import_from` wrap any engine call that takes a directory; `prune` removes the
oldest finished exports of a schedule.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ferry.errors import InputError
from ferry.outcome import Outcome, Phase
from ferry.storage import layout
from ferry.storage import spool as spools
from ferry.storage.bucket import Bucket, Listed
from ferry.storage.location import S3Location
from ferry.storage.retention import beyond_keep, own_exports

RUN_FILE = "run.json"  # a run directory's completion file (ferry.engine.runs.RUN_JSON)
# The completion file of each object streamed on its own, written last (ferry.engine.runs.RUN_JSON,
# ferry.engine.logged_models.LOGGED_MODEL_FILE).
COMPLETION_FILES = (RUN_FILE, "logged_model.json")
ARTIFACTS = "artifacts"
SPOOL_ENV = "FERRY_SPOOL_DIR"  # where the local spool lives (default: the system's temporary directory)


def _spool_dir(kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"ferry-{kind}-", dir=os.environ.get(SPOOL_ENV) or None))


def _files(root: Path) -> list[Path]:
    """The files under `root`, the engine's temporary ``.part`` files left out."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".part"))


def _in_unfinished_run(path: Path, root: Path) -> bool:
    """True for a file inside a ``runs/<id>/`` directory that has no ``run.json``."""
    for parent in path.parents:
        if parent == root:
            return False
        if parent.parent.name == "runs" and not (parent / RUN_FILE).is_file():
            return True
    return False


class ExportSpool(spools.Spool):
    """Uploads each finished run directory under `root` to the bucket and forgets the local copy."""

    def __init__(self, bucket: Bucket, root: Path) -> None:
        self.bucket = bucket
        self.root = root
        self._done: set[str] = set()
        self._lock = threading.Lock()
        self.uploaded_bytes = 0

    def start(self) -> None:
        """Check the bucket, refuse a prefix that is not ours, read the markers, retract the manifest."""
        if not self.bucket.check():
            return
        meta = [item.path for item in self.bucket.walk(layout.META)]
        if not meta:
            raise InputError(f"{self.bucket.location.url} holds objects that are not an mlflow-ferry export: "
                             "export to an empty prefix")
        self._done = {obj for path in meta if (obj := layout.object_of(path))}
        if layout.MANIFEST in meta:
            self.bucket.delete([layout.MANIFEST])

    def _rel(self, directory: Path) -> str | None:
        try:
            return directory.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None  # outside the spool: not ours to move

    def holds(self, directory: Path) -> bool:
        rel = self._rel(directory)
        with self._lock:
            return rel is not None and rel in self._done

    def finished(self, directory: Path) -> None:
        rel = self._rel(directory)
        done = [name for name in COMPLETION_FILES if (directory / name).is_file()]
        if rel in (None, ".") or not done:
            return  # outside the spool, or the whole export is this one object (export-run): it goes last
        files = _files(directory)
        # The completion file last, then the marker: a half-uploaded object has neither.
        files.sort(key=lambda p: p.name in done and p.parent == directory)
        nbytes = sum(self.bucket.upload(f, f"{rel}/{f.relative_to(directory).as_posix()}") for f in files)
        self.bucket.put_json(layout.marker(rel), {"files": len(files), "bytes": nbytes, "time": round(time.time())})
        shutil.rmtree(directory, ignore_errors=True)
        with self._lock:
            self._done.add(rel)
            self.uploaded_bytes += nbytes

    def finish(self, outcome: Outcome) -> None:
        """Upload what the engine left in the spool, then the manifest that makes the export finished."""
        for f in _files(self.root):
            if not _in_unfinished_run(f, self.root):  # a run that failed half-way is listed, not carried
                self.bucket.upload(f, f.relative_to(self.root).as_posix())
        with self._lock:
            objects = sorted(self._done)
        self.bucket.put_json(layout.MANIFEST, {
            "format": layout.FORMAT,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "objects": objects,
            "phase": outcome.phase.value,
            "counts": outcome.counts.model_dump(mode="json", by_alias=True, exclude_defaults=True),
            "failed": list(outcome.failed),
        })


class ImportSpool(spools.Spool):
    """Downloads a finished export's files, each run's artifacts only while that run is imported."""

    def __init__(self, bucket: Bucket, root: Path) -> None:
        self.bucket = bucket
        self.root = root
        self._lazy: dict[str, list[Listed]] = {}  # run directory -> its artifact objects
        self.downloaded_bytes = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        """Refuse what is not a finished export; download all but the runs' artifacts."""
        url = self.bucket.location.url
        exists = self.bucket.check()
        manifest = self.bucket.get_json(layout.MANIFEST) if exists else None
        if not exists:
            raise InputError(f"{url} holds no export")
        if not isinstance(manifest, dict) or manifest.get("format") != layout.FORMAT:
            raise InputError(f"{url} holds an unfinished export (no manifest): rerun the export into it to finish it")
        objects = {str(o) for o in manifest.get("objects") or []}
        self._lazy = {o: [] for o in objects}
        for item in self.bucket.walk():
            if layout.is_meta(item.path):
                continue
            owner = self._owner(item.path, objects)
            if owner is not None:
                self._lazy[owner].append(item)
            else:
                self.downloaded_bytes += self.bucket.download(item.path, self.root / item.path)

    @staticmethod
    def _owner(path: str, objects: set[str]) -> str | None:
        """The run or logged model whose artifacts `path` is one of, if any."""
        head, sep, _ = path.partition(f"/{ARTIFACTS}/")
        return head if sep and head in objects else None

    @contextmanager
    def borrowed(self, directory: Path) -> Iterator[None]:
        try:
            rel = directory.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            rel = None
        items = self._lazy.get(rel or "", [])
        try:
            for item in items:
                n = self.bucket.download(item.path, self.root / item.path)
                with self._lock:
                    self.downloaded_bytes += n
            yield
        finally:
            if items:
                shutil.rmtree(directory / ARTIFACTS, ignore_errors=True)


def _located(outcome: Outcome, root: Path, location: S3Location) -> Outcome:
    """The outcome naming the bucket, not the spool directory."""
    message = (outcome.message or "").replace(str(root), location.url)
    return outcome.model_copy(update={"message": message, "path": location.url})


def export_to(location: S3Location, work: Callable[[Path], Outcome]) -> Outcome:
    """Run `work` (an engine export into a directory) into `location`, streamed and resumable.

    The manifest is written when `work` returns an outcome that is not Failed; a failure, an
    exception or a kill leaves the markers of the finished runs and no manifest, so a rerun
    resumes and an import refuses the prefix.
    """
    root = _spool_dir("export")
    try:
        spool = ExportSpool(Bucket(location), root)
        spool.start()
        with spools.using(spool):
            outcome = work(root)
        if outcome.phase is not Phase.FAILED:
            spool.finish(outcome)
        return _located(outcome, root, location)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def import_from(location: S3Location, work: Callable[[Path], Outcome]) -> Outcome:
    """Run `work` (an engine import from a directory) on the finished export at `location`."""
    root = _spool_dir("import")
    try:
        spool = ImportSpool(Bucket(location), root)
        spool.start()
        with spools.using(spool):
            outcome = work(root)
        return _located(outcome, root, location)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def exporting(location: S3Location) -> Iterator[ExportSpool]:
    """`export_to` for callers that report on their own (the commands): the spool's directory is
    ``spool.root``; the manifest is written when the block ends without an exception (or exits
    with a status of 0 or 3, a command's success and partial failure)."""
    root = _spool_dir("export")
    try:
        spool = ExportSpool(Bucket(location), root)
        spool.start()
        with spools.using(spool):
            try:
                yield spool
            except SystemExit as done:
                if done.code not in (None, 0, 3):
                    raise
                spool.finish(_ended(done.code))
                raise
        spool.finish(_ended(0))
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def importing(location: S3Location) -> Iterator[ImportSpool]:
    """`import_from` for callers that report on their own: the export's files are in ``spool.root``."""
    root = _spool_dir("import")
    try:
        spool = ImportSpool(Bucket(location), root)
        spool.start()
        with spools.using(spool):
            yield spool
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _ended(code: Any) -> Outcome:
    phase = Phase.PARTIALLY_FAILED if code == 3 else Phase.SUCCEEDED
    return Outcome(phase=phase, message="")


def finished_exports(location: S3Location, resource: str) -> list[S3Location]:
    """The finished exports of scheduled resource `resource` directly under `location`, oldest first."""
    bucket = Bucket(location)
    return [location.child(n) for n in own_exports(bucket.children(), resource)
            if Bucket(location.child(n)).get_json(layout.MANIFEST) is not None]


def prune(location: S3Location, keep: int, *, resource: str, current: str) -> list[S3Location]:
    """Delete `resource`'s oldest finished exports under `location` beyond `keep`; return what was deleted.

    Only `resource`'s own prefixes (`ferry.storage.retention`) with a manifest count and go: an
    export still being written (or one that stopped before it finished, kept for its rerun), another
    resource's and `current` (the one just written) are never touched.
    """
    finished = {loc.prefix.rsplit("/", 1)[-1]: loc for loc in finished_exports(location, resource)}
    removed = [finished[name] for name in beyond_keep(finished, resource, keep, current=current)]
    for old in removed:
        bucket = Bucket(old)
        bucket.delete([layout.MANIFEST])  # first: from here on it is no finished export
        bucket.delete([item.path for item in bucket.walk()])
    return removed
