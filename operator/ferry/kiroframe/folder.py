"""One export folder, ``<base-dir>/YYYYMMDD_HHMM_<microseconds>/``, and its files.

Files are written as runs stream in: nothing holds all runs. The folder is built under a hidden
``.<name>.partial`` name and renamed when every file is complete, so a folder with the original's
name is always a whole export (a crash leaves only the hidden one behind, which the next sync
removes: `remove_leftovers`).

``runs.csv`` has one column per metric, param and tag key of any run, which is known only at
the end: its rows are spilled to a JSON-lines file as they come, then written once the header is.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ferry.kiroframe.records import JsonDict, RunView

RUNS_JSON = "runs.json"
DATASETS_JSON = "experiments_runs_datasets.json"
EXPERIMENT_SUMMARY_JSON = "experiment_summary.json"
RUNS_CSV = "runs.csv"
RUNS_BASIC_CSV = "runs_basic.csv"
MODELS_JSON = "models.json"
ARTIFACTS_MANIFEST_JSON = "artifacts_manifest.json"
SUMMARY_JSON = "summary.json"
EXPORT_LOG = "export.log"
ARTIFACTS_DIR = "artifacts"

RUNS_BASIC_HEADER = "experiment_id,experiment_name,run_id,run_name,status,start_time_iso,end_time_iso,dataset_names\n"
RUNS_CSV_INFO = ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time")
_SPILL = ".runs.csv.spill.jsonl"
PARTIAL = re.compile(r"^\.\d{8}_\d{4}_\d{6}\.partial$")  # what `ExportFolder` builds in, and nothing else

log = logging.getLogger("ferry.kiroframe")


def export_name(now: datetime | None = None) -> str:
    """The original's folder name: local time to the minute, then the microseconds."""
    return (now or datetime.now()).strftime("%Y%m%d_%H%M_%f")


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def read_json_lines(path: Path) -> Iterator[JsonDict]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def write_json(path: Path, data: Any) -> None:
    """Write through a temporary name so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _csv_time(ms: int | None, fraction: bool) -> str:
    """A time as pandas writes a UTC datetime column (``2024-05-01 12:00:00.123+00:00``)."""
    if ms is None:
        return ""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{ms % 1000:03d}+00:00" if fraction else f"{text}+00:00"


class RunsCsv:
    """The flat ``mlflow.search_runs`` table, written in two passes over a spill file."""

    def __init__(self, folder: Path) -> None:
        self._path = folder / RUNS_CSV
        self._spill_path = folder / _SPILL
        self._spill: IO[str] = self._spill_path.open("w", encoding="utf-8")
        # Columns in order of first appearance (dicts keep it), as the dataframe has them.
        self._metrics: dict[str, None] = {}
        self._params: dict[str, None] = {}
        self._tags: dict[str, None] = {}
        self._fraction = False

    def add(self, run: RunView) -> None:
        for keys, values in ((self._metrics, run.metrics), (self._params, run.params), (self._tags, run.tags)):
            for key in values:
                keys.setdefault(key, None)
        self._fraction = self._fraction or any(t is not None and t % 1000 for t in (run.start_time, run.end_time))
        info = run.info
        self._spill.write(dumps([info.get("run_id") or info.get("run_uuid"), info.get("experiment_id"),
                                 run.status, info.get("artifact_uri"), run.start_time, run.end_time,
                                 run.metrics, run.params, run.tags]) + "\n")

    def finish(self) -> None:
        self._spill.close()
        header = [*RUNS_CSV_INFO, *(f"metrics.{k}" for k in self._metrics),
                  *(f"params.{k}" for k in self._params), *(f"tags.{k}" for k in self._tags)]
        with self._path.open("w", encoding="utf-8", newline="") as fh, self._spill_path.open(encoding="utf-8") as spill:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(header)
            for line in spill:
                run_id, exp_id, status, artifact_uri, start, end, metrics, params, tags = json.loads(line)
                writer.writerow([
                    run_id, exp_id, status, artifact_uri,
                    _csv_time(start, self._fraction), _csv_time(end, self._fraction),
                    *(_csv_value(metrics.get(k)) for k in self._metrics),
                    *(_csv_value(params.get(k)) for k in self._params),
                    *(_csv_value(tags.get(k)) for k in self._tags),
                ])
        self._spill_path.unlink()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


class ExportFolder:
    """The files of one export, open for appending while runs stream through."""

    def __init__(self, base_dir: Path, name: str | None = None) -> None:
        self.name = name or export_name()
        self.final_path = base_dir / self.name
        self.path = base_dir / f".{self.name}.partial"
        self.path.mkdir(parents=True, exist_ok=False)
        (self.path / ARTIFACTS_DIR).mkdir()
        self._runs = self._open(RUNS_JSON)
        self._datasets = self._open(DATASETS_JSON)
        self._summaries = self._open(EXPERIMENT_SUMMARY_JSON)
        self._basic = self._open(RUNS_BASIC_CSV)
        self._basic.write(RUNS_BASIC_HEADER)
        self.runs_csv = RunsCsv(self.path)

    def _open(self, name: str) -> IO[str]:
        return (self.path / name).open("w", encoding="utf-8")

    def write_run(self, run: RunView, row: JsonDict, dataset_rows: list[JsonDict]) -> None:
        self._runs.write(dumps(row) + "\n")
        for ds_row in dataset_rows:
            self._datasets.write(dumps(ds_row) + "\n")
        joined = ";".join(row["dataset_names"])
        # The original formats this line by hand: names JSON-quoted, a missing time as None.
        self._basic.write(
            f"{row['experiment_id']},{dumps(row['experiment_name'])},{row['run_id']},"
            f"{dumps(run.tags.get('mlflow.runName'))},{row['status']},{row['start_time_iso']},"
            f"{row['end_time_iso']},{dumps(joined)}\n"
        )
        self.runs_csv.add(run)

    def write_experiment_summary(self, row: JsonDict) -> None:
        self._summaries.write(dumps(row) + "\n")

    def finish(self, *, models: list[JsonDict] | None, manifest: list[JsonDict], summary: JsonDict) -> Path:
        """Close every file, write the whole-export ones, and give the folder its final name."""
        for fh in (self._runs, self._datasets, self._summaries, self._basic):
            fh.close()
        self.runs_csv.finish()
        if models is not None:
            write_json(self.path / MODELS_JSON, models)
        write_json(self.path / ARTIFACTS_MANIFEST_JSON, manifest)
        write_json(self.path / SUMMARY_JSON, summary)
        os.replace(self.path, self.final_path)
        self.path = self.final_path
        return self.final_path

    def abandon(self) -> None:
        for fh in (self._runs, self._datasets, self._summaries, self._basic):
            fh.close()


def remove_leftovers(base_dir: Path) -> list[Path]:
    """Delete the ``.<name>.partial`` folders a killed sync left directly in `base_dir`.

    Only call it holding the base directory's `SyncLock`: then no other sync of this directory
    is writing one. Only folders named exactly as `ExportFolder` names them are touched (not a
    symlink, nothing nested deeper, nothing else hidden), so a user's own ``.partial`` files stay.
    """
    removed = []
    for item in sorted(base_dir.iterdir()) if base_dir.is_dir() else ():
        if PARTIAL.match(item.name) and item.is_dir() and not item.is_symlink():
            shutil.rmtree(item)
            log.info("Removed %s, left by an export that was interrupted", item)
            removed.append(item)
    return removed
