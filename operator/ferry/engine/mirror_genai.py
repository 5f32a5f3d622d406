"""MLflow 3 objects kept in step: prompts, and the logged models and traces of mirrored experiments.

Each goes through the engine that exports and imports it, on a temporary directory: those
imports are idempotent (a copy carries its source's id in a ``ferry.source.*`` tag, a trace
keeps its id), so carrying an object again costs reads and writes nothing. A sync carries the
logged models updated and the traces started since its window; a prompt is carried when its
versions, aliases or tags differ from its copy's (MLflow moves no time for an alias).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from ferry.engine import logged_models, prompts, runs, traces
from ferry.engine.logged_models_bulk import import_experiment_logged_models, imported_model_ids
from ferry.engine.mirror_report import ExperimentPair, SyncReport
from ferry.errors import FerryError
from ferry.options import ALL, MirrorOptions
from ferry.tracking import TrackingClient, tags_of
from ferry.tracking.logged_models import LoggedModels
from ferry.tracking.prompts import Prompts
from ferry.tracking.traces import Traces


def sync_prompts(src: TrackingClient, dst: TrackingClient, names: Sequence[str], window: int | None,
                 report: SyncReport, scratch: Path | None) -> None:
    """Carry each selected prompt whose copy differs (every one in a full comparison)."""
    if not names:
        return
    source, target = Prompts(src), Prompts(dst)
    everything = any(n in ALL for n in names)
    selected = [n for n in source.names() if everything or n in names]
    existing = set(target.names())
    todo = [n for n in selected if window is None or n not in existing or _differs(source, target, n)]
    if not todo:
        return
    with tempfile.TemporaryDirectory(dir=scratch, prefix="ferry-mirror-prompts-") as tmp:
        exported = prompts.export_prompts(src, todo, tmp)
        report.failed += exported.failed
        report.add(prompts.import_prompts(dst, tmp))


def _differs(source: Prompts, target: Prompts, name: str) -> bool:
    """Versions, aliases (by version number) or user tags differ: three reads per prompt on each side.

    Tags starting with ``_`` are the server's own (the experiments a prompt was used in) and ours
    start with ``ferry.``: neither is the prompt's.
    """
    def facts(prompts: Prompts) -> tuple[object, ...]:
        prompt = prompts.get(name)
        versions = len(prompts.versions(name))
        aliases = sorted((a["alias"], str(a["version"])) for a in prompt.get("aliases") or [])
        tags = sorted((k, v) for k, v in tags_of(prompt).items() if not k.startswith(("ferry.", "_")))
        return versions, aliases, tags

    try:
        return facts(source) != facts(target)
    except FerryError:
        return True


def sync_experiment_objects(src: TrackingClient, dst: TrackingClient, pairs: Sequence[ExperimentPair],
                            window: int | None, options: MirrorOptions, report: SyncReport,
                            copies: dict[str, str], scratch: Path | None) -> None:
    """The logged models and traces of each mirrored experiment that are new or updated since `window`."""
    for pair in pairs:
        try:
            model_ids = _logged_models(src, dst, pair, window, report, copies, scratch) \
                if options.include_logged_models else {}
            if options.include_traces:
                _traces(src, dst, pair, window, report, copies, model_ids, scratch)
        except FerryError as err:
            report.failed.append(f"MLflow 3 objects of experiment '{pair.src['name']}': {err.message}")


def _logged_models(src: TrackingClient, dst: TrackingClient, pair: ExperimentPair, window: int | None,
                   report: SyncReport, copies: dict[str, str], scratch: Path | None) -> dict[str, str]:
    query = None if window is None else f"attributes.last_updated_timestamp_ms >= {window}"
    found = [str(m["info"]["model_id"]) for m in LoggedModels(src).search([pair.src_id], filter=query)]
    if not found:
        return {}
    with tempfile.TemporaryDirectory(dir=scratch, prefix="ferry-mirror-models-") as tmp:
        for model_id in found:
            logged_models.export_logged_model(src, model_id, Path(tmp) / model_id)
        result = import_experiment_logged_models(dst, Path(tmp), pair.dst_id, found, run_map=copies)
    report.add(result.outcome())
    return result.ids


def _traces(src: TrackingClient, dst: TrackingClient, pair: ExperimentPair, window: int | None,
            report: SyncReport, copies: dict[str, str], model_ids: dict[str, str], scratch: Path | None) -> None:
    query = None if window is None else f"trace.timestamp_ms >= {window}"
    if next(iter(Traces(src).search([pair.src_id], filter=query)), None) is None:
        return  # one request when there is nothing new
    run_ids = {**{k: v[0]["info"]["run_id"] for k, v in runs.imported_index(dst, pair.dst_id).items() if v},
               **copies}
    model_map = {**imported_model_ids(dst, pair.dst_id), **model_ids}
    with tempfile.TemporaryDirectory(dir=scratch, prefix="ferry-mirror-traces-") as tmp:
        exported = traces.export_traces(src, [pair.src_id], tmp, traces_since=window)
        report.failed += exported.failed
        report.add(traces.import_traces(dst, tmp, experiment_name=pair.dst_name, run_ids=run_ids,
                                        model_ids=model_map))
