"""What mlflow-ferry keeps beside an export in a bucket, under ``<prefix>/.ferry/``.

* ``.ferry/objects/<path>.done`` — one per object streamed on its own (a run directory), written
  after every file of the object is uploaded: a rerun skips the object, an import may fetch it.
* ``.ferry/manifest.json`` — written last, once the whole export is uploaded: only a prefix with
  a manifest is a finished export. A run that starts on the prefix deletes it first, so an export
  being rewritten is never taken for a finished one.

Everything else under the prefix is the export itself, in the same layout as in a directory, so
a copy of the prefix (``aws s3 sync``) is an export directory mlflow-export-import can read.
"""

from __future__ import annotations

META = ".ferry"
OBJECTS = f"{META}/objects"
MANIFEST = f"{META}/manifest.json"
DONE_SUFFIX = ".done"
FORMAT = "mlflow-ferry/s3-export/1"


def marker(path: str) -> str:
    """The completion marker of the object at `path` (relative to the prefix)."""
    return f"{OBJECTS}/{path.strip('/')}{DONE_SUFFIX}"


def object_of(marker_path: str) -> str | None:
    """The object a marker path stands for, or None when it is no marker."""
    if marker_path.startswith(f"{OBJECTS}/") and marker_path.endswith(DONE_SUFFIX):
        return marker_path[len(OBJECTS) + 1:-len(DONE_SUFFIX)]
    return None


def is_meta(path: str) -> bool:
    return path == META or path.startswith(f"{META}/")
