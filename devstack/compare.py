"""What a copy must preserve, read back from a tracking server with MLflow's own client.

The Helm test asserts that a destination's snapshot equals its source's, field by field; the demo
prints a short side-by-side summary of the same snapshots. Runs are keyed by run name and parents
by their run name too, because ids differ between servers. Tags that record provenance
(``ferry.*``) and server-made ones (``mlflow.*`` except the user-facing note) are left out.
"""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient

# mlflow.user is the importing user unless the import asks for the source's (as in mlflow-export-import).
KEPT_SYSTEM_TAGS = {"mlflow.note.content", "mlflow.source.name", "mlflow.source.type"}


def _user_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith(("mlflow.", "ferry.")) or k in KEPT_SYSTEM_TAGS}


def experiment_snapshot(client: MlflowClient, name: str) -> dict[str, Any] | None:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], max_results=10_000)
    names = {run.info.run_id: run.info.run_name for run in runs}
    snapshot: dict[str, Any] = {"tags": _user_tags(experiment.tags), "runs": {}}
    for run in runs:
        parent = run.data.tags.get("mlflow.parentRunId")
        snapshot["runs"][run.info.run_name] = {
            "status": run.info.status,
            "start_time": run.info.start_time,
            "end_time": run.info.end_time,
            "params": run.data.params,
            "tags": _user_tags(run.data.tags),
            "parent": names.get(parent, parent),
            "metrics": {key: [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run.info.run_id, key)]
                        for key in sorted(run.data.metrics)},
            "datasets": sorted(d.dataset.name for d in (run.inputs.dataset_inputs if run.inputs else [])),
        }
    return snapshot


def model_snapshot(client: MlflowClient, name: str) -> dict[str, Any] | None:
    models = client.search_registered_models(f"name = '{name}'")
    if not models:
        return None
    model = client.get_registered_model(name)
    versions = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
    return {
        "description": model.description,
        "tags": _user_tags(model.tags),
        "aliases": dict(sorted(model.aliases.items())),
        "versions": [{"version": v.version, "stage": v.current_stage, "description": v.description,
                      "tags": _user_tags(v.tags), "run": client.get_run(v.run_id).info.run_name if v.run_id else None}
                     for v in versions],
    }


def snapshot(uri: str, experiments: list[str], models: list[str]) -> dict[str, Any]:
    """Experiments and registered models by name; a missing one is None."""
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return {"experiments": {name: experiment_snapshot(client, name) for name in experiments},
            "models": {name: model_snapshot(client, name) for name in models}}


def summary_rows(source: dict[str, Any], destination: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(object, source, destination, verdict) per experiment and model, for a person to read."""
    rows = []
    for name, src in source["experiments"].items():
        dst = destination["experiments"].get(name)
        rows.append((f"experiment {name}", _describe_experiment(src), _describe_experiment(dst), _verdict(src, dst)))
    for name, src in source["models"].items():
        dst = destination["models"].get(name)
        rows.append((f"model {name}", _describe_model(src), _describe_model(dst), _verdict(src, dst)))
    return rows


def _describe_experiment(snap: dict[str, Any] | None) -> str:
    if snap is None:
        return "-"
    runs = snap["runs"].values()
    points = sum(len(history) for run in runs for history in run["metrics"].values())
    nested = sum(1 for run in runs if run["parent"])
    return f"{len(snap['runs'])} runs ({nested} nested), {points} metric points"


def _describe_model(snap: dict[str, Any] | None) -> str:
    if snap is None:
        return "-"
    aliases = ",".join(f"{a}->v{v}" for a, v in snap["aliases"].items())
    return f"{len(snap['versions'])} versions, aliases {aliases or 'none'}"


def _verdict(src: Any, dst: Any) -> str:
    if dst is None:
        return "missing"
    return "identical" if src == dst else "DIFFERENT"


def format_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in (header, *rows))


def differences(source: Any, destination: Any, path: str = "") -> list[str]:
    """Paths where two snapshots differ, with both values: what a failed comparison should say."""
    if isinstance(source, dict) and isinstance(destination, dict):
        return [line for key in sorted(set(source) | set(destination), key=str)
                for line in differences(source.get(key), destination.get(key), f"{path}/{key}")]
    if source != destination:
        return [f"{path}: {source!r} != {destination!r}"]
    return []
