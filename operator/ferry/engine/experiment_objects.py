"""The MLflow 3 objects that belong to an experiment: its logged models, traces and scorers.

An experiment's export carries them beside its runs, in the peer's layout:
``<experiment dir>/logged_models/`` (`ferry.engine.logged_models_bulk`) and
``<experiment dir>/traces/`` (`ferry.engine.traces`), and in ours for what the peer does not carry:
``<experiment dir>/scorers.json`` (`ferry.engine.scorers`). On import they come after the runs, so
that a logged model is recreated on the imported run that produced it and a trace links to the
imported run and model; scorers come last (they reference nothing of the experiment's). An
MLflow 2 server has none of them: its export holds none and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ferry.engine import logged_models_bulk, scorers, traces
from ferry.engine.files import read_export_file
from ferry.errors import FerryError
from ferry.outcome import Counts, Outcome
from ferry.tracking import TrackingClient

LOGGED_MODELS_DIR = "logged_models"
TRACES_DIR = "traces"


def export_objects_of(client: TrackingClient, experiment_id: str, exp_dir: Path, *,
                      run_ids: Sequence[str] | None = None, include_logged_models: bool = True,
                      include_traces: bool = True, traces_since: int | None = None,
                      include_scorers: bool = True) -> list[Outcome]:
    """Export the experiment's logged models (only those of `run_ids` when given), traces and scorers.

    Scorers are the experiment's whatever runs are selected: they belong to the experiment, not to a run.
    """
    parts = []
    if include_logged_models:
        only = {experiment_id: list(run_ids)} if run_ids is not None else None
        parts.append(logged_models_bulk.export_logged_models(client, [experiment_id], exp_dir / LOGGED_MODELS_DIR,
                                                             run_ids=only))
    if include_traces:
        parts.append(traces.export_traces(client, [experiment_id], exp_dir / TRACES_DIR, traces_since=traces_since))
    if include_scorers:
        parts.append(_scorers(lambda: scorers.export_scorers(client, experiment_id, exp_dir), experiment_id))
    return parts


def import_objects_of(client: TrackingClient, exp_dir: Path, experiment_id: str, experiment_name: str,
                      run_map: Mapping[str, str], *, mlmodel_fix: bool = True) -> list[Outcome]:
    """Import what `export_objects_of` wrote (ours or the peer's) into the imported experiment."""
    parts: list[Outcome] = []
    model_ids: dict[str, str] = {}
    models_dir = exp_dir / LOGGED_MODELS_DIR
    if (models_dir / logged_models_bulk.INDEX_FILE).is_file():
        index = read_export_file(models_dir / logged_models_bulk.INDEX_FILE, "an export of logged models")
        ids = [m for e in (index.get("mlflow") or {}).get("experiments") or [] for m in e.get("logged_models") or []]
        imported = logged_models_bulk.import_experiment_logged_models(client, models_dir, experiment_id, ids,
                                                                      run_map=run_map, mlmodel_fix=mlmodel_fix)
        parts.append(imported.outcome())
        model_ids = imported.ids
    traces_dir = exp_dir / TRACES_DIR
    if (traces_dir / traces.TRACES_FILE).is_file():
        parts.append(traces.import_traces(client, traces_dir, experiment_name=experiment_name, run_ids=run_map,
                                          model_ids=model_ids))
    if (exp_dir / scorers.SCORERS_FILE).is_file():
        parts.append(_scorers(lambda: scorers.import_scorers(client, exp_dir, experiment_name=experiment_name),
                              experiment_name))
    return parts


def _scorers(work: Callable[[], Outcome], experiment: str) -> Outcome:
    """The scorers' part; a failure to list or read them all is one failed line, not the experiment's end."""
    try:
        return work()
    except FerryError as err:
        return Outcome.of(Counts(), [f"scorers of experiment '{experiment}': {err.message}"])
