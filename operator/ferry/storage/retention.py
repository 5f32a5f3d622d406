"""Which exports under a claim directory or a bucket prefix are one scheduled MlflowExport's own.

A scheduled run writes ``<resource>-<YYYYMMDDTHHMMSSZ>`` (its scheduled time, UTC) beside the
others. Retention recognises an export by that exact name, never by a prefix: ``nightly`` must not
take ``nightly-full-<time>`` (another resource's backup) for its own, and, as names sort, prune it
first. Of its own it removes only finished ones, oldest first, and never the one just written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from ferry.storage.layout import MANIFEST

FINISHED = MANIFEST
"""Beside a scheduled export in a directory too: written once it finished, removed first when pruned."""
FINISHED_FORMAT = "mlflow-ferry/export/1"
STAMP = "%Y%m%dT%H%M%SZ"
_STAMP = r"\d{8}T\d{6}Z"


def export_name(resource: str, scheduled: datetime) -> str:
    """The name of the export a schedule's run at `scheduled` writes."""
    return f"{resource}-{scheduled.astimezone(UTC).strftime(STAMP)}"


def mark_finished(directory: Path) -> None:
    """Mark the export in `directory` finished, as a bucket's manifest does: only then may retention count it."""
    (directory / FINISHED).parent.mkdir(parents=True, exist_ok=True)
    (directory / FINISHED).write_text(json.dumps({"format": FINISHED_FORMAT, "name": directory.name}) + "\n")


def own_exports(names: Iterable[str], resource: str) -> list[str]:
    """Of `names`, those written by `resource`'s schedule, oldest first."""
    own = re.compile(rf"^{re.escape(resource)}-{_STAMP}$")
    return sorted(name for name in names if own.match(name))


def beyond_keep(finished: Iterable[str], resource: str, keep: int, *, current: str) -> list[str]:
    """The finished exports of `resource` to remove: all but the `keep` newest, oldest first; never
    `current`, the one just written, even when its time is older (a late run keeps one more)."""
    own = own_exports(finished, resource)
    kept = set(own[-max(keep, 1):]) | {current}
    return [name for name in own if name not in kept]
