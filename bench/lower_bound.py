"""The raw REST lower bound of an experiment export: read what must be read, and nothing else.

One pass of paged ``runs/search`` (which carries every run's params, tags, latest metrics and
inputs) plus the full history of every metric through ``get-history-bulk``, with the same
bounded concurrency an exporter would use. Nothing is written, converted or downloaded, so no
tool that exports the same experiment's run data through MLflow's REST API can be faster; how
close a tool gets to this is the measure of its own overhead.

    python -m bench.lower_bound --uri http://127.0.0.1:5000 --experiment small-0
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from ferry.tracking import TrackingClient

HISTORY_RUNS_PER_REQUEST = 100  # get-history-bulk's cap on run ids


def _history_tasks(client: TrackingClient, experiment_id: str) -> Iterator[tuple[list[str], str]]:
    """(run ids, metric key) per bulk read, page by page as runs/search answers."""
    by_key: dict[str, list[str]] = defaultdict(list)
    for run in client.search_runs([experiment_id], run_view_type="ALL"):
        for metric in run.get("data", {}).get("metrics", []):
            ids = by_key[metric["key"]]
            ids.append(run["info"]["run_id"])
            if len(ids) == HISTORY_RUNS_PER_REQUEST:
                yield list(ids), metric["key"]
                ids.clear()
    for key, ids in by_key.items():
        if ids:
            yield ids, key


def read_experiment(uri: str, experiment: str, threads: int = 4) -> dict[str, int]:
    """Read every run and every metric point of `experiment` (name or id); returns the counts."""
    client = TrackingClient(uri)
    experiment_id = client.find_experiment(experiment)["experiment_id"]
    points = 0
    runs: set[str] = set()
    with ThreadPoolExecutor(threads) as pool:
        futures = []
        for run_ids, key in _history_tasks(client, experiment_id):
            runs.update(run_ids)
            futures.append(pool.submit(client.get_metric_histories, run_ids, key))
        for future in futures:
            points += sum(len(history) for history in future.result().values())
    return {"runs_with_metrics": len(runs), "metric_points": points}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lower_bound", description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True)
    parser.add_argument("--experiment", required=True, help="name or id")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    print(json.dumps(read_experiment(args.uri, args.experiment, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
