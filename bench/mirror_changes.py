"""What the mirror scenario changes on its source between syncs, and how it checks the copy.

Changes go through MLflow's own client, as a training job would make them: new runs that start
and finish, and metric steps logged to a run that is still running (the run a mirror has to
reread at every sync). A check compares the destination with the source after a sync, outside
its measurement, so a sync that exits 0 without carrying the change is reported as failed.
"""

from __future__ import annotations

import time

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus

LIVE_RUN = "live"          # the run left RUNNING on the source
LIVE_METRIC = "live_loss"
BATCH = 1000               # MLflow's limit of metrics per log-batch
PAGE = 1000


def add_running_run(uri: str, experiment_id: str, steps: int = 10) -> str:
    """A run that stays RUNNING, with `steps` steps of its metric already logged; its id."""
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(experiment_id, run_name=LIVE_RUN, tags={"mlflow.source.name": "train.py"})
    client.log_batch(run.info.run_id, metrics=_steps(0, steps), params=[Param("lr", "0.01")])
    return run.info.run_id


def small_change(uri: str, experiment_id: str, live_run_id: str, *, runs: int = 10, steps: int = 1000,
                 tag: str = "") -> None:
    """`runs` new finished runs, and `steps` more steps of the live run's metric."""
    client = MlflowClient(tracking_uri=uri)
    for i in range(runs):
        run = client.create_run(experiment_id, run_name=f"new-{tag}{i:02d}", tags={"mlflow.source.name": "train.py"})
        client.log_batch(run.info.run_id, metrics=[Metric("metric_0", 1.0 / (i + 1), _now(), 0)],
                         params=[Param("param_0", str(i))])
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FINISHED))
    first = 1 + max((m.step for m in client.get_metric_history(live_run_id, LIVE_METRIC)), default=-1)
    for start in range(first, first + steps, BATCH):
        client.log_batch(live_run_id, metrics=_steps(start, min(BATCH, first + steps - start)))


def in_step(src_uri: str, dst_uri: str, experiment: str) -> str | None:
    """What differs between the experiment's copies (run count, the live run's history), or None."""
    counts, histories = {}, {}
    for side, uri in (("source", src_uri), ("destination", dst_uri)):
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            return f"no experiment {experiment} on the {side}"
        counts[side] = _count_runs(client, found.experiment_id)
        live = client.search_runs([found.experiment_id], f"attributes.run_name = '{LIVE_RUN}'", max_results=1)
        histories[side] = len(client.get_metric_history(live[0].info.run_id, LIVE_METRIC)) if live else -1
    if counts["source"] != counts["destination"] or histories["source"] != histories["destination"]:
        return (f"destination has {counts['destination']} of {counts['source']} runs and "
                f"{histories['destination']} of {histories['source']} {LIVE_METRIC} steps")
    return None


def _count_runs(client: MlflowClient, experiment_id: str) -> int:
    total, token = 0, None
    while True:
        page = client.search_runs([experiment_id], max_results=PAGE, page_token=token)
        total += len(page)
        token = page.token
        if not token:
            return total


def _steps(first: int, count: int) -> list[Metric]:
    now = _now()
    return [Metric(LIVE_METRIC, round(1.0 / (1 + s), 6), now + s, s) for s in range(first, first + count)]


def _now() -> int:
    return int(time.time() * 1000)
