"""`ferry mirror` / `ferry.engine.mirror`: a destination kept in step with a source, sync after sync.

The source is seeded and changed through MLflow's own client; after each sync the destination's
snapshot (`devstack.compare.snapshot`, what a user reads with MLflow's client) equals the
source's. A sync with nothing to do writes nothing: the destination's access log shows no write.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from devstack.compare import differences, snapshot
from devstack.fluent import point_fluent_api_at
from devstack.mlflow_server import MlflowServer
from ferry.engine.mirror import mirror
from ferry.engine.runs import SOURCE_RUN_ID_TAG
from ferry.options import MirrorObjects, MirrorOptions
from ferry.outcome import Outcome
from ferry.tracking import TrackingClient

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
# Requests that change a server; its searches are POSTs too.
READS = re.compile(r"/(search|get|batchGet|get-history|list)[^ ]*|/traces/[^ /]+ ")
WRITE = re.compile(r'"(POST|PATCH|DELETE|PUT) (\S+)')


@pytest.fixture(scope="module")
def standby(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A destination of its own: its access log counts the mirror's writes."""
    server = MlflowServer(tmp_path_factory.mktemp("mirror-dst")).start()
    yield server
    server.stop()


@dataclass
class Primary:
    """The source objects a test mirrors, by name."""

    uri: str
    experiment: str
    model: str
    prompt: str

    @property
    def objects(self) -> MirrorObjects:
        return MirrorObjects(experiments=[self.experiment], models=[self.model], prompts=[self.prompt])

    def view(self, uri: str) -> dict[str, object]:
        return snapshot(uri, [self.experiment], [self.model], prompts=[self.prompt], mlflow3=True)


def writes(server: MlflowServer, after: int = 0) -> list[str]:
    """The write requests in the server's access log after its first `after` lines."""
    lines = server.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[after:]
    found = [m.group(2) for line in lines if (m := WRITE.search(line))]
    return [path for path in found if not READS.search(path + " ")]


def log_length(server: MlflowServer) -> int:
    return len(server.log_path.read_text(encoding="utf-8", errors="replace").splitlines())


def assert_in_step(primary: Primary, standby: MlflowServer) -> None:
    src, dst = primary.view(primary.uri), primary.view(standby.uri)
    assert src == dst, "\n".join(differences(src, dst)[:20])


def sync(primary: Primary, standby: MlflowServer, state: dict[str, int | None], **options: object) -> Outcome:
    outcome = mirror(TrackingClient(primary.uri), TrackingClient(standby.uri), primary.objects,
                     MirrorOptions(**options), since=state.get("watermark"),
                     last_full_compare=state.get("full"), workers=2)
    if outcome.phase != "Failed":
        state["watermark"] = outcome.watermark
        state["full"] = outcome.full_compare_time or state.get("full")
    return outcome


def _answer(question: str) -> str:
    with mlflow.start_span("answer") as span:
        span.set_inputs({"q": question})
        span.set_outputs({"a": question.upper()})
    return question.upper()


@pytest.fixture(scope="module")
def primary(mlflow_src: MlflowServer) -> Primary:
    """A finished parent with a child, a running run with metric steps, a model with an alias, a prompt, a trace."""
    suffix = f"{os.getpid()}-{int(time.time())}"
    seeded = Primary(mlflow_src.uri, f"mirror-{suffix}", f"mirror-model-{suffix}", f"mirror-prompt-{suffix}")
    point_fluent_api_at(mlflow_src.uri)
    exp_id = mlflow.set_experiment(seeded.experiment).experiment_id
    client = MlflowClient(mlflow_src.uri)
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_params({"lr": "0.1", "depth": "3"})
        mlflow.set_tags({"team": "search"})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_text("weights v1", "model/weights.txt")
        mlflow.log_text("flavors: {}", "model/MLmodel")
        with mlflow.start_run(run_name="child", nested=True):
            mlflow.log_metric("acc", 0.5)
        _answer("first")
    two_days_ago = int(time.time() * 1000) - 2 * 86_400_000
    archived = client.create_run(exp_id, run_name="archived", start_time=two_days_ago)
    client.log_param(archived.info.run_id, "lr", "0.3")
    client.set_terminated(archived.info.run_id, "FINISHED", end_time=two_days_ago + 60_000)
    running = client.create_run(exp_id, run_name="training")
    for step in range(5):
        client.log_metric(running.info.run_id, "loss", 5.0 - step, step=step)
    client.create_registered_model(seeded.model, tags={"owner": "search"}, description="ranker")
    client.create_model_version(seeded.model, f"{parent.info.artifact_uri}/model", parent.info.run_id)
    client.set_registered_model_alias(seeded.model, "champion", "1")
    mlflow.genai.register_prompt(name=seeded.prompt, template="v1: {{q}}", commit_message="first")
    seeded.running_run_id = running.info.run_id  # type: ignore[attr-defined]
    seeded.archived_run_id = archived.info.run_id  # type: ignore[attr-defined]
    return seeded


@pytest.fixture(scope="module")
def state() -> dict[str, int | None]:
    return {}


def test_first_sync_copies_everything(primary: Primary, standby: MlflowServer, state: dict[str, int | None]) -> None:
    outcome = sync(primary, standby, state)
    assert outcome.phase == "Succeeded", outcome.failed
    assert outcome.full_compare_time is not None and outcome.watermark == outcome.full_compare_time
    assert (outcome.counts.experiments, outcome.counts.runs, outcome.counts.models, outcome.counts.versions) == \
           (1, 4, 1, 1)
    assert outcome.counts.traces == 1 and outcome.counts.prompt_versions == 1
    assert outcome.lag_seconds == 0
    assert_in_step(primary, standby)
    again = sync(primary, standby, state)  # runs made by MlflowClient.create_run have no mlflow.user tag
    assert again.counts.objects == 0, again.message


def test_changes_are_carried_by_the_next_sync(primary: Primary, standby: MlflowServer,
                                              state: dict[str, int | None]) -> None:
    client = MlflowClient(primary.uri)
    running = primary.running_run_id  # type: ignore[attr-defined]
    for step in range(5, 10):
        client.log_metric(running, "loss", 5.0 - step, step=step)
    client.set_tag(running, "stage", "tuned")
    client.log_param(running, "epochs", "10")
    client.log_text(running, "late result", "results/summary.txt")
    client.set_terminated(running, "FINISHED")
    point_fluent_api_at(primary.uri)
    mlflow.set_experiment(primary.experiment)
    with mlflow.start_run(run_name="retrained") as new:
        mlflow.log_metric("loss", 0.05)
        mlflow.log_text("weights v2", "model/weights.txt")
        _answer("second")
    client.create_model_version(primary.model, f"{new.info.artifact_uri}/model", new.info.run_id)
    client.set_registered_model_alias(primary.model, "champion", "2")
    client.set_registered_model_alias(primary.model, "previous", "1")
    client.set_registered_model_tag(primary.model, "reviewed", "yes")
    client.transition_model_version_stage(primary.model, "1", "Archived")
    mlflow.genai.register_prompt(name=primary.prompt, template="v2: {{q}}!", commit_message="second")
    mlflow.genai.set_prompt_alias(primary.prompt, "production", 2)

    outcome = sync(primary, standby, state)
    assert outcome.phase == "Succeeded", outcome.failed
    assert outcome.full_compare_time is None  # incremental
    assert outcome.counts.runs == 2 and outcome.counts.traces == 1, outcome.message
    assert_in_step(primary, standby)
    dst = TrackingClient(standby.uri)
    copies = list(dst.search_runs([dst.get_experiment_by_name(primary.experiment)["experiment_id"]],
                                  run_view_type="ALL"))
    sources = [r for r in copies if any(t["key"] == SOURCE_RUN_ID_TAG for t in r["data"]["tags"])]
    assert len(sources) == len(copies) == 5  # nothing doubled
    history = list(dst.get_metric_history(next(r["info"]["run_id"] for r in copies
                                               if r["info"]["run_name"] == "training"), "loss"))
    assert [int(p["step"]) for p in history] == list(range(10))


def test_syncs_with_nothing_to_do_write_nothing(primary: Primary, standby: MlflowServer,
                                                state: dict[str, int | None]) -> None:
    before = log_length(standby)
    for _ in range(3):
        outcome = sync(primary, standby, state)
        assert outcome.phase == "Succeeded", outcome.failed
        assert outcome.counts.objects == 0, outcome.message
        assert outcome.lag_seconds == 0
    assert writes(standby, before) == []


def test_a_tag_on_a_finished_run_waits_for_the_full_comparison(primary: Primary, standby: MlflowServer,
                                                               state: dict[str, int | None]) -> None:
    client = MlflowClient(primary.uri)
    client.set_tag(primary.archived_run_id, "late-note", "reviewed")  # type: ignore[attr-defined]
    incremental = sync(primary, standby, state)
    assert incremental.counts.runs == 0  # MLflow keeps no time for this edit
    full = sync(primary, standby, {**state, "full": 0}, full_compare_every="1h")
    assert full.full_compare_time is not None and full.counts.runs == 1, full.message
    assert_in_step(primary, standby)


def test_deleted_runs_follow_only_with_delete_missing(primary: Primary, standby: MlflowServer,
                                                      state: dict[str, int | None]) -> None:
    client = MlflowClient(primary.uri)
    victim = client.search_runs([client.get_experiment_by_name(primary.experiment).experiment_id],
                                filter_string="attributes.run_name = 'child'")[0]
    client.delete_run(victim.info.run_id)
    dst = MlflowClient(standby.uri)
    dst_exp = dst.get_experiment_by_name(primary.experiment).experiment_id

    def copy_stage() -> str:
        found = dst.search_runs([dst_exp], filter_string=f"tags.`{SOURCE_RUN_ID_TAG}` = '{victim.info.run_id}'",
                                run_view_type=3)
        return found[0].info.lifecycle_stage

    sync(primary, standby, state)
    assert copy_stage() == "active"
    outcome = sync(primary, standby, state, delete_missing=True)
    assert outcome.phase == "Succeeded" and outcome.counts.runs == 1, outcome.message
    assert copy_stage() == "deleted"
    assert_in_step(primary, standby)


def test_a_source_that_is_down_fails_the_sync_and_the_next_catches_up(
        primary: Primary, standby: MlflowServer, state: dict[str, int | None]) -> None:
    down = Primary("http://127.0.0.1:9", primary.experiment, primary.model, primary.prompt)
    before = dict(state)
    failed = sync(down, standby, state)
    assert failed.phase == "Failed" and "127.0.0.1:9" in failed.message
    assert state == before  # the watermark stays where the last good sync left it
    point_fluent_api_at(primary.uri)
    mlflow.set_experiment(primary.experiment)
    with mlflow.start_run(run_name="while-down"):
        mlflow.log_metric("loss", 0.01)
    caught_up = sync(primary, standby, state)
    assert caught_up.phase == "Succeeded" and caught_up.counts.runs == 1, caught_up.message
    assert_in_step(primary, standby)


def test_the_command_keeps_its_state_file_and_exits_with_the_result(primary: Primary, standby: MlflowServer,
                                                                    tmp_path: Path) -> None:
    state_file = tmp_path / "mirror.json"
    args = [str(BIN / "ferry"), "mirror", "--src-mlflow-uri", primary.uri, "--dst-mlflow-uri", standby.uri,
            "--experiments", primary.experiment, "--models", primary.model, "--prompts", primary.prompt,
            "--state-file", str(state_file), "--once", "--quiet"]
    first = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("full comparison: ")
    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.startswith("sync: 0 experiments, 0 runs"), again.stdout
    same = subprocess.run([*args[:5], primary.uri, "--once"], capture_output=True, text=True, timeout=60)
    assert same.returncode != 0 and same.stderr.count("\n") == 1 and "same server" in same.stderr
