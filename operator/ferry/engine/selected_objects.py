"""Logged models and traces selected by id (``spec.objects.loggedModels`` / ``traces``), both ways.

An experiment's export carries its own logged models and traces; these are the ones a user
names one by one, from any experiment. They are written in the peer's ``export-logged-models``
and ``export-traces`` layouts (``<dir>/logged_models.json`` or ``<dir>/traces.json`` listing the
experiments with their ids, one directory per object), so `ferry.engine.logged_models_bulk` and
`ferry.engine.traces` read them back, and the peer's tools can too. ``'*'`` (or ``all``) is every
object of every experiment, exported by those engines directly.

On import each object goes to the experiment of its source's name (renamed by prefix as the
experiments are), after the runs of the same import: a logged model is put on the imported run
that produced it, and a trace links to the imported run and logged model, found by our
``ferry.source.*`` tags.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ferry.engine import logged_models, logged_models_bulk, registry_files, traces
from ferry.engine import runs as run_engine
from ferry.engine.experiments_bulk import rename
from ferry.engine.files import read_export_file, write_export_file
from ferry.errors import FerryError, InputError
from ferry.outcome import Counts, Outcome
from ferry.progress import Tracker
from ferry.tracking import JsonDict, TrackingClient
from ferry.tracking.logged_models import LoggedModels

EVERY = "all"


# -- export ----------------------------------------------------------------------------------------


def export_logged_models(client: TrackingClient, ids: str | Sequence[str], out: Path, *,
                         tracker: Tracker | None = None) -> Outcome:
    """Logged models by id (or ``all``) into ``<out>/<model_id>/`` plus ``logged_models.json``."""
    if ids == EVERY:
        return logged_models_bulk.export_logged_models(client, EVERY, out)
    models = LoggedModels(client)

    def one(model_id: str) -> tuple[str, int]:
        experiment_id = str(models.get(model_id)["info"]["experiment_id"])
        nbytes = 0
        if not logged_models.is_exported(out / model_id):  # complete from an earlier run
            nbytes = logged_models.export_logged_model(client, model_id, out / model_id)
        return experiment_id, nbytes

    done, failed, nbytes = _each(ids, one, "logged model", tracker)
    entries = _index_entries(client, done)
    registry_files.write(out, logged_models_bulk.INDEX_FILE, {"experiments": [
        {"id": e["id"], "name": e["name"], "logged_models": e["ids"]} for e in entries]},
        {"num_total_logged_models": len(ids), "num_ok_logged_models": len(ids) - len(failed),
         "num_failed_logged_models": len(failed), "failed_logged_models": failed},
        uri=client.uri, script="export_logged_models.py")
    return Outcome.of(Counts(logged_models=len(ids) - len(failed), bytes=nbytes), failed, path=str(out))


def export_traces(client: TrackingClient, ids: str | Sequence[str], out: Path, *,
                  tracker: Tracker | None = None) -> Outcome:
    """Traces by id (or ``all``) into ``<out>/<trace_id>/`` plus ``traces.json``."""
    if ids == EVERY:
        return traces.export_traces(client, EVERY, out)

    def one(trace_id: str) -> tuple[str, int]:
        trace_file = out / trace_id / traces.TRACE_FILE
        if not trace_file.is_file():  # complete from an earlier run
            traces.export_trace(client, trace_id, out / trace_id)
        info = read_export_file(trace_file, "an exported trace")["mlflow"]["info"]
        return str((info.get("trace_location", {}).get("mlflow_experiment") or {}).get("experiment_id", "")), 0

    done, failed, _ = _each(ids, one, "trace", tracker)
    entries = _index_entries(client, done)
    write_export_file(out, traces.TRACES_FILE, script="export_traces.py", tracking_uri=client.uri,
                      mlflow={"experiments": [{"id": e["id"], "name": e["name"], "traces": e["ids"]}
                                              for e in entries]},
                      info={"num_total_trace": len(ids), "num_ok_traces": len(ids) - len(failed),
                            "num_failed_traces": len(failed),
                            "failed_traces": [line.split(" ", 2)[1] for line in failed]})
    return Outcome.of(Counts(traces=len(ids) - len(failed)), failed, path=str(out))


def _each(ids: Sequence[str], one: Callable[[str], tuple[str, int]], what: str,
          tracker: Tracker | None) -> tuple[dict[str, list[str]], list[str], int]:
    """`one` over `ids`: (experiment id → the ids done, in order), the failure lines, the bytes."""
    tracker = tracker or Tracker()
    done: dict[str, list[str]] = {}
    failed: list[str] = []
    nbytes = 0
    for object_id in dict.fromkeys(ids):
        tracker.add_total()
        try:
            experiment_id, size = one(object_id)
        except FerryError as err:
            failed.append(f"{what} {object_id}: {err.message}")
            tracker.fail()
            continue
        done.setdefault(experiment_id, []).append(object_id)
        nbytes += size
        tracker.advance()
    return done, failed, nbytes


def _index_entries(client: TrackingClient, done: Mapping[str, list[str]]) -> list[JsonDict]:
    return [{"id": exp_id, "name": client.get_experiment(exp_id)["name"], "ids": ids} for exp_id, ids in done.items()]


# -- import ----------------------------------------------------------------------------------------


def import_logged_models(client: TrackingClient, in_dir: Path, *, renames: Mapping[str, str] | None = None,
                         mlmodel_fix: bool = True, tracker: Tracker | None = None) -> Outcome:
    """What `export_logged_models` (or the peer's export-logged-models) wrote, each experiment's
    models into the experiment of its (renamed) name; idempotent."""
    result = logged_models_bulk.ModelsImported()
    for name, ids in _entries(in_dir / logged_models_bulk.INDEX_FILE, "logged_models", "an export of logged models"):
        experiment_id = str(client.get_or_create_experiment(rename(name, renames))["experiment_id"])
        result = result.add(logged_models_bulk.import_experiment_logged_models(
            client, in_dir, experiment_id, ids, mlmodel_fix=mlmodel_fix, tracker=tracker))
    return result.outcome()


def import_traces(client: TrackingClient, in_dir: Path, *, renames: Mapping[str, str] | None = None) -> Outcome:
    """What `export_traces` (or the peer's export-traces) wrote, each experiment's traces into the
    experiment of its (renamed) name, linked to the runs and logged models imported there."""
    names = {name: rename(name, renames) for name, _ in _entries(in_dir / traces.TRACES_FILE, "traces",
                                                                 "an export-traces directory")}
    run_ids: dict[str, str] = {}
    model_ids: dict[str, str] = {}
    for name in set(names.values()):
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            continue
        experiment_id = str(experiment["experiment_id"])
        for src, runs in run_engine.imported_index(client, experiment_id).items():
            live = [r for r in runs if r["info"].get("lifecycle_stage") != "deleted"]
            if live:
                run_ids.setdefault(src, str(live[0]["info"]["run_id"]))
        for src, dst in logged_models_bulk.imported_model_ids(client, experiment_id).items():
            model_ids.setdefault(src, dst)
    return traces.import_traces(client, in_dir, experiment_renames=names, run_ids=run_ids, model_ids=model_ids)


def _entries(index: Path, key: str, what: str) -> list[tuple[str, list[str]]]:
    """(experiment name, object ids) of each experiment an index file lists."""
    experiments = (read_export_file(index, what).get("mlflow") or {}).get("experiments")
    if not isinstance(experiments, list):
        raise InputError(f"{index} is not {what}: it has no 'mlflow.experiments'")
    return [(str(e["name"]), [str(i) for i in e.get(key) or []]) for e in experiments if e.get(key)]
