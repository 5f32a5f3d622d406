"""Export and import of MLflow 3 evaluation datasets in mlflow-export-import's layout.

One dataset: ``<dir>/evaluation_dataset.json`` (see `evaluation_dataset_format`). Many:
``<dir>/<name>_<dataset_id>/evaluation_dataset.json`` plus ``evaluation_datasets_summary.json``;
inside a whole-server export the directory is ``evaluation_datasets/``.

An import is idempotent. The destination dataset carries the source dataset's id as a
``ferry.source.dataset_id`` tag, because MLflow allows several datasets with one name; a rerun
finds it, adds only what is missing (tags, experiment links, records whose inputs it lacks) and
merges only records whose expectations or tags differ. A same-named dataset without our tag
(the peer's import, or one made by hand) is taken over the same way rather than duplicated.
A server without the dataset endpoints (MLflow 2) has no datasets: exporting from it carries
nothing and succeeds, importing into it lists every dataset as failed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ferry.engine import evaluation_dataset_format as fmt
from ferry.engine import registry_files
from ferry.errors import FerryError, InputError, NotFoundError, UsageError
from ferry.outcome import Counts, Outcome
from ferry.tracking.client import TrackingClient
from ferry.tracking.datasets import Datasets
from ferry.tracking.transport import EndpointMissing, JsonDict

ALL = "all"


@dataclass
class Carried:
    """What some dataset work did; `outcome` applies the one phase rule with datasets as the work done."""

    datasets: int = 0
    records: int = 0
    failed: list[str] = field(default_factory=list)
    note: str = ""

    def add(self, other: Carried) -> None:
        self.datasets += other.datasets
        self.records += other.records
        self.failed += other.failed

    def outcome(self, path: str | None = None) -> Outcome:
        message = f"{self.datasets} evaluation datasets, {self.records} records"
        message += f"; {len(self.failed)} failed" if self.failed else ""
        message += f" ({self.note})" if self.note else ""
        return Outcome.of(Counts(evaluation_datasets=self.datasets), self.failed, message=message, path=path)


# -- export ----------------------------------------------------------------------------------------


def export_evaluation_dataset(client: TrackingClient, out_dir: str | Path, *, dataset_name: str | None = None,
                              dataset_id: str | None = None) -> Outcome:
    """Export one dataset, given by id or by a name only one dataset has."""
    if not dataset_name and not dataset_id:
        raise UsageError("give --dataset-name or --dataset-id")
    datasets = Datasets(client)
    if not dataset_id:
        found = datasets.find_by_name(str(dataset_name))
        if not found:
            raise NotFoundError(f"evaluation dataset '{dataset_name}' not found in MLflow at {client.uri}")
        if len(found) > 1:
            ids = ", ".join(d["dataset_id"] for d in found)
            raise UsageError(f"{len(found)} evaluation datasets are named '{dataset_name}' ({ids}): "
                             "give --dataset-id")
        dataset_id = found[0]["dataset_id"]
    return _export_one(datasets, str(dataset_id), Path(out_dir)).outcome(str(out_dir))


def export_evaluation_datasets(client: TrackingClient, out_dir: str | Path, names: str | Sequence[str] = ALL, *,
                               experiment_ids: Sequence[str] = (), workers: int = 4) -> Outcome:
    """Export datasets (`names`: ``"all"`` or a list) into ``<out_dir>/<name>_<id>/``.

    `experiment_ids` narrows ``"all"`` to the datasets linked to those experiments, as the peer's
    ``--experiment-ids``. A name that several datasets share exports each of them.
    """
    out = Path(out_dir)
    datasets = Datasets(client)
    result = Carried()
    try:
        if names == ALL or names == [ALL]:
            selected = list(datasets.search(experiment_ids=experiment_ids))
        else:
            selected = []
            for name in names:
                found = datasets.find_by_name(name)
                selected += found
                if not found:
                    result.failed.append(f"evaluation dataset '{name}': not found in MLflow at {client.uri}")
    except EndpointMissing:
        result.failed += [f"evaluation dataset '{n}': MLflow at {client.uri} has no evaluation datasets"
                          for n in ([] if names == ALL or names == [ALL] else names)]
        result.note = f"MLflow at {client.uri} has no evaluation datasets (MLflow 2)"
        return result.outcome(str(out))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        parts = list(pool.map(lambda d: _export_one(datasets, d["dataset_id"], out / fmt.dir_name(d)), selected))
    for part in parts:
        result.add(part)
    summary = {"total_datasets": len(selected), "successful_exports": result.datasets,
               "failed_exports": len(selected) - result.datasets,
               "datasets": [{"name": d.get("name"), "dataset_id": d["dataset_id"]} for d in selected]}
    registry_files.write(out, fmt.SUMMARY_FILE, summary, uri=client.uri, script="export_evaluation_datasets.py")
    return result.outcome(str(out))


def _export_one(datasets: Datasets, dataset_id: str, out_dir: Path) -> Carried:
    try:
        dataset = datasets.get(dataset_id)
        records = list(datasets.records(dataset_id))
        experiments = {eid: _experiment_name(datasets.client, eid) for eid in datasets.experiment_ids(dataset_id)}
        doc = fmt.dataset_to_file(dataset, records, experiments)
        registry_files.write(out_dir, fmt.DATASET_FILE, {fmt.SECTION: doc}, uri=datasets.uri,
                             script="export_evaluation_dataset.py")
    except EndpointMissing:
        return Carried(failed=[f"evaluation dataset {dataset_id}: MLflow at {datasets.uri} has no evaluation "
                               "datasets"])
    except FerryError as err:
        return Carried(failed=[f"evaluation dataset {dataset_id}: {err.message}"])
    return Carried(datasets=1, records=len(records))


def _experiment_name(client: TrackingClient, experiment_id: str) -> str | None:
    """The linked experiment's name, which is what an import links by; None if it is gone."""
    try:
        return str(client.get_experiment(experiment_id)["name"])
    except NotFoundError:
        return None


# -- import ----------------------------------------------------------------------------------------


def import_evaluation_dataset(client: TrackingClient, in_dir: str | Path, *, dataset_name: str | None = None,
                              delete_dataset: bool = False,
                              experiment_names: Mapping[str, str] | None = None) -> Outcome:
    """Import the dataset in `in_dir`, named `dataset_name` or as in the export.

    `experiment_names` (source experiment id to name) names linked experiments that the file does
    not name itself, as in a peer's export inside a whole-server export whose ``experiments.json``
    does.
    """
    path = Path(in_dir)
    return _import_one(Datasets(client), path, dataset_name, delete_dataset, experiment_names).outcome(str(path))


def import_evaluation_datasets(client: TrackingClient, in_dir: str | Path, *, delete_dataset: bool = False,
                               experiment_names: Mapping[str, str] | None = None) -> Outcome:
    """Import every ``<in_dir>/*/evaluation_dataset.json`` (a bulk export's directories).

    Without `experiment_names`, the names come from a whole-server export's
    ``experiments/experiments.json`` beside `in_dir`, if there is one.
    """
    path = Path(in_dir)
    if not path.is_dir():
        raise InputError(f"{path}: no such directory")
    if experiment_names is None:
        experiment_names = export_all_experiment_names(path)
    result = Carried()
    datasets = Datasets(client)
    for sub in sorted(p for p in path.iterdir() if (p / fmt.DATASET_FILE).is_file()):
        result.add(_import_one(datasets, sub, None, delete_dataset, experiment_names))
    return result.outcome(str(path))


def export_all_experiment_names(datasets_dir: Path) -> dict[str, str]:
    """Source experiment id to name from ``<datasets_dir>/../experiments/experiments.json``, if present.

    In a whole-server export (ours or the peer's export-all) the datasets lie in
    ``evaluation_datasets/`` beside ``experiments/``, whose index names every exported experiment:
    that names the links of peer-written datasets, which record experiment ids only.
    """
    index = datasets_dir.parent / "experiments" / "experiments.json"
    if not index.is_file():
        return {}
    entries = registry_files.read(index, "a bulk experiments export")["mlflow"].get("experiments") or []
    return {str(e["id"]): str(e["name"]) for e in entries if isinstance(e, dict) and e.get("id") and e.get("name")}


def _import_one(datasets: Datasets, in_dir: Path, dataset_name: str | None, delete_dataset: bool,
                experiment_names: Mapping[str, str] | None) -> Carried:
    doc = registry_files.read(in_dir / fmt.DATASET_FILE, "an exported evaluation dataset")
    src = registry_files.section(doc, fmt.SECTION, in_dir / fmt.DATASET_FILE)
    name = dataset_name or str(src.get("name") or "")
    what = f"evaluation dataset '{name}' ({in_dir.name})"
    if not name:
        return Carried(failed=[f"{what}: the export names no dataset"])
    try:
        return _carry(datasets, src, name, registry_files.source_uri(doc), delete_dataset, experiment_names, what)
    except EndpointMissing:
        return Carried(failed=[f"{what}: MLflow at {datasets.uri} has no evaluation datasets (MLflow 2)"])
    except FerryError as err:
        return Carried(failed=[f"{what}: {err.message}"])


def _carry(datasets: Datasets, src: JsonDict, name: str, src_uri: str, delete_dataset: bool,
           experiment_names: Mapping[str, str] | None, what: str) -> Carried:
    result = Carried()
    src_id = str(src.get("dataset_id") or "")
    target = find_import(datasets, name, src_id)
    if target is not None and delete_dataset:
        datasets.delete(target["dataset_id"])
        target = None
    experiment_ids, unlinked = _destination_experiments(datasets.client, src, experiment_names)
    result.failed += [f"{what}: {reason}" for reason in unlinked]
    tags = {**fmt.user_tags(src.get("tags") or {}), fmt.SOURCE_DATASET_TAG: src_id, fmt.SOURCE_URI_TAG: src_uri}
    if target is None:
        target = datasets.create(name, tags=tags, experiment_ids=experiment_ids)
    else:
        have = target.get("tags") or {}
        datasets.set_tags(target["dataset_id"], {k: v for k, v in tags.items() if have.get(k) != v})
        linked = set(datasets.experiment_ids(target["dataset_id"]))
        datasets.add_to_experiments(target["dataset_id"], [e for e in experiment_ids if e not in linked])
    sent, conflicts = _records_to_send(datasets, target["dataset_id"], src.get("records") or [])
    result.failed += [f"{what}: {reason}" for reason in conflicts]
    inserted, _ = datasets.upsert_records(target["dataset_id"], sent)
    result.datasets, result.records = 1, inserted
    return result


def find_import(datasets: Datasets, name: str, src_id: str) -> JsonDict | None:
    """The destination dataset an earlier import of `src_id` made, else a same-named one not imported by us."""
    candidates = datasets.find_by_name(name)
    for dataset in candidates:
        if (dataset.get("tags") or {}).get(fmt.SOURCE_DATASET_TAG) == src_id:
            return dataset
    for dataset in candidates:
        if fmt.SOURCE_DATASET_TAG not in (dataset.get("tags") or {}):
            return dataset
    return None


def _destination_experiments(client: TrackingClient, src: JsonDict,
                             extra_names: Mapping[str, str] | None) -> tuple[list[str], list[str]]:
    """Destination ids of the linked experiments (by name, created if missing) and links that cannot be made."""
    names = {**(extra_names or {}), **(src.get(fmt.EXPERIMENT_NAMES) or {})}
    ids: list[str] = []
    unlinked: list[str] = []
    for src_eid in src.get("experiment_ids") or []:
        name = names.get(str(src_eid))
        if not name:
            unlinked.append(f"link to source experiment {src_eid} not carried: the export does not name that "
                            "experiment (mlflow-export-import records only its id)")
            continue
        ids.append(str(client.get_or_create_experiment(name)["experiment_id"]))
    return ids, unlinked


def _records_to_send(datasets: Datasets, dataset_id: str, records: Sequence[JsonDict]) -> tuple[list[JsonDict], list[str]]:
    """The source records the destination lacks or holds with other expectations/tags; source conflicts."""
    existing = {fmt.inputs_key(r): r for r in datasets.records(dataset_id)}
    send: list[JsonDict] = []
    conflicts: list[str] = []
    for record in records:
        body = fmt.record_body(record)
        have = existing.get(fmt.inputs_key(body))
        if have is not None and not fmt.same_source(have, body):
            conflicts.append(f"record {record.get('dataset_record_id', '')} keeps the destination's source "
                             f"{have.get('source')}: a record with the same inputs exists and MLflow cannot "
                             "change a record's source")
        if have is None or fmt.needs_merge(have, body):
            send.append(body)
    return send, conflicts
