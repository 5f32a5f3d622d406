"""A tracking server lost in the middle of an import: the outcome is Failed, not PartiallyFailed.

PartiallyFailed means "done, except what is listed, which a rerun would not change", and a Job
does not retry it. Objects that failed because the server went away are not like that: a rerun
(the Job's backoffLimit) carries them, and since imports are idempotent it carries nothing twice.
The destination is killed from the progress callback, right after the first model version, so
the experiment part is complete and only the model part is cut short.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mlflow import MlflowClient

from devstack.compare import differences, snapshot
from devstack.mlflow_server import MlflowServer
from ferry.engine.service import export_objects, import_objects
from ferry.options import ExportOptions, ImportOptions, Selection
from ferry.progress import Progress

RUNS = 3


def seed(uri: str, unique: str) -> tuple[str, str]:
    client = MlflowClient(uri)
    experiment, model = f"lost-{unique}", f"lost-model-{unique}"
    exp_id = client.create_experiment(experiment)
    ids = []
    for i in range(RUNS):
        run_id = client.create_run(exp_id, run_name=f"run-{i}").info.run_id
        client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i)
        client.set_terminated(run_id)
        ids.append(run_id)
    client.create_registered_model(model)
    for run_id in ids:
        client.create_model_version(model, source=f"runs:/{run_id}/model", run_id=run_id)
    return experiment, model


def test_destination_lost_mid_import_fails_and_a_rerun_completes(mlflow_src, tmp_path: Path, unique,
                                                                 monkeypatch) -> None:
    experiment, model = seed(mlflow_src.uri, unique)
    out = tmp_path / "export"
    assert export_objects(mlflow_src.uri, out, Selection(experiments=[experiment], models=[model]),
                          ExportOptions()).phase == "Succeeded"
    dst = MlflowServer(root=tmp_path / "dst").start(timeout=300)
    monkeypatch.setenv("FERRY_HTTP_MAX_ATTEMPTS", "1")  # a dead server fails each request at once
    killed: list[Progress] = []

    def kill_after_first_version(progress: Progress) -> None:
        if not killed and progress.done > RUNS:  # the experiment's runs and one version are in
            killed.append(progress)
            dst.kill()

    try:
        cut = import_objects(dst.uri, out, ImportOptions(), workers=1, on_progress=kill_after_first_version)
        assert killed, "the import ended before the destination was killed"
        assert cut.phase == "Failed", cut
        assert cut.failed and all("cannot reach MLflow" in f for f in cut.failed), cut.failed
        assert "a rerun" in (cut.message or ""), cut.message

        dst.restart(timeout=300)
        rerun = import_objects(dst.uri, out, ImportOptions(), workers=1)
        assert rerun.phase == "Succeeded", rerun
        source, copied = snapshot(mlflow_src.uri, [experiment], [model]), snapshot(dst.uri, [experiment], [model])
        assert differences(source, copied) == []
        client = MlflowClient(dst.uri)
        runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
        assert Counter(r.info.run_name for r in runs) == {f"run-{i}": 1 for i in range(RUNS)}
        assert len(client.search_model_versions(f"name='{model}'")) == RUNS
    finally:
        dst.stop()
