"""What an export folder has to send, and what Kiroframe already acknowledged of it.

Every record has a key: ``1:<experiment_id>``, ``2:<run_id>``, ``3:models``, the same identity
Kiroframe deduplicates on. The journal (``delivery.jsonl`` in the folder) gets one line per
record as soon as Kiroframe answers for it, flushed at once, so a push killed at any point and
started again sends only records with no line yet. A folder whose push has not finished carries
a ``.push-pending`` marker holding the watermark the sync will commit once it has.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferry.kiroframe.folder import EXPERIMENT_SUMMARY_JSON, MODELS_JSON, RUNS_JSON, read_json_lines

JOURNAL = "delivery.jsonl"
PENDING = ".push-pending"

EXPERIMENT_SUMMARY, RUN, MODELS = 1, 2, 3


@dataclass(frozen=True)
class Record:
    import_type: int
    key: str
    line: Any

    def describe(self) -> str:
        kind = {EXPERIMENT_SUMMARY: "experiment summary", RUN: "run", MODELS: "models"}[self.import_type]
        ident = self.key.split(":", 1)[1]
        return kind if self.import_type == MODELS else f"{kind} {ident}"


def records(folder: Path) -> Iterator[Record]:
    """The folder's records in the order Kiroframe wants them: summaries, runs, then models."""
    for row in read_json_lines(folder / EXPERIMENT_SUMMARY_JSON):
        yield Record(EXPERIMENT_SUMMARY, f"1:{row['experiment_id']}", row)
    for row in read_json_lines(folder / RUNS_JSON):
        yield Record(RUN, f"2:{row['run_id']}", row)
    models = folder / MODELS_JSON
    if models.exists():
        yield Record(MODELS, "3:models", json.loads(models.read_text(encoding="utf-8")))


def count_records(folder: Path) -> int:
    """How many records `records` yields, without parsing them."""
    total = 0
    for name in (EXPERIMENT_SUMMARY_JSON, RUNS_JSON):
        with (folder / name).open(encoding="utf-8") as fh:
            total += sum(1 for line in fh if line.strip())
    return total + (1 if (folder / MODELS_JSON).exists() else 0)


class DeliveryJournal:
    """Append-only record of Kiroframe's answers for one folder; safe to share between threads."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / JOURNAL
        self._settled: set[str] = set()
        self.acknowledged_count = 0
        text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        if text:
            for line in text.splitlines():
                try:
                    entry = json.loads(line)
                    self._settled.add(entry["key"])
                    self.acknowledged_count += bool(entry.get("ok"))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash: that record was not confirmed
        self._lock = threading.Lock()
        self._fh = self.path.open("a", encoding="utf-8")
        if text and not text.endswith("\n"):
            self._fh.write("\n")  # end a line torn by a crash, so the next one stands alone

    def settled(self, key: str) -> bool:
        return key in self._settled

    def acknowledged(self, key: str) -> None:
        self._write({"key": key, "ok": True})

    def rejected(self, key: str, reason: str) -> None:
        self._write({"key": key, "rejected": reason})

    def _write(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._fh.write(json.dumps(entry) + "\n")
            self._fh.flush()
            self._settled.add(entry["key"])
            self.acknowledged_count += bool(entry.get("ok"))

    def close(self) -> None:
        self._fh.close()


def mark_pending(folder: Path, watermark: int) -> None:
    (folder / PENDING).write_text(json.dumps({"watermark": watermark}), encoding="utf-8")


def pending_watermark(folder: Path) -> int | None:
    try:
        return int(json.loads((folder / PENDING).read_text(encoding="utf-8"))["watermark"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def clear_pending(folder: Path) -> None:
    (folder / PENDING).unlink(missing_ok=True)


def interrupted_push(base_dir: Path) -> Path | None:
    """The newest finished export folder whose push never completed, if there is one."""
    if not base_dir.is_dir():
        return None
    candidates = [p for p in base_dir.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / PENDING).exists()]
    return max(candidates, key=lambda p: p.name, default=None)
