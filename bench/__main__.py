"""`python -m bench`: ferry side by side with the peers on the same real servers.

    python -m bench                 # medium workload, every scenario, memory at 10 000 runs
    python -m bench --quick         # small workload at 10 runs, no warm-up, 4 scenarios: a few minutes
    python -m bench --only experiment,lower-bound --workload wide --repeats 5

Writes `bench/results/<date>-<mode>.md` (and `.json`) and prints the same markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench import history, history_report, report, scenarios
from bench.harness import Measured, run_case
from bench.stage import Stage
from bench.tools import REPO
from devstack.workload import WORKLOADS, Workload

QUICK_RUNS = 10  # the peers take seconds per run; quick mode has to stay within a few minutes


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"small workload at {QUICK_RUNS} runs, no warm-up, scenarios {', '.join(scenarios.QUICK_SCENARIOS)}")
    parser.add_argument("--workload", choices=sorted(WORKLOADS), help="default: medium (small with --quick)")
    parser.add_argument("--only", help=f"comma-separated scenarios of: {', '.join(scenarios.SCENARIOS)}")
    parser.add_argument("--repeats", type=int, default=3, help="counted repetitions per case (median)")
    parser.add_argument("--warmup", type=int, help="uncounted repetitions first (default 1, 0 with --quick)")
    parser.add_argument("--workers", type=int, default=4, help="mlflow server --workers (its default is 4)")
    parser.add_argument("--memory-runs", type=int, default=10_000, help="runs of the large memory workload")
    parser.add_argument("--mirror-runs", type=int, default=scenarios.MIRROR_RUNS,
                        help="runs of the large workload the mirror scenario mirrors")
    parser.add_argument("--traces", type=int, default=scenarios.TRACES, help="traces of the traces scenario")
    parser.add_argument("--history-runs", type=int, default=history.RUNS, help="runs of the history scenario")
    parser.add_argument("--history-metrics", type=int, default=history.METRICS, help="metric keys per run")
    parser.add_argument("--history-steps", type=int, default=history.STEPS, help="steps per metric key")
    parser.add_argument("--history-databricks", action="store_true",
                        help="history: also export through the Databricks stand-in (a second server, seeded alike)")
    parser.add_argument("--operator-resources", type=int, default=200, help="resources applied at once")
    parser.add_argument("--work-dir", type=Path, help="servers and exports (default: a temporary directory)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    chosen = tuple(s.strip() for s in args.only.split(",")) if args.only else (
        scenarios.QUICK_SCENARIOS if args.quick else scenarios.SCENARIOS)
    unknown = [s for s in chosen if s not in scenarios.SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; known: {', '.join(scenarios.SCENARIOS)}")
    if args.warmup is None:
        args.warmup = 0 if args.quick else 1
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be at least 1 and --warmup at least 0")
    args.scenarios = chosen
    args.history_shape = history.Shape(args.history_runs, args.history_metrics, args.history_steps)
    return args


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _describe(w: Workload) -> str:
    return (f"{w.experiments} experiment(s) x {w.runs} runs x {w.metrics} metrics x {w.steps} steps, "
            f"{w.params} params, {w.tags} tags, datasets every {w.datasets_every} run(s), artifacts every "
            f"{w.artifacts_every} run(s), {w.models} model(s) x {w.versions} versions")


def _operator_targets(work: Path, resources: int) -> list[report.Target]:
    """The burst on the control plane; a cluster that cannot start is reported, not fatal."""
    from bench import operator_load

    try:
        result = operator_load.run(work / "operator", resources, say=_say)
    except Exception as err:
        _say(f"bench: operator scenario not measured: {err}")
        note = f"not measured: {str(err).splitlines()[0][:150]}"
        return [report.Target("operator: Job within (p95)", "<= 2 s", None, None, note)]
    p95 = result.percentile(0.95) if not result.missing else None
    return [
        report.Target(f"operator: {resources} resources at once, Job within (p95)", "<= 2 s", p95,
                      None if p95 is None else p95 <= 2.0, result.summary()),
        report.Target("operator: peak RSS during the burst, MB", "< 200", result.peak_rss_mb,
                      result.peak_rss_mb < 200),
    ]


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    workload = WORKLOADS[args.workload or ("small" if args.quick else "medium")]
    if args.quick:
        workload = replace(workload, runs=min(workload.runs, QUICK_RUNS))
    mode = "quick" if args.quick else "full" if not args.only else "only-" + "-".join(args.scenarios)
    load_before = os.getloadavg()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ferry-bench-"))
    stage = Stage(root=work / "servers", workers=args.workers)
    results: list[Measured] = []
    try:
        _say(f"bench: starting servers and seeding under {work}")
        cases = scenarios.build(stage, args.scenarios, workload, args.memory_runs, traces=args.traces,
                                mirror_runs=args.mirror_runs, history_shape=args.history_shape,
                                history_databricks=args.history_databricks)
        for seeded in stage.seeded.values():
            _say(f"bench: seeded {seeded.workload}: {seeded.runs} runs, {seeded.metric_points} metric points "
                 f"in {seeded.seconds:.0f} s")
        for traces in stage.seeded_traces.values():
            _say(f"bench: seeded {traces.traces} traces of {traces.spans_per_trace} spans, {traces.assessments} "
                 f"assessments in {traces.seconds:.0f} s")
        for case in cases:
            results += run_case(case, stage, work / "runs", warmup=args.warmup, repeats=args.repeats, say=_say)
    finally:
        stage.stop()
    extra = _operator_targets(work, args.operator_resources) if "operator" in args.scenarios else []
    if history.HISTORY in args.scenarios:
        extra += history_report.targets(results, args.history_shape)
    facts = report.machine_facts(args.workers, load_before)
    goals = report.targets(results, args.scenarios, extra)
    described = {}
    if set(args.scenarios) - scenarios.ALONE:
        described["main"] = f"{workload.name}: {_describe(workload)}"
    if "memory" in args.scenarios:
        described["memory"] = f"large at {args.memory_runs} and {args.memory_runs // 10} runs, one experiment"
    for traces in stage.seeded_traces.values():
        described["traces"] = (f"{traces.traces} traces x {traces.spans_per_trace} spans (a root and its children, "
                               f"inputs, outputs, attributes), {traces.assessments} assessments (every 10th trace a "
                               f"feedback and an expectation), one experiment; seeded through MLflow's tracing API "
                               f"(async export, 8 threads, spans batched) in {traces.seconds:.0f} s")
    if "mirror" in args.scenarios:
        described["mirror"] = (f"large at {args.mirror_runs} runs and one run left RUNNING, one experiment; the small "
                               f"change: 10 new runs and 1 000 steps of the running run's metric, through MLflow's "
                               f"client; a new destination server per repetition")
    if history.HISTORY in args.scenarios:
        shape = args.history_shape
        described["history"] = (f"{shape.runs} runs x {shape.metrics} metrics x {shape.steps} steps, no artifacts, "
                                f"one experiment; seeded through MLflow's client (log_batch of 1 000 points)"
                                + ("; (e) on a second server seeded alike, behind the Databricks stand-in"
                                   if args.history_databricks else ""))
    if "operator" in args.scenarios:
        described["operator"] = f"{args.operator_resources} MlflowExports created at once by 16 client threads"
    text = report.render(f"mlflow-ferry benchmark ({mode})", facts, described, results, goals,
                         args.repeats, args.warmup)
    if history.HISTORY in args.scenarios:
        text += "\n" + history_report.section(results, args.history_shape, args.workers)
    stem = f"{dt.datetime.now(dt.UTC).strftime('%Y%m%d-%H%M%S')}-{mode}"
    path = report.write(args.out, stem, text, results, goals, facts)
    print(text)
    _say(f"bench: written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
