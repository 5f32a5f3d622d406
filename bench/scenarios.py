"""What is compared: each scenario as the same work for ferry and for the peer that does it.

- ``experiment``: export-experiment + import-experiment (ferry vs mlflow-export-import)
- ``model``: export-model + import-model (ferry vs mlflow-export-import)
- ``kiroframe-export``: the Kiroframe files only (ferry vs kiroframe-importer)
- ``kiroframe-push``: export and push to the Kiroframe stand-in (ferry vs kiroframe-importer)
- ``lower-bound``: the raw REST reads an experiment export cannot avoid
- ``memory``: ferry's export of 10 000 runs vs 1 000 runs of the same shape (peak RSS)
- ``operator``: 200 MlflowExports applied at once on the real control plane (`bench.operator_load`)
- ``traces``: export-traces + import-traces of 5 000 traces of 5 spans (ferry vs mlflow-export-import),
  and the raw REST lower bound of copying them (`bench/trace_lower_bound.py`)
- ``mirror``: `ferry mirror --once` of 10 000 runs into an empty server, again with nothing changed, again
  after a small change; beside it ferry's export-experiment + import-experiment of the same experiment
- ``history``: export-experiment of 200 runs x 5 metrics x 1 000 steps with metric histories read in bulk,
  through the per-metric fallback (8 workers, 1 worker), and by mlflow-export-import (`bench.history`);
  with --history-databricks also through the local Databricks stand-in
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench import history, mirror_changes, tools, trace_checks
from bench.harness import Case, Step
from bench.stage import KIROFRAME_TOKEN, Stage
from devstack.workload import GROUP, Workload, scaled

SCENARIOS = ("experiment", "model", "kiroframe-export", "kiroframe-push", "lower-bound", "memory", "operator",
             "traces", "mirror", "history")
TRACES, TRACE_SPANS = 5000, 5
MIRROR_RUNS = 10_000
MIRROR, MIRROR_TOOL, MIRROR_COPY = "mirror", "ferry mirror", "ferry export + import"
MIRROR_FULL, MIRROR_UNCHANGED, MIRROR_CHANGED = "full copy", "no-change sync", "small-change sync"
MIRROR_SRC, MIRROR_DST = "mirror-src", "mirror-dst"   # server roles; a repetition's destination is mirror-dst-N
ALONE = {"memory", "operator", "traces", "mirror", "history"}   # scenarios on servers of their own, not the main workload
TRACE_EXPERIMENT = "traces-5k"
QUICK_SCENARIOS = ("experiment", "kiroframe-export", "kiroframe-push", "lower-bound")


def _experiment_case(tool: tools.Tool, src: str, dst: str, experiment: str) -> Case:
    out: Callable[[Path], Path] = lambda rep_dir: rep_dir / "export"  # noqa: E731
    return Case("experiment", tool.name, (
        Step("export", lambda d, _: tools.export_experiment(tool, experiment, out(d)), src),
        Step("import", lambda d, rep: tools.import_experiment(tool, f"{experiment}-{_short(tool)}-{rep}", out(d)),
             dst),
    ))


def _model_case(tool: tools.Tool, src: str, dst: str, model: str) -> Case:
    out: Callable[[Path], Path] = lambda rep_dir: rep_dir / "export"  # noqa: E731
    return Case("model", tool.name, (
        Step("export", lambda d, _: tools.export_model(tool, model, out(d)), src),
        Step("import", lambda d, rep: tools.import_model(tool, f"{model}-{_short(tool)}-{rep}",
                                                         f"{model}-runs-{_short(tool)}-{rep}", out(d)), dst),
    ))


def _kiroframe_case(tool: tools.Tool, src: str, kiroframe_url: str, *, push: bool) -> Case:
    scenario = "kiroframe-push" if push else "kiroframe-export"
    return Case(scenario, tool.name, (
        Step("push" if push else "export",
             lambda d, _: tools.kiroframe(tool, src, d / "kiroframe", kiroframe_url, KIROFRAME_TOKEN, push=push),
             src),
    ))


def _short(tool: tools.Tool) -> str:
    return "ferry" if tool is tools.FERRY else "peer"


def build(stage: Stage, scenarios: tuple[str, ...], workload: Workload, memory_runs: int, *,
          traces: int = TRACES, mirror_runs: int = MIRROR_RUNS,
          history_shape: history.Shape = history.DEFAULT_SHAPE, history_databricks: bool = False) -> list[Case]:
    """The cases to run, in order; seeding and starting servers as the scenarios need them."""
    cases: list[Case] = []
    wants_src = set(scenarios) - ALONE
    if wants_src:
        seeded = stage.seed("src", workload)
        src = stage.server("src").uri
        experiment = next(iter(seeded.experiments))
    if "experiment" in scenarios:
        dst = stage.server("dst").uri
        cases += [_experiment_case(t, src, dst, experiment) for t in (tools.FERRY, tools.MLFLOW_EXPORT_IMPORT)]
    if "model" in scenarios and workload.models:
        cases += _model_cases(stage, workload)
    for push in (False, True):
        if ("kiroframe-push" if push else "kiroframe-export") in scenarios:
            url = stage.kiroframe_url() or "http://127.0.0.1:9"
            cases += [_kiroframe_case(t, src, url, push=push) for t in (tools.FERRY, tools.KIROFRAME_IMPORTER)]
    if "lower-bound" in scenarios:
        cases += [
            Case("lower-bound", tools.LOWER_BOUND.name, (
                Step("runs", lambda d, _: tools.lower_bound(src, experiment), src),)),
            Case("lower-bound", tools.LOWER_BOUND.name, (
                Step("runs+artifacts", lambda d, _: tools.lower_bound(src, experiment, d / "artifacts"), src),)),
        ]
    if "memory" in scenarios:
        cases += _memory_cases(stage, memory_runs)
    if "traces" in scenarios:
        cases += _trace_cases(stage, traces)
    if "mirror" in scenarios:
        cases += _mirror_cases(stage, mirror_runs)
    if history.HISTORY in scenarios:
        cases += history.cases(stage, history_shape, databricks=history_databricks)
    return cases


def _mirror_cases(stage: Stage, runs: int) -> list[Case]:
    """The `large` workload plus one running run, mirrored; ferry's export + import of it beside.

    The export + import goes first, so it and the mirror's full copy carry the same runs. Each
    repetition of the mirror starts with a destination server of its own and a new state file:
    its first sync is a full copy, its second finds nothing to do, its third carries what was
    changed on the source just before it (10 new runs, 1 000 steps of the running run's metric).
    Every sync is checked against the source afterwards, unmeasured.
    """
    seeded = stage.seed(MIRROR_SRC, scaled("large", runs))
    src = stage.server(MIRROR_SRC).uri
    experiment, experiment_id = next(iter(seeded.experiments.items()))
    live = mirror_changes.add_running_run(src, experiment_id)
    imports = stage.server("mirror-import").uri
    out: Callable[[Path], Path] = lambda rep_dir: rep_dir / "export"  # noqa: E731
    ferry = tools.FERRY
    copy = Case(MIRROR, MIRROR_COPY, (
        Step("export", lambda d, _: tools.export_experiment(ferry, experiment, out(d)), src),
        Step("import", lambda d, rep: tools.import_experiment(ferry, f"{experiment}-copy-{rep}", out(d)), imports),
    ))

    def dst(rep: int) -> str:
        return stage.server(mirror_dst_role(rep)).uri

    def sync(rep_dir: Path, rep: int) -> list[str]:
        return tools.mirror(ferry, src, dst(rep), experiment, rep_dir / "mirror-state.json")

    def start_dst(_: Path, rep: int) -> None:
        dst(rep)

    def check(_: Path, rep: int) -> str | None:
        return mirror_changes.in_step(src, dst(rep), experiment)

    mirror = Case(MIRROR, MIRROR_TOOL, (
        Step(MIRROR_FULL, sync, src, check=check, prepare=start_dst),
        Step(MIRROR_UNCHANGED, sync, src, check=check),
        Step(MIRROR_CHANGED, sync, src, check=check, prepare=lambda _, rep: mirror_changes.small_change(
            src, experiment_id, live, tag=f"{rep}-")),
    ))
    return [copy, mirror]


def mirror_dst_role(rep: int) -> str:
    """The destination server of one repetition (warm-ups are negative)."""
    return f"{MIRROR_DST}-{'w' if rep < 0 else ''}{abs(rep)}"


def _model_cases(stage: Stage, workload: Workload) -> list[Case]:
    """Both sides on servers that keep artifacts on a local path.

    mlflow-export-import's import-model cannot import a version whose source is an
    ``mlflow-artifacts:`` URI (it looks for the model path after the first "artifacts" in the
    source, which is the scheme) nor into a server that serves artifacts (it checks the new source
    exists on its local disk). Only the runs behind the versions are exported, so a few runs of
    the workload's shape are enough.
    """
    runs = max(GROUP, workload.versions * max(workload.artifacts_every, 1))
    src = stage.server("model-src", local_artifacts=True).uri
    seeded = stage.seed("model-src", replace(workload, experiments=1, runs=runs, models=1))
    dst = stage.server("model-dst", local_artifacts=True).uri
    model = next(iter(seeded.models))
    return [_model_case(t, src, dst, model) for t in (tools.FERRY, tools.MLFLOW_EXPORT_IMPORT)]


def _memory_cases(stage: Stage, runs: int) -> list[Case]:
    """ferry's export of the `large` workload against a tenth of it, on a server of their own."""
    cases = []
    for label, workload in (("memory 1x", scaled("large-1k", runs // 10)), ("memory 10x", scaled("large", runs))):
        seeded = stage.seed("memory", workload)
        uri = stage.server("memory").uri
        experiment = next(iter(seeded.experiments))
        cases.append(Case(label, tools.FERRY.name, (
            Step("export", lambda d, _, e=experiment: tools.export_experiment(tools.FERRY, e, d / "export"), uri),
        )))
    return cases


def _trace_cases(stage: Stage, count: int) -> list[Case]:
    """Both tools and the bound on servers of their own; each step's result is checked, not assumed.

    mlflow-export-import's import-traces logs its errors and exits 0, and its export-traces writes
    span data only for traces MLflow also uploaded as artifacts: a step that exits 0 is checked
    for the traces (and spans) it should have carried before it counts as done.
    """
    seeded = stage.seed_traces("traces-src", TRACE_EXPERIMENT, count, TRACE_SPANS)
    src, dst = seeded.uri, stage.server("traces-dst").uri
    out: Callable[[Path], Path] = lambda rep_dir: rep_dir / "export"  # noqa: E731
    cases = []
    peer_seen: dict[str, int] = {}   # the peer's traces in the destination, both its cases
    for tool in (tools.FERRY, tools.MLFLOW_EXPORT_IMPORT):
        name = (lambda rep, t=tool: f"{TRACE_EXPERIMENT}-{_short(t)}-{rep}") if tool is tools.FERRY else (
            lambda rep: TRACE_EXPERIMENT)   # the peer imports into the source experiment's name
        before: dict[str, int] = {} if tool is tools.FERRY else peer_seen
        cases.append(Case("traces", tool.name, (
            Step("export", lambda d, _, t=tool: tools.export_traces(t, seeded.experiment_id, out(d)), src,
                 check=lambda d, _: trace_checks.exported(out(d), count, TRACE_SPANS)),
            Step("import", lambda d, rep, t=tool, n=name: tools.import_traces(
                t, out(d), n(rep) if t is tools.FERRY else None), dst,
                 check=lambda d, rep, n=name, b=before: trace_checks.imported(dst, n(rep), count, d / "import.log",
                                                                               b)),
        )))
    # The peer's import-traces on an export with every trace's span data (ferry's, same layout).
    ferry_out: Callable[[Path], Path] = lambda d: d.parent.parent / "ferry" / d.name / "export"  # noqa: E731
    cases.append(Case("traces", f"{tools.MLFLOW_EXPORT_IMPORT.name} (import of ferry's export)", (
        Step("import", lambda d, _: tools.import_traces(tools.MLFLOW_EXPORT_IMPORT, ferry_out(d)), dst,
             check=lambda d, _: trace_checks.imported(dst, TRACE_EXPERIMENT, count, d / "import.log", peer_seen)),
    )))
    cases.append(Case("traces", tools.LOWER_BOUND.name, (
        Step("copy", lambda d, rep: tools.trace_lower_bound(src, TRACE_EXPERIMENT, dst, f"{TRACE_EXPERIMENT}-bound-{rep}"),
             src, check=lambda d, rep: trace_checks.imported(dst, f"{TRACE_EXPERIMENT}-bound-{rep}", count,
                                                              d / "copy.log", {})),
    )))
    return cases
