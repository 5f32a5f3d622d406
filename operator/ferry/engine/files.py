"""The export format's files: mlflow-export-import's JSON envelope, written atomically.

Every JSON file carries a ``system`` section (who wrote it, when, from which server), an optional
``info`` section and the ``mlflow`` section with the objects. A file is written to a temporary
name and renamed, so its presence means it is complete: a resumed export trusts it.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

EXPORT_FILE_VERSION = "2"
TS_FORMAT = "%Y-%m-%d %H:%M:%S"


def fmt_ts_millis(millis: int | None) -> str | None:
    """The peer's human-readable UTC companion of a millisecond timestamp (``_start_time``)."""
    if not millis:
        return None
    return time.strftime(TS_FORMAT, time.gmtime(round(int(millis) / 1000)))


def system_section(script: str, tracking_uri: str) -> dict[str, Any]:
    from ferry import __version__ as ferry_version

    now = round(time.time())
    try:
        from importlib.metadata import version

        mlflow_version = version("mlflow-skinny")
    except Exception:
        mlflow_version = ""
    return {
        "package_version": ferry_version,
        "script": script,
        "export_file_version": EXPORT_FILE_VERSION,
        "export_time": now,
        "_export_time": time.strftime(TS_FORMAT, time.gmtime(now)),
        "mlflow_version": mlflow_version,
        "mlflow_tracking_uri": tracking_uri,
        "platform": {"python_version": platform.python_version(), "system": platform.system(),
                     "processor": platform.processor()},
        "user": _user(),
        "exporter": "mlflow-ferry",
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def write_export_file(directory: Path, name: str, *, script: str, tracking_uri: str, mlflow: dict[str, Any],
                      info: dict[str, Any] | None = None, compact: bool = False) -> Path:
    doc: dict[str, Any] = {"system": system_section(script, tracking_uri)}
    if info is not None:
        doc["info"] = info
    doc["mlflow"] = mlflow
    return write_json(directory / name, doc, compact=compact)


def write_json(path: Path, doc: Any, *, compact: bool = False) -> Path:
    """Write `doc` as JSON via a temporary file in the same directory and a rename.

    Indented for people to read, except `compact` documents (a run's metric history): Python
    encodes indented JSON in pure Python, about seven times slower than its C encoder, and a run
    with long metric histories is where an export spends its own CPU. Both read the same.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=None if compact else 2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_export_file(path: Path, what: str) -> dict[str, Any]:
    """The whole document; `InputError` naming the file when it is missing, corrupt or not ours."""
    from ferry.errors import InputError

    if not path.is_file():
        raise InputError(f"{path.parent} is not {what}: {path.name} is missing")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        reason = f"line {err.lineno}: {err.msg}" if isinstance(err, json.JSONDecodeError) else str(err)
        raise InputError(f"{path} is corrupt: {reason}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("mlflow"), dict):
        raise InputError(f"{path} is not an export file: it has no 'mlflow' section")
    return doc
