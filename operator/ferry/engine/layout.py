"""Every name an export directory may hold, gathered from the engines that read them, and what nothing reads.

An import reads the entries it knows and would pass over the others without a word: a directory
of an object kind a newer exporter writes (``gateway_endpoints/``), a file a person put there, a
file inside an experiment's directory that no importer opens. Such an entry is not carried, so
it is listed as a failure ("not carried: unknown object kind") and the import is PartiallyFailed.

The names live in the engines that write and read them; this module only collects them, so the
check and the engines cannot drift apart. Where an entry is named by an id (an experiment's
directory in a bulk export, a run's directory in mlflow-export-import's layout before 1.2), it is
known by what it holds. Directories of one object (a run, a model, a model version) are named by
ids inside and are not looked into; neither are the per-kind directories (``models/``,
``prompts/`` ...), whose engines list what they could not read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ferry.engine import (
    experiment_objects,
    experiments,
    experiments_bulk,
    logged_models,
    model_versions,
    scorers,
)
from ferry.engine import models as model_engine
from ferry.engine import runs as run_engine
from ferry.engine.files import read_export_file
from ferry.errors import FerryError
from ferry.outcome import Outcome, Phase

RUNS_DIR = "runs"                    # single runs of a selection (<out>/runs/<run_id>/), an experiment's runs
PROMPTS_DIR = "prompts"              # where mlflow-export-import's export-all puts them too
DATASETS_DIR = "evaluation_datasets"
LOGGED_MODELS_DIR = experiment_objects.LOGGED_MODELS_DIR   # an experiment's, or a selection's by id
TRACES_DIR = experiment_objects.TRACES_DIR
MANIFEST_FILE = "manifest.json"      # written by export-models and export-all; describes, carries nothing
WEBHOOKS_DIR = "webhooks"            # model registry webhooks (ferry.engine.webhooks)
# The peer's bulk models layout (`ferry.engine.models_bulk`, which takes them from here).
MODELS_EXPERIMENTS_DIR = "experiments"   # the versions' runs, as a bulk experiments export
MODELS_DIR = "models"
VERSIONS_DIR = "model_versions"          # single versions of a selection

# What an export's top level may hold: the bulk and single layouts of every engine.
EXPORT_ENTRIES = frozenset({
    experiments_bulk.EXPERIMENTS_JSON, experiments.EXPERIMENT_JSON, run_engine.RUN_JSON, MANIFEST_FILE,
    RUNS_DIR, MODELS_EXPERIMENTS_DIR, MODELS_DIR, VERSIONS_DIR,
    PROMPTS_DIR, DATASETS_DIR, LOGGED_MODELS_DIR, TRACES_DIR, WEBHOOKS_DIR, scorers.SCORERS_FILE,
})
# What an experiment's directory may hold besides the run directories of the peer's older layout.
EXPERIMENT_ENTRIES = frozenset({
    experiments.EXPERIMENT_JSON, RUNS_DIR, LOGGED_MODELS_DIR, TRACES_DIR, scorers.SCORERS_FILE,
})
# A directory holding one of these is one object's directory, with entries named by ids.
OBJECT_FILES = (model_versions.VERSION_FILE, model_engine.MODEL_FILE, run_engine.RUN_JSON,
                logged_models.LOGGED_MODEL_FILE)

REASON = "not carried: unknown object kind, no importer reads it"


def not_carried(in_dir: Path) -> list[str]:
    """A failure line for each entry of the export in `in_dir` that no importer reads, by relative path."""
    if any((in_dir / name).is_file() for name in OBJECT_FILES):
        return []
    if (in_dir / experiments.EXPERIMENT_JSON).is_file():
        return _lines(_unknown_in_experiment(in_dir, ""))
    found = list(_unknown_in_experiments(in_dir, "", EXPORT_ENTRIES))
    if (in_dir / MODELS_EXPERIMENTS_DIR).is_dir():
        found += _unknown_in_experiments(in_dir / MODELS_EXPERIMENTS_DIR, f"{MODELS_EXPERIMENTS_DIR}/",
                                         {experiments_bulk.EXPERIMENTS_JSON, MANIFEST_FILE})
    return _lines(found)


def with_not_carried(outcome: Outcome, lines: list[str]) -> Outcome:
    """`outcome` with `lines` among its failures and in its message; at best PartiallyFailed.

    Lines it already lists (an inner import looked at the same directory) are not added twice.
    """
    lines = [line for line in lines if line not in outcome.failed]
    if not lines:
        return outcome
    phase = Phase.FAILED if outcome.phase is Phase.FAILED else Phase.PARTIALLY_FAILED
    names = ", ".join(line.split(":", 1)[0] for line in lines)
    return outcome.model_copy(update={
        "phase": phase, "failed": [*outcome.failed, *lines],
        "message": f"{outcome.message}; not carried (unknown object kind): {names}"})


def _lines(paths: Iterable[str]) -> list[str]:
    return [f"{path}: {REASON}" for path in paths]


def _entries(directory: Path) -> list[Path]:
    """The entries a person or an exporter made; dot-files are an export's own scratch (spools, parts)."""
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


def _shown(path: Path, prefix: str) -> str:
    return f"{prefix}{path.name}/" if path.is_dir() else f"{prefix}{path.name}"


def _unknown_in_experiments(directory: Path, prefix: str, known: Iterable[str]) -> Iterable[str]:
    """Entries of a bulk experiments directory (or an export's top level) that are neither known
    names nor experiment directories, and the unknown entries inside each experiment directory."""
    known = set(known)
    listed = _listed_experiments(directory)
    for entry in _entries(directory):
        if entry.is_dir() and ((entry / experiments.EXPERIMENT_JSON).is_file() or entry.name in listed):
            yield from _unknown_in_experiment(entry, f"{prefix}{entry.name}/")
        elif entry.name not in known:
            yield _shown(entry, prefix)


def _unknown_in_experiment(exp_dir: Path, prefix: str) -> Iterable[str]:
    for entry in _entries(exp_dir):
        if entry.name in EXPERIMENT_ENTRIES:
            continue
        if entry.is_dir() and (entry / run_engine.RUN_JSON).is_file():  # a run, mlflow-export-import < 1.2
            continue
        yield _shown(entry, prefix)


def _listed_experiments(directory: Path) -> set[str]:
    """The experiment ids ``experiments.json`` lists: their directories are known even when incomplete
    (the bulk import says what is wrong with them)."""
    index = directory / experiments_bulk.EXPERIMENTS_JSON
    if not index.is_file():
        return set()
    try:
        doc = read_export_file(index, "an export of experiments")
    except FerryError:
        return set()
    return {str(e.get("id")) for e in (doc.get("mlflow") or {}).get("experiments") or [] if isinstance(e, dict)}
