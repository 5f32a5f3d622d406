"""The raw REST lower bound of an experiment export: read what must be read, and nothing else.

One pass of paged ``runs/search`` (which carries every run's params, tags, latest metrics and
inputs) plus the full history of every metric through ``get-history-bulk``, with the same
bounded concurrency an exporter would use. Nothing is converted or written, so no tool that
exports the same experiment's run data through MLflow's REST API can be faster; how close a tool
gets to this is the measure of its own overhead. With ``--artifacts-to`` every run's artifact
files are also downloaded there, as any export that carries artifacts must.

    python bench/lower_bound.py --uri http://127.0.0.1:5000 --experiment small-0 [--artifacts-to DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ferry.tracking import ArtifactStore, TrackingClient

HISTORY_RUNS_PER_REQUEST = 100  # get-history-bulk's cap on run ids


Task = Callable[[], tuple[str, int]]   # () -> ("metric_points" | "artifact_files", count)


def _tasks(client: TrackingClient, experiment_id: str, artifacts_to: Path | None) -> Iterator[Task]:
    """One task per bulk history read (and per run's artifacts), page by page as runs/search answers."""
    by_key: dict[str, list[str]] = defaultdict(list)

    def history(run_ids: list[str], key: str) -> Task:
        return lambda: ("metric_points", sum(map(len, client.get_metric_histories(run_ids, key).values())))

    def artifacts(artifact_uri: str, dest: Path) -> Task:
        return lambda: ("artifact_files", ArtifactStore(client, artifact_uri).download_tree(dest)[0])

    for run in client.search_runs([experiment_id], run_view_type="ALL"):
        info = run["info"]
        if artifacts_to is not None:
            yield artifacts(info["artifact_uri"], artifacts_to / info["run_id"])
        for metric in run.get("data", {}).get("metrics", []):
            ids = by_key[metric["key"]]
            ids.append(info["run_id"])
            if len(ids) == HISTORY_RUNS_PER_REQUEST:
                yield history(list(ids), metric["key"])
                ids.clear()
    for key, ids in by_key.items():
        if ids:
            yield history(ids, key)


def read_experiment(uri: str, experiment: str, threads: int = 4, artifacts_to: Path | None = None) -> dict[str, int]:
    """Read every metric point (and artifact file) of `experiment` (name or id); returns the counts."""
    client = TrackingClient(uri)
    experiment_id = client.find_experiment(experiment)["experiment_id"]
    counts: Counter[str] = Counter(metric_points=0)
    with ThreadPoolExecutor(threads) as pool:
        for name, n in pool.map(lambda task: task(), _tasks(client, experiment_id, artifacts_to)):
            counts[name] += n
    return dict(counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/lower_bound.py", description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True)
    parser.add_argument("--experiment", required=True, help="name or id")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--artifacts-to", type=Path, help="also download every run's artifacts here")
    args = parser.parse_args(argv)
    print(json.dumps(read_experiment(args.uri, args.experiment, args.threads, args.artifacts_to)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
