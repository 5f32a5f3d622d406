"""Databricks workspace objects beside MLflow's: the runs' notebooks and the permissions of experiments and models.

mlflow-export-import carries them when the tracking server is a Databricks workspace
(``--notebook-formats``, ``--dst-notebook-dir``, ``--export-permissions``, ``--import-permissions``);
so does this module, in its layout, through databricks-sdk's `WorkspaceClient` on the tracking
client's own sign-in (`ferry.tracking.databricks.Workspace.sdk`):

* **Notebooks.** A run tagged ``mlflow.databricks.notebookPath`` gets, under its ``artifacts/notebooks/``,
  ``<notebook name>.<format in lower case>`` for each format, byte for byte what the Workspace API
  exports, and ``manifest.json`` naming the notebook, the run's revision and the formats asked. The
  documented Workspace API exports a notebook's current revision, and so do we; the peer also passes
  an undocumented revision parameter. On import, the ``.source`` file is imported into the
  destination folder under the notebook's name (overwriting what is there), and the imported run
  keeps the source's notebook tags, as the peer leaves them.
* **Permissions.** ``{"permission_levels": [...], "permissions": <the Permissions API's answer>}`` in
  ``experiment.json``'s ``mlflow.permissions`` and ``model.json``'s ``registered_model.permissions``.
  On import every (principal, level) of the access control list is its own PATCH, so a principal the
  destination does not know fails alone and the others land.

What cannot be carried is listed as a failure of its object (the outcome is then at best
PartiallyFailed): a notebook the workspace does not export, a permission entry the destination
refuses. A run without a notebook has nothing to carry: it is counted in the message, the phase
is unchanged. Failures are gathered on the `WorkspaceExport` / `WorkspaceImport` of the command,
from the engine's worker threads, and joined to its outcome by `reported`.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferry.engine.files import write_json
from ferry.options import WorkspaceExportOptions, WorkspaceImportOptions
from ferry.outcome import Outcome, Phase
from ferry.tracking import JsonDict, tags_of
from ferry.tracking.databricks import Workspace

NOTEBOOK_PATH_TAG = "mlflow.databricks.notebookPath"
NOTEBOOK_REVISION_TAG = "mlflow.databricks.notebookRevisionID"
NOTEBOOKS_DIR = "notebooks"          # under a run's artifacts/
NOTEBOOK_MANIFEST = "manifest.json"
PERMISSIONS = "permissions"          # the key in experiment.json's mlflow section and model.json's model
SOURCE = "SOURCE"
PRINCIPALS = ("group_name", "service_principal_name", "user_name")
# The first line of a SOURCE export names the notebook's language by its comment marker; R and
# Python share '#', and the peer imports every notebook as Python.
_LANGUAGE_MARKERS = (("-- Databricks notebook source", "SQL"), ("// Databricks notebook source", "SCALA"))


# -- export ----------------------------------------------------------------------------------------


@dataclass
class WorkspaceExport:
    """The workspace part of one export: what to carry, and what could not be carried.

    The lists are appended to from worker threads (one append each, which needs no lock).
    """

    workspace: Workspace
    options: WorkspaceExportOptions
    failed: list[str] = field(default_factory=list)
    without_notebook: list[str] = field(default_factory=list)

    @property
    def notebook_formats(self) -> list[str]:
        return list(self.options.notebook_formats)

    def export_notebook(self, run: JsonDict, run_dir: Path) -> None:
        """Write the run's notebook into ``<run_dir>/artifacts/notebooks/`` in every format asked."""
        if not self.notebook_formats:
            return
        run_id = str(run["info"]["run_id"])
        tags = tags_of(run.get("data") or {})
        path = tags.get(NOTEBOOK_PATH_TAG)
        if not path:
            self.without_notebook.append(run_id)
            return
        notebook_dir = run_dir / "artifacts" / NOTEBOOKS_DIR
        write_json(notebook_dir / NOTEBOOK_MANIFEST, {NOTEBOOK_PATH_TAG: path,
                                                      NOTEBOOK_REVISION_TAG: tags.get(NOTEBOOK_REVISION_TAG),
                                                      "formats": self.notebook_formats})
        for fmt in self.notebook_formats:
            try:
                content = export_notebook_content(self.workspace, path, fmt)
            except Exception as err:  # one format the workspace refuses does not stop the others
                self.failed.append(f"run {run_id}: notebook '{path}' ({fmt}) not carried: {reason(err)}")
                continue
            (notebook_dir / notebook_file(path, fmt)).write_bytes(content)

    def experiment_permissions(self, experiment_id: str, name: str) -> JsonDict | None:
        """The experiment's permissions in the peer's form; None (and a failure listed) when they cannot be read."""
        if not self.options.export_permissions:
            return None
        api = self.workspace.sdk.experiments
        return self._permissions(f"experiment '{name}'", lambda: (api.get_permission_levels(experiment_id),
                                                                  api.get_permissions(experiment_id)))

    def model_permissions(self, name: str) -> JsonDict | None:
        """The registered model's permissions in the peer's form, found by its workspace id."""
        if not self.options.export_permissions:
            return None

        def read() -> tuple[Any, Any]:
            model_id = registered_model_id(self.workspace, name)
            api = self.workspace.sdk.model_registry
            return api.get_permission_levels(model_id), api.get_permissions(model_id)

        return self._permissions(f"registered model '{name}'", read)

    def _permissions(self, what: str, read: Callable[[], tuple[Any, Any]]) -> JsonDict | None:
        try:
            levels, permissions = read()
        except Exception as err:
            self.failed.append(f"{what}: permissions not carried: {reason(err)}")
            return None
        return {**levels.as_dict(), PERMISSIONS: permissions.as_dict()}

    def not_carried(self) -> list[str]:
        return list(self.failed)


def notebook_file(notebook_path: str, fmt: str) -> str:
    """``<notebook name>.<format in lower case>``, the peer's file name (``train.source``, ``train.dbc``)."""
    return f"{posixpath.basename(notebook_path)}.{fmt.lower()}"


def export_notebook_content(workspace: Workspace, path: str, fmt: str) -> bytes:
    """The notebook at `path` in format `fmt`, as the Workspace API exports it."""
    from databricks.sdk.service.workspace import ExportFormat

    answer = workspace.sdk.workspace.export(path, format=ExportFormat(fmt))
    return base64.b64decode(answer.content or "")


def registered_model_id(workspace: Workspace, name: str) -> str:
    """The workspace id of a registered model (the Permissions API's key), which MLflow's API does not give."""
    model = workspace.sdk.model_registry.get_model(name).registered_model_databricks
    if model is None or not model.id:
        raise LookupError(f"the workspace gives no id for registered model '{name}'")
    return str(model.id)


# -- import ----------------------------------------------------------------------------------------


@dataclass
class WorkspaceImport:
    """The workspace part of one import: what to carry into the destination, and what could not be.

    `notebooks_found` and `permissions_found` count what the export held: none of either means it
    was not exported from a workspace with those options, which the command says in one line
    instead of a failure for each run whose notebook is not in it (`missing`).
    """

    workspace: Workspace
    options: WorkspaceImportOptions
    failed: list[str] = field(default_factory=list)
    without_notebook: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notebooks_found: int = 0
    permissions_found: int = 0
    _imported: set[tuple[str, str]] = field(default_factory=set)  # (path, digest): each notebook once
    _folders: set[str] = field(default_factory=set)

    @property
    def notebook_dir(self) -> str | None:
        return self.options.dst_notebook_dir

    def import_notebook(self, run_dir: Path, run: Mapping[str, Any]) -> None:
        """Import the SOURCE notebook exported with the run (``run`` is run.json's mlflow section)."""
        folder = self.notebook_dir
        if not folder:
            return
        run_id = str((run.get("info") or {}).get("run_id"))
        path = (run.get("tags") or {}).get(NOTEBOOK_PATH_TAG)
        if not path:
            self.without_notebook.append(run_id)
            return
        source = run_dir / "artifacts" / NOTEBOOKS_DIR / notebook_file(path, SOURCE)
        if not source.is_file():
            self.missing.append(f"run {run_id}: notebook '{path}' not carried: the export holds no "
                               f"{NOTEBOOKS_DIR}/{source.name} (export with --notebook-formats {SOURCE})")
            return
        self.notebooks_found += 1
        content = source.read_bytes()
        target = posixpath.join(folder, posixpath.basename(path))
        key = (target, hashlib.sha256(content).hexdigest())
        if key in self._imported:  # the notebook of many runs is imported once
            return
        try:
            self._mkdirs(folder)
            import_notebook_content(self.workspace, target, content)
        except Exception as err:
            self.failed.append(f"run {run_id}: notebook '{path}' not carried to '{target}': {reason(err)}")
            return
        self._imported.add(key)

    def not_carried(self) -> list[str]:
        """The failures: notebooks missing from the export count only when it holds some."""
        return [*self.failed, *(self.missing if self.notebooks_found else [])]

    def _mkdirs(self, folder: str) -> None:
        if folder not in self._folders:
            self.workspace.sdk.workspace.mkdirs(folder)
            self._folders.add(folder)

    def experiment_permissions(self, permissions: Any, experiment_id: str, name: str) -> None:
        """Give the experiment the exported permissions, one access control entry per request."""
        if not self.options.import_permissions or not permissions:
            return
        self.permissions_found += 1
        from databricks.sdk.service.ml import ExperimentAccessControlRequest

        api = self.workspace.sdk.experiments
        self._apply(f"experiment '{name}'", permissions, lambda entry: api.update_permissions(
            experiment_id, access_control_list=[ExperimentAccessControlRequest.from_dict(entry)]))

    def model_permissions(self, permissions: Any, name: str) -> None:
        """Give the registered model the exported permissions, one access control entry per request."""
        if not self.options.import_permissions or not permissions:
            return
        self.permissions_found += 1
        from databricks.sdk.service.ml import RegisteredModelAccessControlRequest

        try:
            model_id = registered_model_id(self.workspace, name)
        except Exception as err:
            self.failed.append(f"registered model '{name}': permissions not carried: {reason(err)}")
            return
        api = self.workspace.sdk.model_registry
        self._apply(f"registered model '{name}'", permissions, lambda entry: api.update_permissions(
            model_id, access_control_list=[RegisteredModelAccessControlRequest.from_dict(entry)]))

    def _apply(self, what: str, permissions: Any, patch: Callable[[JsonDict], Any]) -> None:
        for entry in access_control_entries(permissions):
            try:
                patch(entry)
            except Exception as err:  # an unknown principal fails alone, as with the peer
                self.failed.append(f"{what}: permission {entry['permission_level']} of {_principal(entry)} "
                                   f"not carried: {reason(err)}")


def import_notebook_content(workspace: Workspace, path: str, content: bytes) -> None:
    """Create or overwrite the notebook at `path` from a SOURCE export."""
    from databricks.sdk.service.workspace import ImportFormat, Language

    workspace.sdk.workspace.import_(path, content=base64.b64encode(content).decode("ascii"),
                                    format=ImportFormat.SOURCE, language=Language(language_of(content)),
                                    overwrite=True)


def language_of(source: bytes) -> str:
    """The language a SOURCE export is in, by its header line; PYTHON (the peer's only one) otherwise."""
    first = source.lstrip().split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return next((language for marker, language in _LANGUAGE_MARKERS if first == marker), "PYTHON")


def access_control_entries(permissions: Any) -> list[JsonDict]:
    """The exported access control list as PATCH entries: one per principal and level (the peer's map_acl)."""
    acl = ((permissions or {}).get(PERMISSIONS) or {}).get("access_control_list") or []
    entries = []
    for item in acl:
        kind = next((k for k in PRINCIPALS if item.get(k)), None)
        if kind is None:
            continue
        entries += [{kind: item[kind], "permission_level": p["permission_level"]}
                    for p in item.get("all_permissions") or [] if p.get("permission_level")]
    return entries


def _principal(entry: Mapping[str, Any]) -> str:
    kind = next(k for k in PRINCIPALS if k in entry)
    return f"{kind.removesuffix('_name').replace('_', ' ')} '{entry[kind]}'"


# -- both ------------------------------------------------------------------------------------------


def reported(outcome: Outcome, side: WorkspaceExport | WorkspaceImport | None) -> Outcome:
    """`outcome` with what `side` could not carry among its failures (at best PartiallyFailed), and
    the runs that had no notebook counted in its message."""
    if side is None:
        return outcome
    lines = [line for line in side.not_carried() if line not in outcome.failed]
    message = outcome.message
    if lines:
        message += f"; {len(lines)} workspace objects not carried"
    if side.without_notebook:
        message += (f"; {len(side.without_notebook)} runs without a notebook ({NOTEBOOK_PATH_TAG} unset): "
                    f"{names_of(side.without_notebook)}")
    phase = outcome.phase
    if lines and phase is Phase.SUCCEEDED:
        phase = Phase.PARTIALLY_FAILED
    return outcome.model_copy(update={"phase": phase, "failed": [*outcome.failed, *lines], "message": message})


def reason(err: BaseException) -> str:
    """An API's refusal in one line, without the SDK's configuration dump."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text.split(". Config:")[0][:300]


def names_of(runs: Sequence[str], limit: int = 5) -> str:
    """A few run ids for a message, and how many more."""
    shown = ", ".join(runs[:limit])
    return shown + (f" and {len(runs) - limit} more" if len(runs) > limit else "")
