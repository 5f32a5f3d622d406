"""Export and import of MLflow 3 prompts, in mlflow-export-import 1.2.x's layout, both ways.

``export-prompt`` writes one version as ``<dir>/prompt.json``; ``export-prompts`` writes every
version of each prompt as ``<dir>/<name>_v<version>/prompt.json`` and ``<dir>/prompts_summary.json``
(the layout `ferry.engine.prompt_format` describes). Import rebuilds each prompt with its
versions in version order, its tags, description and aliases, which the peer's import loses.

Import is idempotent: a destination version carries its source server, prompt and version as
``ferry.source.*`` tags, and a version already carrying them is not created again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ferry.engine import registry_files
from ferry.engine.prompt_format import (
    PROMPT_FILE,
    SUMMARY_FILE,
    JsonDict,
    commit_message,
    prompt_metadata,
    version_dir_name,
    version_tags,
    version_to_file,
)
from ferry.engine.registry_format import SOURCE_URI_TAG, SOURCE_VERSION_TAG, tags_dict
from ferry.errors import FerryError, InputError, NotFoundError
from ferry.outcome import Counts, Outcome
from ferry.tracking.client import TrackingClient
from ferry.tracking.prompts import IS_PROMPT_TAG, Prompts, is_prompt

SOURCE_PROMPT_TAG = "ferry.source.prompt"


@dataclass(frozen=True)
class Origin:
    """Where a destination version came from; stored on it as ``ferry.source.*`` tags."""

    uri: str
    prompt: str
    version: str

    def tags(self) -> dict[str, str]:
        return {SOURCE_URI_TAG: self.uri, SOURCE_PROMPT_TAG: self.prompt, SOURCE_VERSION_TAG: self.version}

    @classmethod
    def of(cls, tags: Mapping[str, str]) -> Origin | None:
        if SOURCE_PROMPT_TAG not in tags or SOURCE_VERSION_TAG not in tags:
            return None
        return cls(tags.get(SOURCE_URI_TAG, ""), tags[SOURCE_PROMPT_TAG], tags[SOURCE_VERSION_TAG])


@dataclass
class _Tally:
    """What one or more prompts' work did: prompts and versions created, and what failed."""

    prompts: int = 0
    versions: int = 0
    failed: list[str] = field(default_factory=list)

    def add(self, other: _Tally) -> None:
        self.prompts += other.prompts
        self.versions += other.versions
        self.failed += other.failed

    def outcome(self, message: str, path: str | None = None) -> Outcome:
        counts = Counts(prompts=self.prompts, prompt_versions=self.versions)
        suffix = f"; {len(self.failed)} failed" if self.failed else ""
        return Outcome.of(counts, self.failed, message=message + suffix, path=path)


def _each(fn: Callable[[str], _Tally], names: Iterable[str], workers: int) -> _Tally:
    """`fn` over prompt names, `workers` at a time; a `FerryError` becomes that prompt's failure."""
    def guarded(name: str) -> _Tally:
        try:
            return fn(name)
        except FerryError as err:
            return _Tally(failed=[f"prompt '{name}': {err.message}"])

    total = _Tally()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for part in pool.map(guarded, list(dict.fromkeys(names))):
            total.add(part)
    return total


# -- export ----------------------------------------------------------------------------------------


def export_prompt(client: TrackingClient, name: str, version: str | int, output_dir: str | Path) -> Outcome:
    """Write one version of a prompt as ``<output_dir>/prompt.json`` (the peer's export-prompt)."""
    prompts = Prompts(client)
    model = prompts.get(name)
    found = prompts.get_version(name, str(version))
    if tags_dict(found.get("tags")).get(IS_PROMPT_TAG) != "true":
        raise NotFoundError(f"version {version} of prompt '{name}' is not a prompt version in MLflow at {client.uri}")
    out = Path(output_dir)
    _write(out, client.uri, "export_prompt.py", version_to_file(model, found))
    return Outcome.of(Counts(prompts=1, prompt_versions=1), path=str(out),
                      message=f"exported version {found['version']} of prompt '{name}' to {out}")


def resolve_prompts(prompts: Prompts, names: str | Sequence[str]) -> list[str]:
    """``all``, explicit names (the peer's ``--prompts``) or a ``prefix*`` as for ``--models``."""
    names = [names] if isinstance(names, str) else list(names)
    if names in (["all"], ["*"]):
        return prompts.names()
    if len(names) == 1 and names[0].endswith("*"):
        return [n for n in prompts.names() if n.startswith(names[0][:-1])]
    return [n for n in names if n]


def export_prompts(client: TrackingClient, names: str | Sequence[str], output_dir: str | Path, *,
                   workers: int = 1) -> Outcome:
    """Write every version of each selected prompt under `output_dir`, and the summary file.

    `names` is ``"all"`` or a list. A server without a registry has no prompts: nothing is
    written but the summary, and that is a success.
    """
    out = Path(output_dir)
    prompts = Prompts(client)
    selected = resolve_prompts(prompts, names)
    tally = _each(lambda name: _export_versions(prompts, name, out), selected, workers)
    summary = {"total_prompts": tally.versions + len(tally.failed), "successful_exports": tally.versions,
               "failed_exports": len(tally.failed)}
    registry_files.write(out, SUMMARY_FILE, summary, {"prompts": selected}, uri=client.uri,
                         script="export_prompts.py")
    return tally.outcome(f"exported {tally.prompts} prompts, {tally.versions} versions to {out}", str(out))


def _export_versions(prompts: Prompts, name: str, out: Path) -> _Tally:
    model = prompts.get(name)
    versions = prompts.versions(name)
    for version in versions:
        _write(out / version_dir_name(name, version["version"]), prompts.uri, "export_prompts.py",
               version_to_file(model, version))
    return _Tally(prompts=1, versions=len(versions))


def _write(directory: Path, uri: str, script: str, entry: JsonDict) -> None:
    registry_files.write(directory, PROMPT_FILE, {"prompt": entry}, uri=uri, script=script)


# -- import ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """One version read from an export: its file entry and the server it was exported from."""

    entry: JsonDict
    uri: str

    @property
    def origin(self) -> Origin:
        return Origin(self.uri, str(self.entry.get("name") or ""), str(self.entry.get("version")))


def _read(directory: Path) -> _Source:
    path = directory / PROMPT_FILE
    doc = registry_files.read(path, "a prompt export")
    entry = registry_files.section(doc, "prompt", path)
    if not entry.get("name") or entry.get("version") is None:
        raise InputError(f"{path} names no prompt and version")
    return _Source(entry, registry_files.source_uri(doc))


def import_prompt(client: TrackingClient, input_dir: str | Path, *, prompt_name: str | None = None,
                  delete_prompt: bool = False) -> Outcome:
    """Import one version (``<input_dir>/prompt.json``) into `prompt_name` (default: its own name)."""
    source = _read(Path(input_dir))
    name = prompt_name or str(source.entry["name"])
    tally = _import_prompt(Prompts(client), name, [source], delete=delete_prompt)
    return tally.outcome(f"prompt '{name}': {tally.versions} versions imported")


def import_prompts(client: TrackingClient, input_dir: str | Path, *, delete_prompt: bool = False,
                   workers: int = 1) -> Outcome:
    """Import every prompt of an ``export-prompts`` directory, each one's versions in order.

    `delete_prompt` deletes each destination prompt once, before its first version is imported.
    """
    in_dir = Path(input_dir)
    if not in_dir.is_dir():
        raise InputError(f"{in_dir}: no such directory")
    grouped, tally = _grouped(in_dir)
    prompts = Prompts(client)
    tally.add(_each(lambda name: _import_prompt(prompts, name, grouped[name], delete=delete_prompt),
                    sorted(grouped), workers))
    return tally.outcome(f"imported {tally.prompts} prompts, {tally.versions} versions from {in_dir}")


def _grouped(in_dir: Path) -> tuple[dict[str, list[_Source]], _Tally]:
    """The versions under `in_dir` by prompt, in version order; unreadable ones as failures."""
    grouped: dict[str, list[_Source]] = {}
    tally = _Tally()
    for directory in sorted(p for p in in_dir.iterdir() if (p / PROMPT_FILE).is_file()):
        try:
            source = _read(directory)
        except FerryError as err:
            tally.failed.append(f"{directory.name}: {err.message}")
            continue
        grouped.setdefault(str(source.entry["name"]), []).append(source)
    for sources in grouped.values():
        sources.sort(key=lambda s: int(s.entry["version"]))
    return grouped, tally


def _import_prompt(prompts: Prompts, name: str, sources: list[_Source], *, delete: bool) -> _Tally:
    """The prompt with its metadata, then each version not imported before, then its aliases."""
    if delete and is_prompt(prompts.find(name) or {}):  # never a registered model of that name
        prompts.delete(name)
    tally = _Tally(prompts=int(_ensure_prompt(prompts, name, [s.entry for s in sources])))
    done = imported_versions(prompts, name)
    for source in sources:
        if source.origin in done:
            continue
        try:
            created = prompts.create_version(name, tags={**version_tags(source.entry), **source.origin.tags()},
                                             description=commit_message(source.entry))
        except FerryError as err:
            tally.failed.append(f"version {source.entry['version']} of prompt '{name}': {err.message}")
            continue
        done[source.origin] = str(created["version"])
        tally.versions += 1
    tally.failed += _apply_aliases(prompts, name, sources, done)
    return tally


def _ensure_prompt(prompts: Prompts, name: str, entries: list[JsonDict]) -> bool:
    """Create the prompt, or converge an existing one on the source's tags and description.

    True if it was created. A registered model of the same name that is not a prompt is an error:
    MLflow refuses prompt versions on it.
    """
    tags, description = prompt_metadata(entries)
    if prompts.create(name, tags=tags, description=description):
        return True
    existing = prompts.find(name)
    if existing is None or not is_prompt(existing):
        raise InputError(f"'{name}' is a registered model, not a prompt, in MLflow at {prompts.uri}")
    if description and (existing.get("description") or "") != description:
        prompts.set_description(name, description)
    current = tags_dict(existing.get("tags"))
    for key, value in tags.items():
        if current.get(key) != value:
            prompts.set_tag(name, key, value)
    return False


def imported_versions(prompts: Prompts, name: str) -> dict[Origin, str]:
    """The destination prompt's versions an earlier import created, by origin."""
    found: dict[Origin, str] = {}
    for version in prompts.versions(name):
        origin = Origin.of(tags_dict(version.get("tags")))
        if origin is not None:
            found.setdefault(origin, str(version["version"]))
    return found


def _apply_aliases(prompts: Prompts, name: str, sources: list[_Source], done: Mapping[Origin, str]) -> list[str]:
    """Point each source alias at its destination version; an alias whose version failed is listed."""
    current = {a["alias"]: str(a["version"]) for a in prompts.get(name).get("aliases") or []}
    failed: list[str] = []
    for source in sources:
        for alias in source.entry.get("aliases") or []:
            target = done.get(source.origin)
            if target is None:
                failed.append(f"alias '{alias}' of prompt '{name}': version {source.entry['version']} "
                              "was not imported")
            elif current.get(alias) != target:
                prompts.set_alias(name, alias, target)
    return failed
