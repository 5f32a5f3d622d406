"""Field-by-field views of registered models, for comparing a source with its copy."""

from __future__ import annotations

from typing import Any

from ferry.engine.registry_format import tags_dict, user_tags
from ferry.tracking import ArtifactStore, TrackingClient, tags_of
from ferry.tracking.registry import Registry


def model_view(client: TrackingClient, name: str) -> dict[str, Any]:
    """What must survive a copy: metadata, aliases and every version's fields, in version order."""
    registry = Registry(client)
    model = registry.get_model(name)
    return {
        "description": model.get("description", ""),
        "tags": tags_dict(model.get("tags")),
        "aliases": {a["alias"]: a["version"] for a in model.get("aliases", [])},
        "versions": [version_view(v) for v in registry.versions(name)],
    }


def version_view(version: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": version["version"],
        "description": version.get("description", ""),
        "stage": version.get("current_stage"),
        "status": version.get("status"),
        "tags": user_tags(tags_dict(version.get("tags"))),
    }


def check_links(src: TrackingClient, dst: TrackingClient, src_name: str, dst_name: str) -> None:
    """Each destination version is on a copy of its source version's run, pointing at the copied files."""
    src_versions = {v["version"]: v for v in Registry(src).versions(src_name)}
    for version in Registry(dst).versions(dst_name):
        tags = tags_dict(version["tags"])
        original = src_versions[tags["ferry.source.version"]]
        run = dst.get_run(version["run_id"])
        assert tags_of(run["data"])["ferry.source.run_id"] == original["run_id"]
        assert version["source"] == f"{run['info']['artifact_uri']}/model"
        copied = ArtifactStore(dst, version["source"]).read_bytes("weights.bin")
        assert copied == ArtifactStore(src, original["source"]).read_bytes("weights.bin")
