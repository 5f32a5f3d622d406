"""export-all / import-all: a whole server moved into an empty one, compared object by object.

Each test starts servers of its own (a whole-server export of the session's shared servers would
carry every other test's objects). The source is seeded by `tests.engine.server_seed` through
MLflow's own client: a registered model, experiments with runs, logged models, a trace with
assessments, a prompt, an evaluation dataset. The MLflow 2.22 case is the migration most users
make: runs, metric histories and a model with stages and aliases into MLflow 3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from mlflow import MlflowClient

from devstack.compare import differences
from devstack.missing import missing
from devstack.mlflow_server import MlflowServer
from devstack.production import MLFLOW2_PYTHON
from ferry.cli.all import export_all, import_all
from ferry.cli.experiments import export_experiments
from ferry.cli.models import export_models
from ferry.engine import server_bulk
from ferry.options import ExportOptions
from ferry.tracking import TrackingClient
from tests.conftest import WEBHOOK_ENV
from tests.engine.seed import T0, seed_experiment
from tests.engine.server_seed import SeededServer, seed_registry, seed_server, server_view

pytestmark = pytest.mark.slow
START_TIMEOUT = 300.0  # s: these tests start servers of their own, also on a busy machine
HOOK = "on-new-version"


def cli(command, uri: str, *args: str) -> Result:  # type: ignore[no-untyped-def]
    return CliRunner().invoke(command, [*args, "--quiet"], env={"MLFLOW_TRACKING_URI": uri}, catch_exceptions=False)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MlflowServer, SeededServer]]:
    server = MlflowServer(tmp_path_factory.mktemp("all-src"), env=WEBHOOK_ENV).start(timeout=START_TIMEOUT)
    try:
        seeded = seed_server(server.uri, tmp_path_factory.mktemp("all-seed"))
        MlflowClient(server.uri).create_webhook(HOOK, "http://127.0.0.1:9/hook", ["model_version.created"],
                                                description="on every new version")
        yield server, seeded
    finally:
        server.stop()


@pytest.fixture
def empty_server(tmp_path: Path) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path / "dst", env=WEBHOOK_ENV).start(timeout=START_TIMEOUT)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def exported(source: tuple[MlflowServer, SeededServer], tmp_path_factory: pytest.TempPathFactory) -> Path:
    server, _ = source
    out = tmp_path_factory.mktemp("all-out") / "export"
    done = cli(export_all, server.uri, "--output-dir", str(out), "--export-permissions", "True",
               "--notebook-formats", "SOURCE", "--use-threads", "True")
    assert done.exit_code == 0, done.output + done.stderr
    assert done.stdout.splitlines()[-1] == ("exported: 4 experiments, 11 runs, 1 models, 3 versions, "
                                            "3 logged models, 1 traces, 1 prompts, 2 prompt versions, "
                                            "1 evaluation datasets, 1 webhooks")
    [warning] = [line for line in done.stderr.splitlines() if line.startswith("Warning: ")]
    assert warning == ("Warning: --export-permissions, --notebook-formats apply only to Databricks, not to "
                       "open-source MLflow; ignored")
    return out


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_export_all_writes_the_peers_layout(source: tuple[MlflowServer, SeededServer], exported: Path) -> None:
    server, seeded = source
    client = TrackingClient(server.uri)
    assert _json(exported / "models" / "models.json")["mlflow"]["models"] == [seeded.model]
    assert (exported / "models" / seeded.model / "model.json").is_file()
    index = _json(exported / "experiments" / "experiments.json")
    everything = {str(e["experiment_id"]): e["name"] for e in client.search_experiments()}
    assert {str(e["id"]): e["name"] for e in index["mlflow"]["experiments"]} == everything  # one merged index
    assert index["mlflow"]["experiments"][0]["name"] == seeded.model_experiment  # the models' experiments first
    by_name = {name: exp_id for exp_id, name in everything.items()}
    model_runs = _json(exported / "experiments" / by_name[seeded.model_experiment] / "experiment.json")
    assert len(model_runs["mlflow"]["runs"]) == 4  # all runs of the models' experiment, not only the versions'
    agents = exported / "experiments" / by_name[seeded.agents]
    assert (agents / "logged_models" / "logged_models.json").is_file()
    assert (agents / "traces" / seeded.trace_id / "trace.json").is_file()
    assert sorted(p.name for p in (exported / "prompts").iterdir() if p.is_dir()) == \
        [f"{seeded.prompt}_v1", f"{seeded.prompt}_v2"]
    [dataset] = [p for p in (exported / "evaluation_datasets").iterdir() if p.is_dir()]
    assert dataset.name.startswith(f"{seeded.dataset}_")
    manifest = _json(exported / "manifest.json")
    assert manifest["system"]["script"] == "export_all.py"
    assert manifest["info"]["status"]["phase"] == "Succeeded"


def test_import_all_into_an_empty_server_equals_the_source_and_a_rerun_creates_nothing(
        source: tuple[MlflowServer, SeededServer], exported: Path, empty_server: MlflowServer, tmp_path: Path) -> None:
    server, _ = source
    unsigned = tmp_path / "secrets.json"
    unsigned.write_text(json.dumps({HOOK: ""}))  # the source's webhook has no signing secret
    done = cli(import_all, empty_server.uri, "--input-dir", str(exported), "--import-permissions", "True",
               "--webhook-secrets-file", str(unsigned))
    assert done.exit_code == 0, done.output + done.stderr
    assert done.stdout.splitlines()[-1] == ("imported: 4 experiments, 11 runs, 1 models, 3 versions, "
                                            "3 logged models, 1 traces, 1 prompts, 2 prompt versions, "
                                            "1 evaluation datasets, 1 webhooks")
    assert "--import-permissions apply only to Databricks" in done.stderr
    src = server_view(server.uri)
    assert differences(src, server_view(empty_server.uri)) == []

    again = server_bulk.import_all(TrackingClient(empty_server.uri), exported, webhook_secrets={HOOK: None})
    assert again.phase == "Succeeded", again.failed
    created = again.counts
    assert (created.versions, created.logged_models, created.traces, created.prompt_versions) == (0, 0, 0, 0)
    assert differences(src, server_view(empty_server.uri)) == []


def test_runs_until_bounds_the_runs_of_every_experiment(source: tuple[MlflowServer, SeededServer],
                                                        tmp_path: Path) -> None:
    """The peer's window: started at or after --run-start-time and before --runs-until (exclusive)."""
    server, seeded = source
    client = TrackingClient(server.uri)
    start, until = "2023-11-14 22:13:21", "2023-11-14 22:13:40"  # T0 + 1 s, T0 + 20 s
    assert (T0 + 1_000, T0 + 20_000) == (1_700_000_001_000, 1_700_000_020_000)
    outcome = server_bulk.export_all(client, tmp_path / "window",
                                     ExportOptions(run_start_time=start), runs_until=until)
    assert outcome.phase == "Succeeded", outcome.failed

    def names(experiment: str) -> list[str]:
        exp_id = client.get_experiment_by_name(experiment)["experiment_id"]
        run_ids = _json(tmp_path / "window" / "experiments" / exp_id / "experiment.json")["mlflow"]["runs"]
        return sorted(client.get_run(r)["info"]["run_name"] for r in run_ids)

    assert names(seeded.experiment) == ["big", "child", "failed"]  # T0+1 s .. T0+3 s; not parent (T0)
    assert names(seeded.model_experiment) == ["train-1"]  # T0+10 s; not train-2 at T0+20 s: exclusive
    assert names(seeded.agents) == []

    model_exp = client.get_experiment_by_name(seeded.model_experiment)["experiment_id"]
    done = cli(export_models, server.uri, "--models", seeded.model, "--output-dir", str(tmp_path / "models"),
               "--export-all-runs", "True", "--runs-until", until)
    assert done.exit_code == 0, done.output + done.stderr
    written = _json(tmp_path / "models" / "experiments" / model_exp / "experiment.json")["mlflow"]["runs"]
    assert sorted(client.get_run(r)["info"]["run_name"] for r in written) == ["train-1"]
    done = cli(export_experiments, server.uri, "--experiments", seeded.experiment,
               "--output-dir", str(tmp_path / "exps"), "--runs-until", "2023-11-14 22:13:22")
    assert done.exit_code == 0, done.output + done.stderr
    exp_id = client.get_experiment_by_name(seeded.experiment)["experiment_id"]
    written = _json(tmp_path / "exps" / exp_id / "experiment.json")["mlflow"]["runs"]
    assert sorted(client.get_run(r)["info"]["run_name"] for r in written) == ["child", "parent"]


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    uri = "http://127.0.0.1:9"  # nothing is asked of it: the input is refused first
    done = cli(export_all, uri, "--output-dir", str(tmp_path / "x"), "--runs-until", "yesterday")
    assert (done.exit_code, done.stderr) == (2, "Error: --runs-until 'yesterday' is not YYYY-MM-DD or "
                                                "YYYY-MM-DD HH:MM:SS\n")
    done = cli(import_all, uri, "--input-dir", str(tmp_path))
    assert done.exit_code == 1
    assert done.stderr == f"Error: {tmp_path} is not an export-all directory: no models/models.json\n"


# -- the migration: MLflow 2.22 to MLflow 3 --------------------------------------------------------


@pytest.fixture
def mlflow2_server(tmp_path: Path) -> Iterator[MlflowServer]:
    """A fresh MLflow 2.22 server: the whole of it is exported (the session's shared one holds other tests')."""
    if not MLFLOW2_PYTHON.exists():
        missing(f"MLflow 2.22 is not installed in {MLFLOW2_PYTHON.parents[1]} (run hack/install-mlflow2.sh)")
    server = MlflowServer(tmp_path / "mlflow2", python=str(MLFLOW2_PYTHON)).start(timeout=START_TIMEOUT)
    try:
        yield server
    finally:
        server.stop()


def test_a_whole_mlflow2_server_moves_to_mlflow3(mlflow2_server: MlflowServer, empty_server: MlflowServer,
                                                 tmp_path: Path) -> None:
    """No MLflow 3 endpoint's 404 on 2.22 becomes a failure or a skip: the outcome is Succeeded."""
    seed_registry(mlflow2_server.uri, "legacy", tmp_path / "registry")
    seed_experiment(mlflow2_server.uri, "legacy-runs", tmp_path / "runs")
    out = tmp_path / "export"
    done = cli(export_all, mlflow2_server.uri, "--output-dir", str(out))
    assert done.exit_code == 0 and "Failed:" not in done.stderr, done.output + done.stderr
    assert done.stdout.splitlines()[-1] == "exported: 3 experiments, 8 runs, 1 models, 3 versions"
    done = cli(import_all, empty_server.uri, "--input-dir", str(out))
    assert done.exit_code == 0 and "Failed:" not in done.stderr, done.output + done.stderr
    assert done.stdout.splitlines()[-1] == "imported: 3 experiments, 8 runs, 1 models, 3 versions"

    src, dst = server_view(mlflow2_server.uri, mlflow3=False), server_view(empty_server.uri)
    assert differences(src, {key: dst[key] for key in src}) == []
    assert src["models"]["legacy"]["aliases"] == {"champion": "2"}
    assert [v["stage"] for v in src["models"]["legacy"]["versions"]] == ["Archived", "Production", "Staging"]
    assert len(dst["experiments"]["legacy-runs"]["runs"]["big"]["metrics"]["loss"]) == 1_200
    assert (dst["prompts"], dst["datasets"]) == ({}, [])
    assert all(not models for models in dst["logged_models"].values())
