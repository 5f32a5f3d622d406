"""Every option of the resources is a command's flag of the same name (kebab-case) with the same default.

The README promises that the resources' options are the flags in camelCase
(``spec.options.exportDeletedRuns`` is ``--export-deleted-runs``). For each field of
`ExportOptions`, `ImportOptions`, `ImportTarget`, `KiroframeOptions` and `MirrorOptions` this finds the commands
with the flag ``--<field in kebab-case>`` and compares the default the command runs with to the
field's default. What deliberately differs is listed below with the reason, and checked too, so
that neither the options nor the tables drift.
"""

from __future__ import annotations

from typing import Any

import click
import pytest
from pydantic import BaseModel

from ferry.cli import all as server
from ferry.cli import copy, experiments, kiroframe, mirror, model_versions, models, runs
from ferry.cli.options import split_list
from ferry.kiroframe.settings import KiroframeSettings
from ferry.options import ExportOptions, ImportOptions, ImportTarget, KiroframeOptions, MirrorOptions

MLFLOW_COMMANDS: tuple[click.Command, ...] = (
    runs.export_run, runs.import_run, copy.copy_run,
    experiments.export_experiment, experiments.import_experiment,
    experiments.export_experiments, experiments.import_experiments,
    models.export_model, models.import_model, models.export_models, models.import_models,
    model_versions.export_model_version, model_versions.import_model_version, model_versions.copy_model_version,
    server.export_all, server.import_all,
)  # fmt: skip
OPTION_MODELS: dict[type[BaseModel], tuple[click.Command, ...]] = {
    ExportOptions: MLFLOW_COMMANDS,
    ImportOptions: MLFLOW_COMMANDS,
    ImportTarget: MLFLOW_COMMANDS,
    KiroframeOptions: (kiroframe.main,),
    MirrorOptions: (mirror.mirror,),
}

# Fields no command has a flag for, and why.
NO_FLAG: dict[tuple[type[BaseModel], str], str] = {
    (ExportOptions, "include_artifacts"): "resource-only: every command exports the runs' artifacts, as "
    "mlflow-export-import does; a resource may export run metadata only",
}

# Fields the commands spell differently: the (command, flag) pairs that stand for them, and why.
OTHER_NAMES: dict[tuple[type[BaseModel], str], tuple[tuple[tuple[click.Command, str], ...], str]] = {
    (ImportTarget, "model_name"): (
        ((models.import_model, "--model"), (model_versions.import_model_version, "--model")),
        "the import commands keep mlflow-export-import's --model for the destination model",
    ),
    (ImportTarget, "renames"): (
        ((experiments.import_experiments, "--experiment-rename-file"),
         (models.import_models, "--experiment-rename-file"), (models.import_models, "--model-rename-file")),
        "the bulk import commands read renames from mlflow-export-import's 'old,new' files",
    ),
}

# Fields whose commands' default deliberately differs from the resource's: the commands' default, and why.
OTHER_DEFAULT: dict[tuple[type[BaseModel], str], tuple[Any, str]] = {
    (ImportOptions, "create_model"): (
        False, "import-model-version keeps mlflow-export-import's default; a resource creates the destination "
        "model, which an import into a fresh server needs",
    ),
    (ImportOptions, "import_stages_and_aliases"): (
        False, "import-model-version keeps mlflow-export-import's default; a resource imports a version whole",
    ),
    (ImportOptions, "import_metadata"): (
        False, "import-model-version keeps mlflow-export-import's default; a resource imports a version whole",
    ),
    (KiroframeOptions, "include_schema_profile"): (
        True, "kiroframe-importer sends dataset schemas and profiles by default; a scheduled sync leaves the "
        "large records out unless asked",
    ),
    (KiroframeOptions, "incremental"): (
        False, "a resource syncs incrementally by default (status.watermark); the command, like "
        "kiroframe-importer, does a full sync unless given --incremental",
    ),
}

EXPLAINED = {**NO_FLAG, **OTHER_NAMES, **OTHER_DEFAULT}
FIELDS = [(model, name) for model in OPTION_MODELS for name in model.model_fields]


def flag_of(name: str) -> str:
    return "--" + name.replace("_", "-")


def field_id(case: tuple[type[BaseModel], str]) -> str:
    return f"{case[0].__name__}.{case[1]}"


def field_default(model: type[BaseModel], name: str) -> Any:
    return model.model_fields[name].get_default(call_default_factory=True)


def command_default(command: click.Command, flag: str, model: type[BaseModel], name: str) -> Any:
    """The value `command` runs with when `flag` is not given, in the field's terms."""
    [param] = [p for p in command.params if flag in p.opts or flag in p.secondary_opts]
    value = command.make_context(command.name, [], resilient_parsing=True).params[param.name]
    if command is kiroframe.main and value is None:  # --x/--no-x unset: the environment or the settings' default
        return KiroframeSettings.model_fields[name].default
    if isinstance(field_default(model, name), list):  # a comma-separated list; unset is empty
        return split_list(value)
    return value


def with_flag(model: type[BaseModel], flag: str) -> list[click.Command]:
    return [c for c in OPTION_MODELS[model] if any(flag in p.opts or flag in p.secondary_opts for p in c.params)]


@pytest.mark.parametrize("case", [f for f in FIELDS if f not in EXPLAINED], ids=field_id)
def test_an_option_is_a_flag_of_the_same_name_and_default(case: tuple[type[BaseModel], str]) -> None:
    model, name = case
    commands = with_flag(model, flag_of(name))
    assert commands, f"no command has {flag_of(name)}: add the flag or explain {field_id(case)} in a table"
    defaults = {c.name: command_default(c, flag_of(name), model, name) for c in commands}
    assert defaults == dict.fromkeys(defaults, field_default(model, name)), (
        f"{flag_of(name)} defaults differ from {field_id(case)} = {field_default(model, name)!r}"
    )


@pytest.mark.parametrize("case", list(NO_FLAG), ids=field_id)
def test_options_without_a_flag_have_none(case: tuple[type[BaseModel], str]) -> None:
    model, name = case
    assert with_flag(model, flag_of(name)) == [], f"{flag_of(name)} exists: {field_id(case)} needs no reason"


@pytest.mark.parametrize("case", list(OTHER_NAMES), ids=field_id)
def test_options_under_another_name_have_that_flag_and_default(case: tuple[type[BaseModel], str]) -> None:
    model, name = case
    assert with_flag(model, flag_of(name)) == [], f"{flag_of(name)} exists: {field_id(case)} needs no reason"
    pairs, _ = OTHER_NAMES[case]
    for command, flag in pairs:
        assert command_default(command, flag, model, name) == field_default(model, name), (command.name, flag)


@pytest.mark.parametrize("case", list(OTHER_DEFAULT), ids=field_id)
def test_deliberately_different_defaults_are_what_the_table_says(case: tuple[type[BaseModel], str]) -> None:
    model, name = case
    expected, _ = OTHER_DEFAULT[case]
    assert expected != field_default(model, name), f"{field_id(case)}: the defaults agree now; drop it from the table"
    commands = with_flag(model, flag_of(name))
    assert commands, f"no command has {flag_of(name)}"
    assert {c.name: command_default(c, flag_of(name), model, name) for c in commands} == dict.fromkeys(
        (c.name for c in commands), expected
    )


def test_the_tables_name_real_fields_with_a_reason() -> None:
    for (model, name), entry in EXPLAINED.items():
        assert name in model.model_fields, f"{model.__name__} has no field {name}"
        reason = entry if isinstance(entry, str) else entry[1]
        assert reason.strip(), f"{model.__name__}.{name} needs a reason"
