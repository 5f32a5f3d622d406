"""Seed prompts through MLflow's own client, and view them through it, for the prompt tests.

The view reads what a user of ``mlflow.genai`` sees (``load_prompt``, ``search_prompt_versions``,
``get_prompt``), so a comparison does not trust our REST reading of either server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow import MlflowClient
from pydantic import BaseModel


class Answer(BaseModel):
    answer: str
    confidence: float


ALIASES = {"production": 11, "staging": 2, "ten": 10}
CHAT_ALIASES = {"newest": 2}


@dataclass
class SeededPrompts:
    uri: str
    text: str  # eleven versions, text and chat, with every optional field on some
    chat: str  # two chat versions


def _template(version: int) -> str | list[dict[str, str]]:
    if version % 3 == 0:
        return [{"role": "system", "content": f"You are assistant v{version}, {{{{style}}}}."},
                {"role": "user", "content": "{{question}}"}]
    return f"v{version}: answer {{{{question}}}} in a {{{{style}}}} way."


def seed_prompts(uri: str, prefix: str) -> SeededPrompts:
    """Two prompts: versions 1..11 so that 10 must follow 9, not 1; aliases; prompt-level tags."""
    mlflow.set_tracking_uri(uri)
    text, chat = f"{prefix}-qa", f"{prefix}-chat"
    for version in range(1, 12):
        mlflow.genai.register_prompt(
            name=text, template=_template(version), commit_message=f"change {version}",
            tags={"step": str(version), **({"reviewed": "yes"} if version % 2 else {})},
            response_format=Answer if version % 4 == 0 else None,
            model_config={"model_name": "gpt-4o", "temperature": version / 10} if version % 5 == 0 else None)
    for version in (1, 2):
        mlflow.genai.register_prompt(
            name=chat, template=[{"role": "user", "content": f"chat {version}: {{{{topic}}}}"}],
            commit_message=None if version == 1 else "second",
            response_format={"type": "object", "properties": {"n": {"type": "integer"}}} if version == 2 else None)
    for alias, version in ALIASES.items():
        mlflow.genai.set_prompt_alias(text, alias, version)
    for alias, version in CHAT_ALIASES.items():
        mlflow.genai.set_prompt_alias(chat, alias, version)
    client = MlflowClient(tracking_uri=uri)
    client.set_prompt_tag(text, "owner", "search-team")
    client.set_prompt_tag(text, "step", "overridden at the prompt level")
    return SeededPrompts(uri, text, chat)


def _user(tags: dict[str, str]) -> dict[str, str]:
    """Tags without ours and without the server-local experiment link MLflow adds."""
    return {k: v for k, v in tags.items() if not k.startswith("ferry.") and k != "_mlflow_experiment_ids"}


def prompt_view(uri: str, name: str) -> dict[str, Any]:
    """Everything a prompt must keep across servers, versions in order, as MLflow's client reads it."""
    client = MlflowClient(tracking_uri=uri)
    prompt = client.get_prompt(name)
    assert prompt is not None, f"no prompt {name} at {uri}"
    versions = sorted(client.search_prompt_versions(name, max_results=1000),
                      key=lambda v: int(v.version))
    model = client._get_registry_client().get_registered_model(name)  # the public one hides prompts
    return {
        "description": prompt.description,
        "tags": _user(prompt.tags),
        "aliases": {a: int(v) for a, v in model.aliases.items()},
        "versions": [version_view(v) for v in versions],
    }


def version_view(version: Any) -> dict[str, Any]:
    return {
        "version": int(version.version),
        "template": version.template,
        "is_text": version.is_text_prompt,
        "response_format": version.response_format,
        "model_config": version.model_config,
        "commit_message": version.commit_message,
        "tags": _user(version.tags),
        "variables": sorted(version.variables),
    }
