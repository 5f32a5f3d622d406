"""Seed a real MLflow server with a deterministic workload, fast.

The benchmarks and the demo need servers full of realistic data: experiments with many runs,
metric histories, params, tags, dataset inputs, small artifacts (an MLmodel among them), nested
runs, and registered models with versions, stages and aliases. Every value and timestamp is a
function of the workload's shape and the object's position, so two servers seeded with the same
workload hold the same data (only server-made ids differ) and results compare across machines.

Seeding goes through MLflow's REST API with `runs/log-batch` packed to MLflow's limits and a few
threads, one run group per task. That leaves the server's inserts as the bound (about 1 500
metric points a second on two busy cores), where `mlflow.log_metric` would pay a request per
point.

From a shell::

    python -m devstack.workload --uri http://127.0.0.1:5000 --workload small
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace

from ferry.tracking import ArtifactStore, JsonDict, TrackingClient
from ferry.tracking.registry import Registry

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z in ms; every seeded time is T0 + an offset
GROUP = 10              # runs per group: the first is a parent, the next `children` are nested in it
STATUSES = ("FINISHED", "FINISHED", "FINISHED", "FAILED", "FINISHED", "KILLED", "FINISHED")


@dataclass(frozen=True)
class Workload:
    """The shape of the data: E experiments x R runs x M metrics x S steps, and the rest."""

    name: str
    experiments: int
    runs: int                      # per experiment
    metrics: int                   # metric keys per run
    steps: int                     # points per metric key
    params: int = 10
    tags: int = 5                  # user tags per run (MLflow's system tags come on top)
    children: int = 2              # nested runs per group of GROUP runs
    datasets_every: int = 1        # every n-th run logs a dataset input (0: none)
    artifacts_every: int = 1       # every n-th run logs artifacts, an MLmodel among them (0: none)
    models: int = 1                # registered models
    versions: int = 3              # versions per registered model
    experiment_names: tuple[str, ...] = ()   # default: "<name>-<i>"
    model_names: tuple[str, ...] = ()        # default: "<name>-model-<i>"

    def experiment_name(self, index: int, prefix: str = "") -> str:
        base = self.experiment_names[index] if index < len(self.experiment_names) else f"{self.name}-{index}"
        return f"{prefix}{base}"

    def model_name(self, index: int, prefix: str = "") -> str:
        base = self.model_names[index] if index < len(self.model_names) else f"{self.name}-model-{index}"
        return f"{prefix}{base}"

    @property
    def total_runs(self) -> int:
        return self.experiments * self.runs

    @property
    def metric_points(self) -> int:
        return self.total_runs * self.metrics * self.steps


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("small", experiments=1, runs=50, metrics=5, steps=100),
    Workload("medium", experiments=2, runs=200, metrics=10, steps=200, params=20, models=2),
    Workload("wide", experiments=1, runs=2000, metrics=3, steps=10, params=5, datasets_every=10,
             artifacts_every=20),
    # Memory: export of `large` must stay within 1.2x the peak RSS of `large-1k`, which has the
    # same per-run shape but a tenth of the runs.
    Workload("large", experiments=1, runs=10_000, metrics=2, steps=5, params=5, tags=2, datasets_every=50,
             artifacts_every=500),
    Workload("large-1k", experiments=1, runs=1000, metrics=2, steps=5, params=5, tags=2, datasets_every=50,
             artifacts_every=500),
    Workload("demo", experiments=3, runs=12, metrics=3, steps=50, params=6, models=1, versions=3,
             experiment_names=("churn-prediction", "fraud-detection", "demand-forecast"),
             model_names=("churn-classifier",)),
    # For tests: every kind of object, in seconds.
    Workload("tiny", experiments=1, runs=12, metrics=2, steps=5, params=3, tags=2, versions=2),
)}


@dataclass
class Seeded:
    """What a seeding created, by name, for the tools that read it back."""

    uri: str
    workload: str
    experiments: dict[str, str] = field(default_factory=dict)   # name -> id
    runs: int = 0
    metric_points: int = 0
    models: dict[str, int] = field(default_factory=dict)        # name -> versions
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


# -- deterministic content --------------------------------------------------------------------------


def _metric_value(key_index: int, run_index: int, step: int) -> float:
    """A loss-like curve that differs per run and key; exact in JSON (rounded to 6 places)."""
    return round((1.0 + key_index) / (1.0 + step) + 0.001 * (run_index % 97) + 0.0001 * key_index, 6)


def run_offset(exp_index: int, run_index: int) -> int:
    return exp_index * 100_000_000 + run_index * 10_000


def run_payload(w: Workload, exp_index: int, run_index: int) -> tuple[list[JsonDict], list[JsonDict], list[JsonDict]]:
    """(metrics, params, tags) of one run, as log-batch wants them."""
    start = T0 + run_offset(exp_index, run_index)
    metrics = [
        {"key": f"metric_{k}", "value": _metric_value(k, run_index, s), "timestamp": start + 1_000 + s, "step": s}
        for k in range(w.metrics) for s in range(w.steps)
    ]
    params = [{"key": f"param_{p}", "value": f"{(run_index * 31 + p * 7) % 1000 / 100:.2f}"} for p in range(w.params)]
    tags = [{"key": f"tag_{t}", "value": f"value-{(run_index + t) % 5}"} for t in range(w.tags)]
    return metrics, params, tags


def dataset_input(exp_index: int, run_index: int) -> JsonDict:
    """One of three splits of a dataset shared by the runs of one group.

    Runs of different groups never share a dataset: groups are seeded concurrently, and MLflow
    fails one of two concurrent first uses of the same dataset on its unique constraint.
    """
    split = ("train", "eval", "test")[run_index % 3]
    group = run_index // GROUP
    return {
        "dataset": {
            "name": f"dataset-{exp_index}-{group}-{split}",
            "digest": f"{exp_index:04x}{group:06x}{run_index % 3:02x}",
            "source_type": "local",
            "source": json.dumps({"uri": f"/data/exp{exp_index}/{split}.parquet"}),
            "schema": json.dumps({"mlflow_colspec": [{"type": "double", "name": "x"},
                                                     {"type": "long", "name": "y"}]}),
            "profile": json.dumps({"num_rows": 1000 + run_index}),
        },
        "tags": [{"key": "mlflow.data.context", "value": "training" if split == "train" else "evaluation"}],
    }


def artifact_files(run_id: str, run_index: int) -> dict[str, bytes]:
    """A small model directory (MLmodel, weights, requirements) and a plot-like text file."""
    mlmodel = (
        "artifact_path: model\n"
        "flavors:\n"
        "  python_function:\n"
        "    loader_module: mlflow.sklearn\n"
        "    python_version: 3.11.7\n"
        "  sklearn:\n"
        "    pickled_model: model.pkl\n"
        "    sklearn_version: 1.5.0\n"
        f"run_id: {run_id}\n"
        "utc_time_created: '2024-01-01 00:00:00.000000'\n"
    )
    return {
        "model/MLmodel": mlmodel.encode(),
        "model/model.pkl": bytes((run_index + i) % 256 for i in range(2048)),
        "model/requirements.txt": b"mlflow\nscikit-learn==1.5.0\n",
        "plots/summary.json": json.dumps({"run": run_index, "auc": 0.5 + (run_index % 50) / 100}).encode(),
    }


# -- seeding ----------------------------------------------------------------------------------------


@dataclass
class _Group:
    exp_index: int
    exp_id: str
    first: int
    last: int  # exclusive


class Seeder:
    """Seeds one server; thread-safe through `TrackingClient`'s per-thread sessions."""

    def __init__(self, uri: str, workload: Workload, *, prefix: str = "", threads: int = 4) -> None:
        self.client = TrackingClient(uri)
        self.workload = workload
        self.prefix = prefix
        self.threads = threads
        self.model_runs: list[tuple[str, str]] = []   # (run_id, artifact_uri) of runs with an MLmodel

    def seed(self) -> Seeded:
        began = time.monotonic()
        w = self.workload
        result = Seeded(uri=self.client.uri, workload=w.name)
        groups: list[_Group] = []
        for e in range(w.experiments):
            name = w.experiment_name(e, self.prefix)
            exp = self.client.get_or_create_experiment(name, tags={
                "mlflow.note.content": f"Seeded by devstack.workload ({w.name}, experiment {e}).",
                "team": f"team-{e % 3}", "workload": w.name,
            })
            result.experiments[name] = exp["experiment_id"]
            groups += [_Group(e, exp["experiment_id"], g, min(g + GROUP, w.runs)) for g in range(0, w.runs, GROUP)]
        with ThreadPoolExecutor(self.threads) as pool:
            for model_runs in pool.map(self._seed_group, groups):
                self.model_runs += model_runs
        result.runs = w.total_runs
        result.metric_points = w.metric_points
        result.models = self._register_models()
        result.seconds = round(time.monotonic() - began, 2)
        return result

    def _seed_group(self, group: _Group) -> list[tuple[str, str]]:
        parent: str | None = None
        with_model = []
        for i in range(group.first, group.last):
            nested = parent is not None and 0 < i - group.first <= self.workload.children
            run = self._seed_run(group.exp_index, group.exp_id, i, parent if nested else None)
            if i == group.first:
                parent = run["info"]["run_id"]
            if self._every(self.workload.artifacts_every, i):
                with_model.append((run["info"]["run_id"], run["info"]["artifact_uri"]))
        return with_model

    @staticmethod
    def _every(n: int, i: int) -> bool:
        return n > 0 and i % n == 0

    def _seed_run(self, e: int, exp_id: str, i: int, parent: str | None) -> JsonDict:
        w = self.workload
        start = T0 + run_offset(e, i)
        tags = {"mlflow.user": f"user{i % 4}", "mlflow.source.name": "train.py", "mlflow.source.type": "LOCAL"}
        if parent:
            tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(exp_id, start_time=start, run_name=f"run-{e}-{i:05d}", tags=tags)
        run_id = run["info"]["run_id"]
        metrics, params, user_tags = run_payload(w, e, i)
        self.client.log_batch(run_id, metrics=metrics, params=params, tags=user_tags)
        if self._every(w.datasets_every, i):
            self.client.log_inputs(run_id, [dataset_input(e, i)])
        if self._every(w.artifacts_every, i):
            store = ArtifactStore(self.client, run["info"]["artifact_uri"])
            for path, data in artifact_files(run_id, i).items():
                store.upload_bytes(data, path)
        self.client.update_run(run_id, status=STATUSES[i % len(STATUSES)], end_time=start + 1_000 + w.steps + 5_000)
        return run

    def _register_models(self) -> dict[str, int]:
        """Models with versions from runs that logged a model; stages and aliases on the newest."""
        w = self.workload
        registry = Registry(self.client)
        made: dict[str, int] = {}
        sources = iter(self.model_runs)
        for m in range(w.models if self.model_runs else 0):
            name = w.model_name(m, self.prefix)
            if registry.find_model(name) is not None:
                made[name] = len(registry.versions(name))
                continue
            registry.create_model(name, tags={"workload": w.name, "owner": f"team-{m % 3}"},
                                  description=f"Model {m} of the {w.name} workload.")
            versions = []
            for v in range(w.versions):
                run_id, artifact_uri = next(sources, self.model_runs[v % len(self.model_runs)])
                created = registry.create_version(name, source=f"{artifact_uri}/model", run_id=run_id,
                                                  tags={"version_tag": f"v{v + 1}"},
                                                  description=f"Version {v + 1} of {name}.")
                versions.append(created["version"])
            for version, stage, alias in zip(reversed(versions), ("Production", "Staging"),
                                             ("champion", "challenger"), strict=False):
                registry.transition_stage(name, version, stage)
                registry.set_alias(name, alias, version)
            made[name] = len(versions)
        return made


def seed(uri: str, workload: str | Workload, *, prefix: str = "", threads: int = 4) -> Seeded:
    """Seed `uri` with a named (or given) workload; names get `prefix` so seedings can share a server.

    Experiments and models that already exist are reused, not duplicated: runs are added to an
    existing experiment, and an existing model is left as it is.
    """
    return Seeder(uri, resolve(workload), prefix=prefix, threads=threads).seed()


def resolve(workload: str | Workload) -> Workload:
    if isinstance(workload, Workload):
        return workload
    try:
        return WORKLOADS[workload]
    except KeyError:
        raise ValueError(f"unknown workload '{workload}'; known: {', '.join(WORKLOADS)}") from None


def scaled(workload: str | Workload, runs: int) -> Workload:
    """The same shape with another run count per experiment (for quick benchmark runs)."""
    return replace(resolve(workload), runs=runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.workload", description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True, help="tracking server, e.g. http://127.0.0.1:5000")
    parser.add_argument("--workload", default="small", help=f"one of: {', '.join(WORKLOADS)}")
    parser.add_argument("--prefix", default="", help="prepended to every experiment and model name")
    parser.add_argument("--runs", type=int, default=0, help="override the runs per experiment")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    if args.workload not in WORKLOADS:
        parser.exit(2, f"Error: unknown workload '{args.workload}'; known: {', '.join(WORKLOADS)}\n")
    workload = scaled(args.workload, args.runs) if args.runs else WORKLOADS[args.workload]
    try:
        result = seed(args.uri, workload, prefix=args.prefix, threads=args.threads)
    except Exception as err:  # one line for a person at a shell: which server, what went wrong
        print(f"Error: seeding {args.uri} failed: {err}", file=sys.stderr)
        return 1
    print(result.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
