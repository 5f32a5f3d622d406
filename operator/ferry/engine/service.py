"""The engine's top-level API: export a selection, import a directory. Jobs call these two.

Both return an `Outcome` (counts, failures, phase) and never raise for one failed object:
failures are listed and the phase is PartiallyFailed. They raise `FerryError` only when nothing
can be done at all (unreachable server, not an export directory).

Registered models and model versions are handled by `ferry.engine.models` and
`ferry.engine.model_versions` when those modules are present (see `_models_engine`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from ferry.engine import experiments as exp_engine
from ferry.engine import runs as run_engine
from ferry.engine.options import ExportOptions, ImportOptions, Selection
from ferry.errors import FerryError, InputError
from ferry.outcome import Counts, Outcome
from ferry.progress import ProgressSink, Tracker
from ferry.tracking import TrackingClient

RUNS_DIR = "runs"  # single runs of a selection: <out>/runs/<run_id>/


def export_objects(uri: str, out_dir: Path, selection: Selection, options: ExportOptions, *, workers: int = 4,
                   on_progress: ProgressSink | None = None) -> Outcome:
    """Export `selection` from the server at `uri` into `out_dir` (resumable: rerun into the same dir).

    Layout: experiments in the peer's bulk layout (``experiments.json`` + ``<experiment_id>/``),
    single runs under ``runs/<run_id>/``, models and versions as their engine writes them.
    """
    client = TrackingClient(uri)
    tracker = Tracker(on_progress)
    counts = Counts()
    failed: list[str] = []
    if selection.experiments:
        spec = ["all"] if any(e in ("*", "all") for e in selection.experiments) else selection.experiments
        bulk = exp_engine.export_experiments(
            client, spec, out_dir, run_start_time=options.run_start_time,
            export_deleted_runs=options.export_deleted_runs, include_artifacts=options.include_artifacts,
            workers=workers, tracker=tracker, options=options.model_dump())
        counts.experiments += len(bulk.experiments)
        counts.runs += sum(len(e.ok_runs) for e in bulk.experiments)
        counts.bytes += sum(e.nbytes for e in bulk.experiments)
        failed += bulk.failed + [f for e in bulk.experiments for f in e.failed]
    for run_id in selection.run_ids:
        tracker.add_total()
        try:
            done = run_engine.export_run(client, run_id, out_dir / RUNS_DIR / run_id,
                                         include_artifacts=options.include_artifacts)
            counts.runs += 1
            counts.bytes += done.nbytes
            tracker.advance()
        except FerryError as err:
            failed.append(f"run {run_id}: {err.message}")
            tracker.fail()
    if selection.models or selection.model_versions:
        hook: Callable[..., Outcome] | None = getattr(_models_engine(), "export_selection", None)
        if hook is None:
            failed.append("models: this build cannot export registered models")
        else:
            _merge(hook(client, out_dir, selection, options, workers=workers, tracker=tracker), counts, failed)
    return _outcome(counts, failed, str(out_dir))


def import_objects(uri: str, in_dir: Path, options: ImportOptions, *, experiment_renames: dict[str, str] | None = None,
                   model_renames: dict[str, str] | None = None, workers: int = 4,
                   on_progress: ProgressSink | None = None) -> Outcome:
    """Import whatever `in_dir` holds (bulk experiments, one experiment, one run, runs/, models) into `uri`."""
    if not in_dir.is_dir():
        raise InputError(f"input directory {in_dir} does not exist")
    client = TrackingClient(uri)
    tracker = Tracker(on_progress)
    counts = Counts()
    failed: list[str] = []
    found = False
    common: dict[str, Any] = {"import_source_tags": options.import_source_tags,
                              "use_src_user_id": options.use_src_user_id, "mlmodel_fix": options.mlmodel_fix,
                              "workers": workers, "tracker": tracker}
    if (in_dir / exp_engine.EXPERIMENTS_JSON).is_file():
        found = True
        renames = dict(experiment_renames or {})
        done, bad = exp_engine.import_experiments(client, in_dir, renames=renames, **common)
        failed += bad
        for e in done:
            counts.experiments += 1
            counts.runs += len(e.runs)
            failed += e.failed
    elif (in_dir / exp_engine.EXPERIMENT_JSON).is_file():
        found = True
        e = exp_engine.import_experiment(client, in_dir, options.experiment_name, **common)
        counts.experiments += 1
        counts.runs += len(e.runs)
        failed += e.failed
    run_dirs = [] if (in_dir / exp_engine.EXPERIMENT_JSON).is_file() else _run_dirs(in_dir)
    if run_dirs and not options.experiment_name:
        missing = f"{in_dir} holds single runs: an experiment name to import them into is required"
        if not found:
            raise InputError(missing)
        failed.append(f"runs: {missing}")
    elif run_dirs:
        found = True
        exp = client.get_or_create_experiment(options.experiment_name)
        imported = []
        known = run_engine.imported_index(client, str(exp["experiment_id"]))
        for run_dir in run_dirs:
            tracker.add_total()
            try:
                imported.append(run_engine.import_run(
                    client, run_dir, str(exp["experiment_id"]), import_source_tags=options.import_source_tags,
                    use_src_user_id=options.use_src_user_id, mlmodel_fix=options.mlmodel_fix, defer_delete=True,
                    known=known))
                counts.runs += 1
                tracker.advance()
            except FerryError as err:
                failed.append(f"run {run_dir.name}: {err.message}")
                tracker.fail()
        exp_engine.finish_links(client, imported)
    models = _models_engine()
    hook = getattr(models, "import_directory", None)
    detect = getattr(models, "holds_models", None)
    if hook is not None and detect is not None and detect(in_dir):
        found = True
        _merge(hook(client, in_dir, options, model_renames=model_renames, experiment_renames=experiment_renames,
                    workers=workers, tracker=tracker), counts, failed)
    if not found:
        raise InputError(f"{in_dir} is not an export: no experiments.json, experiment.json, run.json or model files")
    return _outcome(counts, failed, str(in_dir))


def _run_dirs(in_dir: Path) -> list[Path]:
    """`in_dir` itself when it is a run, else the runs under ``runs/``."""
    if (in_dir / run_engine.RUN_JSON).is_file():
        return [in_dir]
    return sorted(p for p in (in_dir / RUNS_DIR).glob("*") if (p / run_engine.RUN_JSON).is_file())


def _models_engine() -> ModuleType | None:
    """Hook for registered models and versions: ``ferry.engine.models`` provides

    ``export_selection(client, out_dir, selection, options, *, workers, tracker) -> Outcome``,
    ``holds_models(in_dir) -> bool`` and
    ``import_directory(client, in_dir, options, *, model_renames, experiment_renames, workers, tracker) -> Outcome``.
    """
    try:
        from ferry.engine import models
    except ImportError:
        return None
    return models


def _merge(part: Outcome, counts: Counts, failed: list[str]) -> None:
    for name in Counts.model_fields:
        setattr(counts, name, getattr(counts, name) + getattr(part.counts, name))
    failed += part.failed


def _outcome(counts: Counts, failed: list[str], path: str) -> Outcome:
    done = counts.experiments + counts.runs + counts.models + counts.versions
    phase = "Succeeded" if not failed else ("PartiallyFailed" if done else "Failed")
    message = f"{counts.experiments} experiments, {counts.runs} runs, {counts.models} models, {counts.versions} versions"
    if failed:
        message += f"; {len(failed)} failed"
    return Outcome(phase=phase, counts=counts, failed=failed, message=message, path=path)
