"""The watermark between incremental syncs, kept in a small JSON file.

The file names the source it belongs to (Kiroframe's source id of the tracking URL), so pointing
a sync at another server with an old state file starts that server from scratch instead of
silently skipping its history.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ferry.kiroframe.records import ms_to_iso_utc

log = logging.getLogger("ferry.kiroframe")


def read_watermark(path: Path, source_id: str) -> int | None:
    """The watermark saved for `source_id`, or None when there is none (a full sync follows)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        log.warning("Ignoring unreadable state file %s (%s): syncing everything", path, err)
        return None
    if not isinstance(data, dict) or data.get("source_id") != source_id:
        log.warning("State file %s belongs to another tracking server: syncing everything", path)
        return None
    watermark = data.get("watermark")
    return int(watermark) if isinstance(watermark, int | float) else None


def write_watermark(path: Path, source_id: str, watermark: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({
        "source_id": source_id,
        "watermark": watermark,
        "watermark_iso": ms_to_iso_utc(watermark),
    }), encoding="utf-8")
    os.replace(tmp, path)
