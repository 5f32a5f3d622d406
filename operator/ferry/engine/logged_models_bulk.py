"""Every logged model of experiments, whether or not a registered version points at it.

The layout is mlflow-export-import's ``export-logged-models`` (and the ``logged_models/``
directory of its experiment export): ``<dir>/logged_models.json`` lists the experiments with the
ids of their models, and each model is in ``<dir>/<model_id>/`` (see `ferry.engine.logged_models`).
``logged_models.json`` is written last; a model directory whose ``logged_model.json`` exists is
complete and is not exported again by a resumed export.

A model that cannot be carried is a line of ``Outcome.failed``; the others still travel.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ferry.engine import logged_models as one
from ferry.engine import registry_files
from ferry.errors import FerryError, InputError
from ferry.outcome import Counts, Outcome
from ferry.progress import ProgressSink, Tracker
from ferry.tracking.client import TrackingClient
from ferry.tracking.logged_models import LoggedModels

INDEX_FILE = "logged_models.json"


def experiment_ids_argument(client: TrackingClient, value: str | Sequence[str]) -> list[str]:
    """The peer's ``--experiment-ids``: ``all``, or ids (or names) comma separated."""
    if isinstance(value, str):
        if value.strip() == "all":
            return [str(e["experiment_id"]) for e in client.search_experiments()]  # active ones, as the peer
        value = [v.strip() for v in value.split(",") if v.strip()]
    return [str(client.find_experiment(v)["experiment_id"]) for v in value]


def export_logged_models(client: TrackingClient, experiment_ids: str | Sequence[str], out_dir: str | Path, *,
                         run_ids: Mapping[str, Collection[str]] | None = None,
                         progress: ProgressSink | None = None) -> Outcome:
    """Export every logged model of the experiments to `out_dir`.

    `run_ids` (experiment id → source run ids) keeps only the models those runs produced, as the
    peer's ``logged_models_filter`` does when an experiment export is limited to some runs.
    """
    out = Path(out_dir)
    models = LoggedModels(client)
    tracker = Tracker(progress)
    entries, done, failed, nbytes = [], 0, [], 0
    for exp_id in experiment_ids_argument(client, experiment_ids):
        experiment = client.get_experiment(exp_id)
        exported: list[str] = []
        for model in models.search([exp_id]):
            info = model["info"]
            if run_ids is not None and info.get("source_run_id") not in run_ids.get(exp_id, ()):
                continue
            model_id = str(info["model_id"])
            tracker.add_total()
            try:
                if not one.is_exported(out / model_id):
                    nbytes += one.export_logged_model(client, model_id, out / model_id)
            except FerryError as err:
                failed.append(f"logged model {model_id} ('{info.get('name')}') of experiment {exp_id}: {err}")
                tracker.fail()
                continue
            exported.append(model_id)
            done += 1
            tracker.advance()
        entries.append({"id": exp_id, "name": experiment["name"], "logged_models": exported})
    registry_files.write(out, INDEX_FILE, {"experiments": entries},
                         {"num_total_logged_models": done + len(failed), "num_ok_logged_models": done,
                          "num_failed_logged_models": len(failed), "failed_logged_models": failed},
                         uri=client.uri, script="export_logged_models.py")
    note = f" (MLflow at {client.uri} has no logged models (MLflow 2))" if models.missing else ""
    return Outcome.of(Counts(logged_models=done, bytes=nbytes), failed, path=str(out),
                      message=_sentence("exported", done, failed) + f" to {out}{note}")


@dataclass
class ModelsImported:
    """What importing logged models did: source id → destination id of each carried model."""

    ids: dict[str, str] = field(default_factory=dict)
    created: int = 0
    standins: int = 0
    failed: list[str] = field(default_factory=list)

    def add(self, other: ModelsImported) -> ModelsImported:
        return ModelsImported({**self.ids, **other.ids}, self.created + other.created,
                              self.standins + other.standins, self.failed + other.failed)

    def outcome(self) -> Outcome:
        message = _sentence("imported", self.created, self.failed, skipped=len(self.ids) - self.created)
        if self.standins:
            message += f"; {self.standins} on a stand-in run (their source run was not imported)"
        return Outcome.of(Counts(logged_models=self.created), self.failed, done=len(self.ids), message=message)


def import_logged_models(client: TrackingClient, in_dir: str | Path, *, experiment_name: str | None = None,
                         run_map: Mapping[str, str] | None = None, mlmodel_fix: bool = True,
                         progress: ProgressSink | None = None) -> Outcome:
    """Import what `export_logged_models` (ours or the peer's) wrote; idempotent.

    Each experiment's models go to the experiment of the same name (created if missing), or all
    to `experiment_name`. `run_map` maps source run ids to the imported runs (an experiment
    import knows it); runs not in it are found by the ``ferry.source.run_id`` tag.
    """
    src = Path(in_dir)
    entries = registry_files.read(src / INDEX_FILE, "an export of logged models")["mlflow"].get("experiments")
    if not isinstance(entries, list):
        raise InputError(f"{src / INDEX_FILE} is not an export of logged models: it has no 'mlflow.experiments'")
    tracker = Tracker(progress)
    tracker.add_total(sum(len(e.get("logged_models") or []) for e in entries))
    result = ModelsImported()
    for entry in entries:
        if not entry.get("logged_models"):
            continue
        name = experiment_name or str(entry["name"])
        experiment_id = str(client.get_or_create_experiment(name)["experiment_id"])
        result = result.add(import_experiment_logged_models(client, src, experiment_id, entry["logged_models"],
                                                            run_map=run_map, mlmodel_fix=mlmodel_fix,
                                                            tracker=tracker))
    return result.outcome()


def import_experiment_logged_models(client: TrackingClient, in_dir: Path, experiment_id: str,
                                    model_ids: Sequence[str], *, run_map: Mapping[str, str] | None = None,
                                    mlmodel_fix: bool = True, tracker: Tracker | None = None,
                                    dirs: Mapping[str, Path] | None = None) -> ModelsImported:
    """Import the models ``<in_dir>/<id>/`` (or ``dirs[id]``) into one experiment.

    The result's `ids` is what an experiment or registry import needs to point versions whose
    source is ``models:/<source id>`` at ``models:/<new id>``; ``.outcome()`` is its `Outcome`.
    """
    resolve = one.imported_runs(client, experiment_id, run_map)
    result = ModelsImported()
    for model_id in model_ids:
        try:
            model_dir = (dirs or {}).get(model_id, in_dir / model_id)
            done = one.import_logged_model_dir(client, model_dir, experiment_id, resolve,
                                               mlmodel_fix=mlmodel_fix)
        except FerryError as err:
            result.failed.append(f"logged model {model_id}: {err}")
            if tracker:
                tracker.fail()
            continue
        result.ids[done.src_model_id] = done.dst_model_id
        result.created += done.created
        result.standins += done.standin_run
        if tracker:
            tracker.advance()
    return result


def imported_model_ids(client: TrackingClient, experiment_id: str) -> dict[str, str]:
    """Source logged-model id → destination id, for every model imported into the experiment."""
    found: dict[str, str] = {}
    for model in LoggedModels(client).search([experiment_id], filter=f"tags.`{one.IMPORT_COMPLETE_TAG}` = 'true'"):
        tags = {t["key"]: t.get("value", "") for t in model["info"].get("tags") or []}
        if tags.get(one.SOURCE_MODEL_ID_TAG):
            found.setdefault(tags[one.SOURCE_MODEL_ID_TAG], str(model["info"]["model_id"]))
    return found


def _sentence(verb: str, done: int, failed: Sequence[str], *, skipped: int = 0) -> str:
    text = f"{verb} {done} logged models"
    if skipped:
        text += f", {skipped} already imported"
    return text + (f"; {len(failed)} failed" if failed else "")
