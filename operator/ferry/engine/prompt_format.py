"""Prompt versions in mlflow-export-import 1.2.x's ``prompt.json``, and back to MLflow's tags.

The peer writes one ``prompt.json`` per prompt version, ``mlflow.prompt`` holding what MLflow's
``PromptVersion`` shows: name, version, template (a string, or a list of chat messages), the
version's user tags, commit message, variables, timestamps, user and URI. It leaves out what a
prompt needs to be rebuilt whole, so we add fields its importer ignores: ``response_format``,
``model_config``, ``aliases`` (the prompt's aliases that point at this version),
``prompt_tags`` and ``prompt_description`` (the prompt's own metadata, the same in every
version's file).

In MLflow, all of a version lives in its model-version tags: the template in
``mlflow.prompt.text`` (chat messages as JSON), its kind in ``_mlflow_prompt_type``, the response
format and model config as JSON (``mlflow/prompt/constants.py``; a test keeps these names equal).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ferry.engine.files import fmt_ts_millis
from ferry.engine.registry_format import aliases_by_version, tags_dict
from ferry.tracking.prompts import IS_PROMPT_TAG

JsonDict = dict[str, Any]

PROMPT_FILE = "prompt.json"
SUMMARY_FILE = "prompts_summary.json"

TEXT_TAG = "mlflow.prompt.text"
TYPE_TAG = "_mlflow_prompt_type"
RESPONSE_FORMAT_TAG = "_mlflow_prompt_response_format"
MODEL_CONFIG_TAG = "_mlflow_prompt_model_config"
TYPE_TEXT, TYPE_CHAT = "text", "chat"
RESERVED_TAGS = frozenset({IS_PROMPT_TAG, TEXT_TAG, TYPE_TAG, RESPONSE_FORMAT_TAG, MODEL_CONFIG_TAG})

# Links to objects of the source server (experiment ids on the prompt, run ids on a version):
# the same ids name other objects, or none, on the destination, so they are not set there as
# they are. Their source value is kept under a ferry.source.* tag instead.
EXPERIMENT_IDS_TAG = "_mlflow_experiment_ids"
RUN_IDS_TAG = "mlflow.prompt.associatedRunIds"
SOURCE_LINKS = {EXPERIMENT_IDS_TAG: "ferry.source.experiment_ids", RUN_IDS_TAG: "ferry.source.associated_run_ids"}

VARIABLE_PATTERN = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*(?:\.[a-zA-Z_][a-zA-Z0-9_]*)*)\s*\}\}")


def version_dir_name(name: str, version: str | int) -> str:
    """The peer's directory of one version inside an ``export-prompts`` directory."""
    return f"{name}_v{version}"


def template_of(tags: Mapping[str, str]) -> str | list[Any]:
    """The template as MLflow's ``PromptVersion.template`` returns it."""
    text = tags.get(TEXT_TAG, "")
    return json.loads(text) if tags.get(TYPE_TAG) == TYPE_CHAT else text


def _json_tag(tags: Mapping[str, str], key: str) -> Any:
    return json.loads(tags[key]) if key in tags else None


def variables(template: str | list[Any]) -> list[str]:
    """The template's ``{{ variables }}``, sorted (the peer writes MLflow's set as a list)."""
    texts = [template] if isinstance(template, str) else [str(m.get("content", "")) for m in template
                                                            if isinstance(m, Mapping)]
    return sorted({match for text in texts for match in VARIABLE_PATTERN.findall(text)})


def user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags without MLflow's reserved prompt tags: what ``PromptVersion.tags`` / ``Prompt.tags`` show."""
    return {k: v for k, v in tags.items() if k not in RESERVED_TAGS}


def version_to_file(model: JsonDict, version: JsonDict) -> JsonDict:
    """One REST prompt version (and its prompt) as the peer's ``mlflow.prompt`` plus our fields."""
    tags = tags_dict(version.get("tags"))
    template = template_of(tags)
    entry: JsonDict = {
        "name": version["name"],
        "version": int(version["version"]),
        "template": template,
        "tags": user_tags(tags),
        "creation_timestamp": version.get("creation_timestamp"),
        "last_updated_timestamp": version.get("last_updated_timestamp"),
        "user_id": version.get("user_id", ""),
        "description": version.get("description") or None,
        "commit_message": version.get("description") or None,
        "variables": variables(template),
        "uri": f"prompts:/{version['name']}/{version['version']}",
        "response_format": _json_tag(tags, RESPONSE_FORMAT_TAG),
        "model_config": _json_tag(tags, MODEL_CONFIG_TAG),
        "aliases": sorted(aliases_by_version(model).get(str(version["version"]), [])),
        "prompt_tags": user_tags(tags_dict(model.get("tags"))),
        "prompt_description": model.get("description") or None,
    }
    for key in ("creation_timestamp", "last_updated_timestamp"):
        entry[f"_{key}"] = fmt_ts_millis(entry[key])
    return entry


def version_tags(entry: JsonDict) -> dict[str, str]:
    """The model-version tags that make `entry` a prompt version again (the prompt tag aside)."""
    template = entry.get("template")
    if isinstance(template, list):
        tags = {TEXT_TAG: json.dumps(template), TYPE_TAG: TYPE_CHAT}
    else:
        tags = {TEXT_TAG: "" if template is None else str(template), TYPE_TAG: TYPE_TEXT}
    if entry.get("response_format") is not None:
        tags[RESPONSE_FORMAT_TAG] = json.dumps(entry["response_format"])
    if entry.get("model_config") is not None:
        tags[MODEL_CONFIG_TAG] = json.dumps(entry["model_config"])
    return {**relinked(user_tags(tags_dict(entry.get("tags")))), **tags}


def relinked(tags: Mapping[str, str]) -> dict[str, str]:
    """`tags` with links to source-server objects moved to their ``ferry.source.*`` names."""
    return {SOURCE_LINKS.get(k, k): v for k, v in tags.items()}


def commit_message(entry: JsonDict) -> str | None:
    return entry.get("commit_message") or entry.get("description") or None


def prompt_metadata(entries: Iterable[JsonDict]) -> tuple[dict[str, str], str | None]:
    """The prompt's tags and description for versions in order, read from our files.

    A file of the peer has neither: then they are what the peer's own import (MLflow's
    ``register_prompt``) makes of the versions: each version's tags set on the prompt in turn,
    and the first commit message as the description.
    """
    ordered = list(entries)
    ours = [e for e in ordered if "prompt_tags" in e]
    if ours:
        last = ours[-1]
        return relinked(tags_dict(last.get("prompt_tags"))), last.get("prompt_description") or None
    tags: dict[str, str] = {}
    for entry in ordered:
        tags.update(relinked(user_tags(tags_dict(entry.get("tags")))))
    return tags, commit_message(ordered[0]) if ordered else None
