"""What a copy must preserve, read back from a tracking server with MLflow's own client.

The Helm test asserts that a destination's snapshot equals its source's, field by field; the demo
prints a short side-by-side summary of the same snapshots, one line per kind of object (runs,
models, and with ``mlflow3=True`` logged models, traces, prompts and evaluation datasets). Runs are keyed by run name and parents
by their run name too, because ids differ between servers. Tags that record provenance
(``ferry.*``) and server-made ones (``mlflow.*`` except the user-facing note) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.genai import datasets as genai_datasets

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


def logged_models_snapshot(client: MlflowClient, experiment: str) -> dict[str, Any] | None:
    """The experiment's logged models by name: what a user reads in the Models tab of MLflow 3."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = {r.info.run_id: r.info.run_name for r in client.search_runs([exp.experiment_id], max_results=10_000)}
    found = {}
    for model in client.search_logged_models([exp.experiment_id]):
        found[model.name] = {
            "status": str(model.status), "model_type": model.model_type, "params": dict(model.params),
            "tags": _user_tags(model.tags), "run": runs.get(model.source_run_id or "", model.source_run_id),
            "metrics": sorted((m.key, m.step, m.value, m.dataset_name) for m in model.metrics or []),
        }
    return found


def traces_snapshot(client: MlflowClient, experiment: str) -> dict[str, Any] | None:
    """The experiment's traces keyed by request time and name (ids may differ), with spans and assessments."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = {r.info.run_id: r.info.run_name for r in client.search_runs([exp.experiment_id], max_results=10_000)}
    models = {m.model_id: m.name for m in client.search_logged_models([exp.experiment_id])}
    found = {}
    for trace in client.search_traces(locations=[exp.experiment_id], max_results=500):
        info = trace.info
        spans = {s.span_id: s for s in trace.data.spans}
        metadata = info.trace_metadata or {}
        found[f"{info.request_time} {info.tags.get('mlflow.traceName', '')}"] = {
            "state": str(info.state), "duration_ms": info.execution_duration,
            "request": info.request_preview, "response": info.response_preview,
            "tags": _user_tags(info.tags),
            "run": runs.get(metadata.get("mlflow.sourceRun", ""), metadata.get("mlflow.sourceRun")),
            "model": models.get(metadata.get("mlflow.modelId", ""), metadata.get("mlflow.modelId")),
            "spans": [(s.name, s.span_type, spans[s.parent_id].name if s.parent_id in spans else None,
                       s.start_time_ns, s.end_time_ns, repr(s.inputs), repr(s.outputs))
                      for s in sorted(trace.data.spans, key=lambda s: (s.start_time_ns, s.name))],
            "assessments": sorted((a.name, repr(getattr(a, "value", None)), a.rationale, a.source.source_type,
                                   a.source.source_id, spans[a.span_id].name if a.span_id in spans else None)
                                  for a in info.assessments or []),
        }
    return found


def prompt_snapshot(client: MlflowClient, name: str) -> dict[str, Any] | None:
    """A prompt's versions (template, message, tags) and aliases, as `mlflow.genai` users see them."""
    prompt = client.get_prompt(name)
    if prompt is None:
        return None
    versions = sorted(client.search_prompt_versions(name, max_results=1000), key=lambda v: int(v.version))
    aliases = client._get_registry_client().get_registered_model(name).aliases  # the public one hides prompts
    return {
        "tags": {k: v for k, v in _user_tags(prompt.tags).items() if k != "_mlflow_experiment_ids"},
        "aliases": {a: int(v) for a, v in sorted(aliases.items())},
        "versions": [{"version": int(v.version), "template": v.template, "commit_message": v.commit_message,
                      "tags": _user_tags(v.tags)} for v in versions],
    }


def dataset_snapshot(client: MlflowClient, name: str) -> dict[str, Any] | None:
    """An evaluation dataset's tags, experiments and records (ids and times are the server's own)."""
    found = [d for d in genai_datasets.search_datasets(filter_string=f"name = '{name}'") if d.name == name]
    if not found:
        return None
    dataset = found[0]
    records = dataset.to_df().to_dict("records")
    return {
        "tags": _user_tags(dataset.tags or {}),
        "experiments": sorted(client.get_experiment(e).name for e in dataset.experiment_ids or []),
        "records": sorted(repr({"inputs": r.get("inputs"), "outputs": r.get("outputs"),
                                "expectations": r.get("expectations"), "tags": _user_tags(r.get("tags") or {})})
                          for r in records),
    }


def snapshot(uri: str, experiments: list[str], models: list[str], *, prompts: Sequence[str] = (),
             datasets: Sequence[str] = (), mlflow3: bool = False) -> dict[str, Any]:
    """Experiments and registered models by name; a missing one is None.

    With `mlflow3`, also the experiments' logged models and traces, and the named prompts and
    evaluation datasets (each under a key of its own, so the MLflow 2 comparison stays as it was).
    """
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = {"experiments": {name: experiment_snapshot(client, name) for name in experiments},
             "models": {name: model_snapshot(client, name) for name in models}}
    if mlflow3:
        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(uri)  # mlflow.genai.datasets reads the global tracking URI
        try:
            found["logged_models"] = {name: logged_models_snapshot(client, name) for name in experiments}
            found["traces"] = {name: traces_snapshot(client, name) for name in experiments}
            found["prompts"] = {name: prompt_snapshot(client, name) for name in prompts}
            found["evaluation_datasets"] = {name: dataset_snapshot(client, name) for name in datasets}
        finally:
            mlflow.set_tracking_uri(previous)
    return found


KINDS = (  # (key in `kind_views`, its name in the comparison), in the order printed
    ("runs", "runs"), ("models", "models"), ("logged_models", "logged models"), ("traces", "traces"),
    ("prompts", "prompts"), ("evaluation_datasets", "evaluation datasets"),
)


def kind_views(snap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A snapshot regrouped by kind: runs of every experiment under "<experiment>/<run>", and so on."""
    runs = {f"{exp}/{run}": view for exp, e in snap["experiments"].items() for run, view in ((e or {}).get("runs")
                                                                                            or {}).items()}
    views = {"runs": runs, "models": snap["models"]}
    for key in ("logged_models", "traces"):
        if key in snap:
            views[key] = {f"{exp}/{name}": view for exp, objs in snap[key].items() for name, view in (objs or {}).items()}
    for key in ("prompts", "evaluation_datasets"):
        if key in snap:
            views[key] = snap[key]
    return views


def summary_rows(source: dict[str, Any], destination: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(kind, source, destination, verdict): one line per kind, for a person to read.

    The verdict is "identical" or what differs: the objects missing in the destination, or the
    first differing field and how many more there are.
    """
    src, dst = kind_views(source), kind_views(destination)
    rows = []
    for key, label in KINDS:
        if key not in src:
            continue
        mine, theirs = src[key], dst.get(key, {})
        rows.append((label, _describe(key, mine), _describe(key, theirs), _kind_verdict(mine, theirs)))
    return rows


def _describe(key: str, objects: dict[str, Any]) -> str:
    present = {k: v for k, v in objects.items() if v is not None}
    if key == "runs":
        points = sum(len(h) for run in present.values() for h in run["metrics"].values())
        nested = sum(1 for run in present.values() if run["parent"])
        return f"{len(present)} ({nested} nested), {points} metric points"
    if key == "models":
        versions = sum(len(m["versions"]) for m in present.values())
        aliases = sum(len(m["aliases"]) for m in present.values())
        return f"{len(present)}, {versions} versions, {aliases} aliases"
    if key == "logged_models":
        return f"{len(present)}, {sum(len(m['metrics']) for m in present.values())} metrics"
    if key == "traces":
        return (f"{len(present)}, {sum(len(t['spans']) for t in present.values())} spans, "
                f"{sum(len(t['assessments']) for t in present.values())} assessments")
    if key == "prompts":
        versions = sum(len(p["versions"]) for p in present.values())
        aliases = sum(len(p["aliases"]) for p in present.values())
        return f"{len(present)}, {versions} versions, {aliases} aliases"
    return f"{len(present)}, {sum(len(d['records']) for d in present.values())} records"


def _kind_verdict(source: dict[str, Any], destination: dict[str, Any]) -> str:
    missing = [name for name, view in source.items() if view is not None and destination.get(name) is None]
    if missing:
        return f"MISSING {len(missing)}: {', '.join(sorted(missing)[:3])}" + (" ..." if len(missing) > 3 else "")
    diffs = differences({k: v for k, v in source.items() if v is not None},
                        {k: v for k, v in destination.items() if k in source})
    if not diffs:
        return "identical"
    return f"DIFFERENT {diffs[0][:120]}" + (f" (+{len(diffs) - 1} more)" if len(diffs) > 1 else "")


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
