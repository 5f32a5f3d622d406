"""What to export and how to import: the engine's options, which are also the resources' options.

One declaration serves three readers: the CLIs build these models from their flags (snake_case
names, the flags' defaults), the resources embed them (camelCase on the wire, so
``spec.options.exportDeletedRuns`` is ``--export-deleted-runs``), and the Job runner hands the
validated spec's models to the engine unchanged. Nothing here knows Kubernetes or MLflow.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ferry.wire import WireModel

Stage = Literal["None", "Staging", "Production", "Archived"]
ALL = ("*", "all")


class ModelVersionRef(WireModel):
    """One version of a registered model."""

    model: str = Field(min_length=1, description="Registered model name.")
    version: str = Field(pattern=r"^[1-9][0-9]*$", description="Version number, e.g. '3'.")


class Selection(WireModel):
    """What to export; '*' (or 'all') in a list of names means all of that kind."""

    experiments: list[str] = Field(
        default_factory=list,
        description="Experiments by name or id, with their runs; '*' (or 'all') in the list means every experiment.",
    )
    run_ids: list[str] = Field(
        default_factory=list,
        description="Single runs by id, written under runs/; importing them needs target.experimentName.",
    )
    models: list[str] = Field(
        default_factory=list,
        description="Registered models by name, with their versions and the versions' runs; '*' (or 'all') alone "
        "means every model, a single 'prefix*' the models whose name starts with prefix.",
    )
    model_versions: list[ModelVersionRef] = Field(
        default_factory=list, description="Single model versions, each with its run."
    )
    prompts: list[str] = Field(
        default_factory=list,
        description="MLflow 3 prompts by name, each with every version, its tags and aliases; '*' (or 'all') "
        "means every prompt. Written under prompts/.",
    )
    evaluation_datasets: list[str] = Field(
        default_factory=list,
        description="MLflow 3 evaluation datasets by name, each with every record; '*' (or 'all') means every "
        "dataset. Written under evaluation_datasets/.",
    )
    logged_models: list[str] = Field(
        default_factory=list,
        description="MLflow 3 logged models by id (m-...), each with its params, metrics, tags and files, whether "
        "or not a registered version points at it; '*' (or 'all') means every logged model of every experiment. "
        "Written under logged_models/ (export-logged-models' layout); an import puts each into the experiment of "
        "its source's name, on the imported run that produced it. An experiment's export carries its own.",
    )
    traces: list[str] = Field(
        default_factory=list,
        description="MLflow 3 traces by id (tr-...), each with its spans and assessments; '*' (or 'all') means "
        "every trace of every experiment. Written under traces/ (export-traces' layout); an import puts each into "
        "the experiment of its source's name. An experiment's export carries its own.",
    )
    webhooks: list[str] = Field(
        default_factory=list,
        description="Model registry webhooks (MLflow 3.3 and later) by name; '*' (or 'all') means every webhook. "
        "Written under webhooks/; their signing secrets cannot be read from MLflow (an import takes them from "
        "webhookSecrets).",
    )

    @property
    def empty(self) -> bool:
        return not (self.experiments or self.run_ids or self.models or self.model_versions or self.prompts
                    or self.evaluation_datasets or self.logged_models or self.traces or self.webhooks)


NotebookFormat = Literal["SOURCE", "HTML", "JUPYTER", "DBC"]


class WorkspaceExportOptions(WireModel):
    """What an export carries from a Databricks workspace besides MLflow's objects: the commands' flags.

    An MlflowExport's options have them too; on any other server validation refuses them.
    """

    export_permissions: bool = Field(
        default=False, description="Databricks workspaces: export the experiments' and registered models' "
        "permissions (Permissions API)."
    )
    notebook_formats: list[NotebookFormat] = Field(
        default_factory=list,
        description="Databricks workspaces: formats to export each run's notebook in (mlflow.databricks.notebookPath), "
        "under the run's artifacts/notebooks/. Empty: no notebooks.",
    )

    @property
    def wanted(self) -> bool:
        return bool(self.notebook_formats or self.export_permissions)


class WorkspaceImportOptions(WireModel):
    """What an import carries into a Databricks workspace besides MLflow's objects: the commands' flags."""

    import_permissions: bool = Field(
        default=False, description="Databricks workspaces: give the imported experiments and models the exported "
        "permissions, one access control entry at a time.",
    )
    dst_notebook_dir: str | None = Field(
        default=None, pattern=r"^/", description="Databricks workspaces: the workspace folder to import each run's "
        "SOURCE notebook into.",
    )

    @property
    def wanted(self) -> bool:
        return bool(self.import_permissions or self.dst_notebook_dir)


class ExportOptions(WorkspaceExportOptions):
    """How to export; each field is the export commands' flag of the same name."""

    run_start_time: str | None = Field(
        default=None,
        description="Experiments: only runs started at or after this time (ISO 8601, e.g. 2024-01-31 or "
        "2024-01-31T12:00:00, UTC unless an offset is given; or epoch milliseconds). Unset: all runs.",
    )
    export_deleted_runs: bool = Field(
        default=False, description="Also export deleted runs (an import keeps them deleted)."
    )
    check_nested_runs: bool = Field(
        default=False, description="Also export the nested (child) runs of the selected runs."
    )
    stages: list[Stage] = Field(
        default_factory=list,
        description="Models: only the versions in these stages (excludes 'versions'). Unset: every version.",
    )
    versions: list[str] = Field(
        default_factory=list,
        description="Models: only these version numbers, of every listed model (excludes 'stages').",
    )
    export_latest_versions: bool = Field(
        default=False, description="Models: only the latest version of each stage instead of every version."
    )
    export_version_model: bool = Field(
        default=False, description="Models and model versions: also download each version's model files (MLmodel)."
    )
    include_artifacts: bool = Field(
        default=True,
        description="Experiments and single runs: export the runs' artifacts; off exports run metadata only (no "
        "command has this flag).",
    )
    include_logged_models: bool = Field(
        default=True,
        description="Experiments: also export their MLflow 3 logged models, registered or not, with their files "
        "(under <experiment>/logged_models/).",
    )
    include_traces: bool = Field(
        default=True,
        description="Experiments: also export their traces with spans and assessments (under <experiment>/traces/).",
    )
    traces_since: str | None = Field(
        default=None,
        description="Experiments: only traces whose request started at or after this time (ISO 8601 or epoch "
        "milliseconds). Unset: every trace.",
    )


class ImportOptions(WorkspaceImportOptions):
    """How to import; each field is the import commands' flag of the same name."""

    import_source_tags: bool = Field(
        default=False, description="Record the source objects' fields as 'mlflow_exim.*' tags on the imported ones."
    )
    use_src_user_id: bool = Field(
        default=False,
        description="Set each imported run's user to the source run's user. Off: the user the Job runs as.",
    )
    delete_model: bool = Field(
        default=False,
        description="Registered models: delete an existing destination model, with its versions, before "
        "importing into it.",
    )
    create_model: bool = Field(
        default=True,
        description="Single model versions: create the destination model when it does not exist; off, such a "
        "version fails.",
    )
    import_stages_and_aliases: bool = Field(
        default=True, description="Single model versions: give them their source stage and aliases."
    )
    import_metadata: bool = Field(
        default=True,
        description="Single model versions: give the destination experiment and (with createModel) model the "
        "source's tags, and the model the source's description.",
    )
    mlmodel_fix: bool = Field(
        default=True, description="Point the run_id in the imported runs' MLmodel files at the new run."
    )
    await_creation_for: int | None = Field(
        default=None,
        ge=0,
        le=3600,
        description="Seconds to wait for each created model version to become READY. Unset or 0: do not wait.",
    )


class Renames(WireModel):
    """Renames by name prefix: a source name starting with a key gets that prefix replaced by its value."""

    experiments: dict[str, str] = Field(
        default_factory=dict,
        description="Experiment renames, source name (prefix) -> destination name; the first matching key wins.",
    )
    models: dict[str, str] = Field(
        default_factory=dict,
        description="Registered model renames, source name (prefix) -> destination name; the first matching key "
        "wins. Ignored where modelName is set.",
    )


class ImportTarget(WireModel):
    """Where in the destination the imported objects go; unset keeps the source names."""

    experiment_name: str | None = Field(
        default=None,
        min_length=1,
        description="Experiment to import into: for an export of one experiment (instead of its name), of single "
        "runs (required), or of model versions' runs. An export of several experiments keeps their names "
        "(see renames).",
    )
    model_name: str | None = Field(
        default=None,
        min_length=1,
        description="Name to register the imported model or model versions under instead of the source name; "
        "meant for an export of one model.",
    )
    renames: Renames | None = Field(
        default=None, description="Renames of experiments and models by name prefix. Unset: source names."
    )


class KiroframeOptions(WireModel):
    """What a Kiroframe sync sends; each field is kiroframe-importer's flag of the same name."""

    export_models: bool = Field(default=True, description="Send the registered models (and their latest versions) too.")
    include_schema_profile: bool = Field(
        default=False, description="Send dataset schemas and profiles (the command's default is on: they are large)."
    )
    download_artifacts: bool = Field(default=False, description="Send the runs' artifact files too.")
    experiment_page_size: int = Field(
        default=200, ge=1, le=1000, description="Experiments read from MLflow per search request."
    )
    run_page_size: int = Field(default=1000, ge=1, le=10000, description="Runs read from MLflow per search request.")
    incremental: bool = Field(
        default=True,
        description="Only runs that started or ended since the previous sync (status.watermark), plus running "
        "ones; off sends everything every time (the command's default is a full sync).",
    )


class MirrorObjects(WireModel):
    """What a mirror keeps in step; '*' (or 'all') in a list means every object of that kind."""

    experiments: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Experiments by name, with their runs (and, per options, their artifacts, traces and logged "
        "models); '*' (or 'all') means every experiment. Default: every experiment.",
    )
    models: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Registered models by name, with their versions, stages, aliases, tags and descriptions; "
        "'*' (or 'all') means every model. A version's run is the mirrored copy of its source run. "
        "Default: every model.",
    )
    prompts: list[str] = Field(
        default_factory=lambda: ["*"],
        description="MLflow 3 prompts by name, with their versions, tags and aliases; '*' (or 'all') means every "
        "prompt. Default: every prompt.",
    )


class MirrorOptions(WireModel):
    """How a mirror syncs; each field is `ferry mirror`'s flag of the same name."""

    include_artifacts: bool = Field(
        default=True, description="Copy the runs' artifact files too (new and changed files of changed runs)."
    )
    include_traces: bool = Field(default=True, description="Copy the mirrored experiments' traces.")
    include_logged_models: bool = Field(
        default=True, description="Copy the mirrored experiments' MLflow 3 logged models."
    )
    delete_missing: bool = Field(
        default=False,
        description="Delete at the destination what was deleted at the source: runs and experiments are "
        "soft-deleted (MLflow's deleted view keeps them), registered model versions deleted. Off: the destination "
        "keeps everything it ever received.",
    )
    full_compare_every: str = Field(
        default="24h",
        pattern=r"^(0|([0-9]+(s|m|h|d))+)$",
        description="How often a sync compares every mirrored run with its copy instead of only what changed "
        "since the last sync, e.g. 24h or 30m; 0 never. Every sync carries runs that started or ended since the "
        "previous one (less 5 minutes for clients' clocks) or are running (params, tags, metric points, status, "
        "artifacts, dataset inputs), experiments, registered models (versions, stages, aliases, tags, descriptions), "
        "prompts, logged models updated and traces started since. Only the full comparison carries the edits MLflow "
        "keeps no time for: a tag or param added to a run that had already ended, a metric step backfilled below "
        "the latest, a restored run, an assessment added to an older trace, a version's tag.",
    )
