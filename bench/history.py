"""The history scenario: what reading metric histories costs without MLflow's bulk endpoint.

The open-source server answers ``/ajax-api/2.0/mlflow/metrics/get-history-bulk`` (up to 100 runs
of one key per request); Databricks workspaces and older servers do not, and there ferry falls
back to one paged ``/api/2.0/mlflow/metrics/get-history`` per run and key, a bounded number at a
time. Both paths are measured against the same server, which serves both, by forcing the fallback
(``FERRY_METRIC_HISTORY=per-metric``): the same export, once per way of reading the histories,
and mlflow-export-import's beside them.

With ``--history-databricks``, a fifth export (e) goes through the local Databricks stand-in
(`devstack.databricks`: TLS, a bearer token, ``/api/2.0/mlflow`` proxied to a real server, no
``ajax-api``) with ``MLFLOW_TRACKING_URI=databricks``, where ferry reads per metric without asking.
Its server cannot be the one above (a workspace's runs have ``dbfs:/`` artifact URIs, which the
other tools cannot list on an open-source server), so it is a second server seeded alike: its
exports are checked against what was logged, which the bulk export is too.

The experiment holds nothing but runs with metric histories (no artifacts, datasets or models),
so the difference between the variants is the histories. It is seeded through MLflow's own
client, as a training job logs, with every point a function of its run, key and step: each export
is checked against what was logged (`bench.history_checks`).
"""

from __future__ import annotations

import atexit
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus

from bench import history_checks, tools
from bench.harness import Case, Step
from bench.stage import START_TIMEOUT, Stage
from devstack.workload import T0, Seeded
from ferry.tracking.settings import TrackingSettings

HISTORY = "history"
SRC = "history-src"
DATABRICKS_SRC = "history-dbx"   # the real server behind the Databricks stand-in
EXPERIMENT = "history"
RUNS, METRICS, STEPS = 200, 5, 1000
BATCH = 1000               # MLflow's limit of metrics per log-batch
SEED_THREADS = 8           # the server's inserts are the bound; 8 keep its 4 workers busy on 2 cores
DEFAULT_WORKERS = TrackingSettings.model_fields["history_workers"].default
BULK_ENDPOINT = "GET /ajax-api/2.0/mlflow/metrics/get-history-bulk"
PER_METRIC_ENDPOINT = "GET /api/2.0/mlflow/metrics/get-history"
HISTORY_ENDPOINTS = (BULK_ENDPOINT, PER_METRIC_ENDPOINT)


@dataclass(frozen=True)
class Shape:
    """R runs x K metric keys x S steps, one experiment."""

    runs: int = RUNS
    metrics: int = METRICS
    steps: int = STEPS

    @property
    def histories(self) -> int:
        return self.runs * self.metrics

    @property
    def points(self) -> int:
        return self.histories * self.steps

    def key(self, k: int) -> str:
        return f"metric_{k}"

    def run_name(self, i: int) -> str:
        return f"run-{i:05d}"

    def point(self, i: int, k: int, s: int) -> tuple[int, int, float]:
        """(step, timestamp, value) of run `i`'s key `k` at step `s`; exact in JSON (6 places)."""
        return s, T0 + i * 10_000 + s, round((1.0 + k) / (1.0 + s) + 0.001 * (i % 97) + 0.0001 * k, 6)


DEFAULT_SHAPE = Shape()


@dataclass(frozen=True)
class Variant:
    """One way of exporting the experiment: a tool and the environment that picks its reading path."""

    label: str                       # the case's tool name in the results
    tool: tools.Tool
    set_env: tuple[tuple[str, str], ...] = ()
    unset_env: tuple[str, ...] = ()  # left to the tool's default, whatever the bench was started with

    def argv(self, experiment: str, out: Path) -> list[str]:
        """The export, through env(1): the harness gives every step the bench's own environment."""
        env = ["/usr/bin/env", *(a for name in self.unset_env for a in ("-u", name)),
               *(f"{name}={value}" for name, value in self.set_env)]
        return env + tools.export_experiment(self.tool, experiment, out)


BULK = Variant("ferry, auto (bulk)", tools.FERRY, (("FERRY_METRIC_HISTORY", "auto"),), ("FERRY_HISTORY_WORKERS",))
PER_METRIC = Variant(f"ferry, per-metric, {DEFAULT_WORKERS} workers", tools.FERRY,
                     (("FERRY_METRIC_HISTORY", "per-metric"),), ("FERRY_HISTORY_WORKERS",))
PER_METRIC_1 = Variant("ferry, per-metric, 1 worker", tools.FERRY,
                       (("FERRY_METRIC_HISTORY", "per-metric"), ("FERRY_HISTORY_WORKERS", "1")))
PEER = Variant(tools.MLFLOW_EXPORT_IMPORT.name, tools.MLFLOW_EXPORT_IMPORT)
VARIANTS = (BULK, PER_METRIC, PER_METRIC_1, PEER)   # the first is the reference of the ratios
DATABRICKS = f"ferry on the Databricks stand-in, auto ({DEFAULT_WORKERS} workers)"   # (e), when asked for
# What a workspace client might find in the bench's environment and must not use.
DATABRICKS_UNSET = ("FERRY_HISTORY_WORKERS", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
                    "DATABRICKS_CONFIG_PROFILE", "MLFLOW_TRACKING_TOKEN")


def seed(uri: str, shape: Shape, experiment: str = EXPERIMENT, *, threads: int = SEED_THREADS) -> Seeded:
    """`shape.runs` finished runs in a new `experiment`, each with its full histories."""
    began = time.monotonic()
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(experiment)

    def one(i: int) -> None:
        run = client.create_run(experiment_id, run_name=shape.run_name(i), start_time=T0 + i * 10_000,
                                tags={"mlflow.source.name": "train.py", "mlflow.user": f"user{i % 4}"})
        run_id = run.info.run_id
        points = [Metric(shape.key(k), value, timestamp, step) for k in range(shape.metrics)
                  for step, timestamp, value in (shape.point(i, k, s) for s in range(shape.steps))]
        client.log_batch(run_id, params=[Param("lr", f"{0.001 * (1 + i % 10):.3f}"), Param("index", str(i))])
        for first in range(0, len(points), BATCH):
            client.log_batch(run_id, metrics=points[first:first + BATCH])
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED), end_time=T0 + i * 10_000 + 9_000)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(shape.runs)))
    return Seeded(uri=uri, workload=f"{HISTORY} ({shape.runs} x {shape.metrics} x {shape.steps})",
                  experiments={experiment: experiment_id}, runs=shape.runs, metric_points=shape.points,
                  seconds=round(time.monotonic() - began, 2))


def _seeded(stage: Stage, role: str, uri: str, shape: Shape) -> str:
    """The experiment seeded on the `role` server, seeding it on first use."""
    key = f"{role}:{HISTORY}:{shape.runs}x{shape.metrics}x{shape.steps}"
    if key not in stage.seeded:
        stage.seeded[key] = seed(uri, shape)
        stage.seeded[key].workload += f" on {role}"
    return next(iter(stage.seeded[key].experiments))


def cases(stage: Stage, shape: Shape, *, databricks: bool = False) -> list[Case]:
    """Each variant's export of the one seeded experiment; each export checked, unmeasured.

    The bulk export is checked against what was logged; every other export is compared with the
    bulk export of the same repetition, point by point (the same experiment, so the same runs).
    """
    src = stage.server(SRC).uri
    experiment = _seeded(stage, SRC, src, shape)
    out: Callable[[Path], Path] = lambda rep_dir: rep_dir / "export"  # noqa: E731
    reference: dict[int, Path] = {}   # repetition -> the bulk export that passed its check

    def check_reference(rep_dir: Path, rep: int) -> str | None:
        problem = history_checks.as_seeded(out(rep_dir), shape)
        if problem is None:
            reference[rep] = out(rep_dir)
        return problem

    def check_against_reference(rep_dir: Path, rep: int) -> str | None:
        if rep not in reference:   # the bulk export of this repetition failed: the seed is the reference
            return history_checks.as_seeded(out(rep_dir), shape)
        return history_checks.same_histories(out(rep_dir), reference[rep])

    found = [Case(HISTORY, v.label, (
        Step("export", lambda d, _, v=v: v.argv(experiment, out(d)), src,
             check=check_reference if v is VARIANTS[0] else check_against_reference),
    )) for v in VARIANTS]
    return found + ([_databricks_case(stage, shape)] if databricks else [])


def _databricks_case(stage: Stage, shape: Shape) -> Case:
    """(e): the export through the stand-in, with the workspace's own environment and nothing else's.

    The stand-in serves from threads of this process and is closed when it exits. Requests are
    counted where the harness counts them, in the access log of the server behind it: every MLflow
    call is proxied there, except ``artifacts/list`` (one per run), which a workspace answers itself.
    """
    from devstack.databricks import DatabricksWorkspace, backend_server

    if DATABRICKS_SRC not in stage.servers:
        stage.servers[DATABRICKS_SRC] = backend_server(stage.root / DATABRICKS_SRC, workers=stage.workers).start(
            timeout=START_TIMEOUT)
    backend = stage.servers[DATABRICKS_SRC].uri
    experiment = _seeded(stage, DATABRICKS_SRC, backend, shape)
    workspace = DatabricksWorkspace(backend=backend, root=stage.root / f"{DATABRICKS_SRC}-workspace").start()
    atexit.register(workspace.stop)
    variant = Variant(DATABRICKS, tools.FERRY, (
        ("MLFLOW_TRACKING_URI", "databricks"), ("FERRY_METRIC_HISTORY", "auto"),
        ("DATABRICKS_CONFIG_FILE", str(stage.root / f"{DATABRICKS_SRC}-workspace" / "no-databrickscfg")),
        *workspace.env_pat().items()), DATABRICKS_UNSET)
    return Case(HISTORY, variant.label, (
        Step("export", lambda d, _: variant.argv(experiment, d / "export"), backend,
             check=lambda d, _: history_checks.as_seeded(d / "export", shape)),
    ))
