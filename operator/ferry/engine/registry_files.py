"""The registry's files in the export format's envelope (see `ferry.engine.files`).

Model and version files are written last, after every run they refer to: their presence marks
the object as complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferry.engine.files import read_export_file, write_export_file
from ferry.errors import InputError

JsonDict = dict[str, Any]


def write(directory: Path, name: str, mlflow: JsonDict, info: JsonDict | None = None, *, uri: str,
          script: str) -> Path:
    """Write ``<directory>/<name>`` atomically; `uri` is the server the objects came from."""
    return write_export_file(directory, name, script=script, tracking_uri=uri, mlflow=mlflow, info=info)


def read(path: Path, what: str = "an export directory") -> JsonDict:
    if not path.parent.is_dir():
        raise InputError(f"{path.parent}: no such directory")
    return read_export_file(path, what)


def section(doc: JsonDict, key: str, path: Path) -> JsonDict:
    """``doc["mlflow"][key]``: the object an export file holds."""
    value = (doc.get("mlflow") or {}).get(key)
    if not isinstance(value, dict):
        raise InputError(f"{path} is not an export file: it has no 'mlflow.{key}'")
    return value


def source_uri(doc: JsonDict) -> str:
    """The tracking server an export file was written from."""
    return str((doc.get("system") or {}).get("mlflow_tracking_uri") or "")
