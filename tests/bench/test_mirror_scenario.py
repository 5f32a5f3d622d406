"""The mirror scenario's declaration and the changes it makes on its source between syncs."""

from __future__ import annotations

from mlflow import MlflowClient

from bench import mirror_changes, scenarios
from bench.__main__ import _parse
from devstack.mlflow_server import MlflowServer


def test_the_mirror_scenario_is_known_and_mirrors_10_000_runs_by_default() -> None:
    args = _parse(["--only", "mirror"])
    assert args.scenarios == ("mirror",) and args.mirror_runs == 10_000
    assert "mirror" in scenarios.SCENARIOS and "mirror" not in scenarios.QUICK_SCENARIOS
    # The report sums a repetition's destination under the prefix: every one must carry it, each its own.
    roles = {scenarios.mirror_dst_role(rep) for rep in (-1, 0, 1)}
    assert len(roles) == 3 and all(r.startswith(scenarios.MIRROR_DST + "-") for r in roles)


def test_the_small_change_adds_runs_and_steps_and_the_check_sees_it(mlflow_src: MlflowServer,
                                                                     mlflow_dst: MlflowServer, unique: str) -> None:
    client = MlflowClient(tracking_uri=mlflow_src.uri)
    name = f"mirror-bench-{unique}"
    experiment_id = client.create_experiment(name)
    live = mirror_changes.add_running_run(mlflow_src.uri, experiment_id, steps=10)
    mirror_changes.small_change(mlflow_src.uri, experiment_id, live, runs=3, steps=1500)

    runs = client.search_runs([experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3 + ["RUNNING"]
    history = client.get_metric_history(live, mirror_changes.LIVE_METRIC)
    assert sorted(m.step for m in history) == list(range(1510))
    assert mirror_changes.in_step(mlflow_src.uri, mlflow_dst.uri, name) == f"no experiment {name} on the destination"
    assert mirror_changes.in_step(mlflow_src.uri, mlflow_src.uri, name) is None
