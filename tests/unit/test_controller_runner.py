"""`ferry job` pieces that need no cluster: its input, its progress throttle, its result."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from ferry.api.export import MlflowExportSpec
from ferry.api.job import JobPayload
from ferry.errors import NotFoundError, UsageError
from ferry.options import ExportOptions, ImportOptions, ImportTarget, KiroframeOptions, ModelVersionRef
from ferry.outcome import Outcome
from ferry.progress import Progress
from ferry.runner import engines
from ferry.runner.engines import prune_exports
from ferry.runner.job import execute, exit_code, read_payload, read_spec, report
from ferry.runner.reporter import ProgressReporter
from ferry.storage.retention import FINISHED


def test_payload_errors_are_one_line_usage_errors() -> None:
    with pytest.raises(UsageError, match="FERRY_JOB is not set"):
        read_payload({})
    with pytest.raises(UsageError, match="not a job description"):
        read_payload({"FERRY_JOB": "{"})
    with pytest.raises(UsageError, match="unknown kind 'Backup'"):
        read_payload({"FERRY_JOB": json.dumps({"kind": "Backup", "name": "n", "namespace": "d", "spec": {}})})


def test_progress_is_throttled_and_the_last_state_is_sent() -> None:
    sent: list[dict] = []
    now = [0.0]
    reporter = ProgressReporter(sent.append, interval=2.0, clock=lambda: now[0])
    for done in range(5):  # all within one interval: only the first goes out at once
        reporter(Progress(total=10, done=done))
    now[0] = 2.5
    reporter(Progress(total=10, done=7))
    reporter.close()
    reporter.close()  # nothing pending: nothing more sent
    assert [s["progress"]["done"] for s in sent] == [0, 7]
    assert sent[-1]["progress"] == {"total": 10, "done": 7, "failed": 0, "summary": "7/10"}


def test_a_refused_progress_patch_does_not_stop_the_work(capsys: pytest.CaptureFixture[str]) -> None:
    calls = []

    def refuse(status: dict) -> None:
        calls.append(status)
        raise PermissionError("403")

    reporter = ProgressReporter(refuse, interval=0)
    reporter(Progress(total=1))
    reporter(Progress(total=1, done=1))
    assert len(calls) == 1 and "cannot report progress" in capsys.readouterr().err


class Refused(Exception):
    """What the Kubernetes client raises for a 403 (or the `status` given)."""

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.status = status


@pytest.mark.parametrize("status", [403, 404])
def test_a_just_restarted_api_server_refusing_for_a_moment_delays_the_progress_only(status: int) -> None:
    """Freshly started, an API server answers 403 until its RBAC caches are filled, and 404 for our
    resource until it has loaded the CRDs: retried for a while."""
    now, sent = [0.0], []
    refusing = [2]

    def send(progress: dict) -> None:
        if refusing[0]:
            refusing[0] -= 1
            raise Refused("mlflowexports is forbidden or not found", status)
        sent.append(progress)

    reporter = ProgressReporter(send, interval=0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    reporter(Progress(total=10, done=3))  # refused: kept
    now[0] = 5.0
    reporter(Progress(total=10, done=6))  # refused again, 5 s later: still kept
    now[0] = 6.0
    reporter(Progress(total=10, done=10))
    reporter.close()
    assert [s["progress"]["done"] for s in sent] == [10]

    stubborn = []
    reporter = ProgressReporter(lambda status: (stubborn.append(status), (_ for _ in ()).throw(Refused("no"))),
                                interval=0, clock=lambda: now[0])
    reporter(Progress(total=10, done=1))
    now[0] += 31  # refused for longer than a restart takes: the refusal is real, reporting stops
    reporter(Progress(total=10, done=2))
    reporter(Progress(total=10, done=3))
    assert len(stubborn) == 2


def test_progress_survives_an_api_server_that_is_away_for_a_while(capsys: pytest.CaptureFixture[str]) -> None:
    """A restarted API server delays the patches; the last state still arrives (close retries it)."""
    sent: list[dict] = []
    down = [3]  # the next three patches find no API server
    now = [0.0]

    def send(status: dict) -> None:
        if down[0]:
            down[0] -= 1
            raise ConnectionRefusedError("connection refused")
        sent.append(status)

    reporter = ProgressReporter(send, interval=0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    reporter(Progress(total=10, done=4))  # refused: kept
    reporter(Progress(total=10, done=9))  # refused: the newer state is kept
    reporter(Progress(total=10, done=10))  # refused
    reporter.close()  # retried: the API server is back
    assert [s["progress"]["done"] for s in sent] == [10]
    assert capsys.readouterr().err.count("cannot report progress") == 1


def test_the_last_state_is_given_up_after_the_final_retry_time() -> None:
    now = [0.0]
    calls: list[dict] = []

    def never(status: dict) -> None:
        calls.append(status)
        raise ConnectionRefusedError("connection refused")

    reporter = ProgressReporter(never, interval=0, clock=lambda: now[0], final_retry_seconds=5,
                                sleep=lambda s: now.__setitem__(0, now[0] + s))
    reporter(Progress(total=1, done=1))
    reporter.close()
    assert 5 <= len(calls) <= 7 and now[0] >= 5


def test_engine_errors_become_a_failed_outcome_and_a_termination_message(tmp_path: Path) -> None:
    payload = JobPayload(kind="MlflowExport", name="n", namespace="d", spec={})

    def missing(_spec, _payload, _sink):
        raise NotFoundError("experiment 'x' not found at http://mlflow:5000")

    outcome = execute(missing, MlflowExportSpec.model_construct(), payload, None)
    assert outcome.phase == "Failed" and outcome.message == "experiment 'x' not found at http://mlflow:5000"
    assert exit_code(outcome) == 1 and exit_code(Outcome(phase="PartiallyFailed")) == 0
    log = tmp_path / "termination-log"
    report(outcome, log)
    assert Outcome.model_validate_json(log.read_text()) == outcome


def finished(path: Path) -> Path:
    (path / FINISHED).parent.mkdir(parents=True)
    (path / FINISHED).write_text("{}")
    return path


def test_scheduled_exports_keep_the_newest_of_their_own(tmp_path: Path) -> None:
    """`nightly` keeps its own 2 newest finished exports; `nightly-full`'s (whose names sort after
    `nightly-`'s), another resource's, an unfinished one and anything else stay."""
    for stamp in ("20240101T000000Z", "20240102T000000Z"):
        finished(tmp_path / f"nightly-{stamp}")
    (tmp_path / "nightly-20231231T000000Z").mkdir()  # a run that failed or is still being written
    for stamp in ("20230101T000000Z", "20230102T000000Z", "20230103T000000Z"):
        finished(tmp_path / f"nightly-full-{stamp}")
    finished(tmp_path / "other-20230101T000000Z")
    finished(tmp_path / "nightly-notes")
    written = tmp_path / "nightly-20240103T000000Z"
    written.mkdir()  # the export just written: prune marks it finished
    removed = prune_exports(written, "nightly", keep=2)
    assert [p.name for p in removed] == ["nightly-20240101T000000Z"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "nightly-20231231T000000Z", "nightly-20240102T000000Z", "nightly-20240103T000000Z",
        "nightly-full-20230101T000000Z", "nightly-full-20230102T000000Z", "nightly-full-20230103T000000Z",
        "nightly-notes", "other-20230101T000000Z",
    ]  # fmt: skip
    assert (written / FINISHED).is_file()
    assert prune_exports(tmp_path / "nightly-full-20230103T000000Z", "nightly-full", keep=1) == [
        tmp_path / "nightly-full-20230101T000000Z", tmp_path / "nightly-full-20230102T000000Z"]
    assert (tmp_path / "nightly-20240102T000000Z").is_dir()  # nightly's own are nightly-full's to leave


def test_the_export_just_written_is_never_pruned_even_when_older_names_sort_after_it(tmp_path: Path) -> None:
    """A run whose scheduled time is older than a finished one's (a late run, a clock set back)."""
    for stamp in ("20240102T000000Z", "20240103T000000Z"):
        finished(tmp_path / f"nightly-{stamp}")
    late = tmp_path / "nightly-20240101T000000Z"
    late.mkdir()
    assert prune_exports(late, "nightly", keep=1) == [tmp_path / "nightly-20240102T000000Z"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nightly-20240101T000000Z", "nightly-20240103T000000Z"]


EXPORT_SPEC = {
    "source": {"trackingUri": "http://mlflow-a:5000"},
    "objects": {"experiments": ["churn"], "modelVersions": [{"model": "m", "version": "3"}]},
    "destination": {"pvc": {"claimName": "exports"}},
}
IMPORT_SPEC = {
    "destination": {"trackingUri": "http://mlflow-b:5000"},
    "source": {"exportRef": {"name": "nightly"}},
    "target": {"experimentName": "copy", "renames": {"models": {"m": "m-copy"}}},
    "options": {"importSourceTags": True},
}
SYNC_SPEC = {
    "source": {"trackingUri": "http://mlflow-a:5000"},
    "kiroframe": {"url": "https://kiroframe.example", "tokenSecret": {"name": "kf", "key": "token"}},
    "schedule": "*/5 * * * *",
}


def test_the_spec_is_validated_once_into_its_kinds_model() -> None:
    spec = read_spec(JobPayload(kind="MlflowExport", name="n", namespace="d", spec=EXPORT_SPEC))
    assert spec.objects.model_versions == [ModelVersionRef(model="m", version="3")]
    with pytest.raises(UsageError, match="invalid MlflowImport spec: destination"):
        read_spec(JobPayload(kind="MlflowImport", name="n", namespace="d", spec={"source": {}}))


def test_export_and_import_jobs_hand_the_specs_models_to_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from ferry.engine import service

    calls: list[tuple] = []
    monkeypatch.setattr(service, "export_objects", lambda *args, **kwargs: calls.append(args) or Outcome())
    monkeypatch.setattr(service, "import_objects", lambda *args, **kwargs: calls.append(args) or Outcome())
    payload = JobPayload(kind="MlflowExport", name="n", namespace="d", spec=EXPORT_SPEC, output_path="/data/x")
    spec = read_spec(payload)
    execute(engines.run_export, spec, payload, None)
    assert calls[-1] == ("http://mlflow-a:5000", Path("/data/x"), spec.objects, ExportOptions())

    payload = JobPayload(kind="MlflowImport", name="n", namespace="d", spec=IMPORT_SPEC, input_path="/data/x")
    execute(engines.run_import, read_spec(payload), payload, None)
    uri, _, options, target = calls[-1]
    assert (uri, options) == ("http://mlflow-b:5000", ImportOptions(import_source_tags=True))
    assert target == ImportTarget.model_validate(IMPORT_SPEC["target"])


def test_a_sync_job_takes_the_resources_options_and_the_watermark(monkeypatch: pytest.MonkeyPatch) -> None:
    from ferry.kiroframe import sync

    seen = []
    monkeypatch.setattr(sync, "run_sync", lambda settings, **_: seen.append(settings) or Outcome())
    monkeypatch.setenv("KIROFRAME_TOKEN", "secret")
    payload = JobPayload(kind="KiroframeSync", name="n", namespace="d", spec=SYNC_SPEC, watermark=1700000000000)
    execute(engines.run_kiroframe, read_spec(payload), payload, None)
    with_options = {**SYNC_SPEC, "options": {"runPageSize": 50, "incremental": False}}
    payload = JobPayload(kind="KiroframeSync", name="n", namespace="d", spec=with_options, watermark=1700000000000)
    execute(engines.run_kiroframe, read_spec(payload), payload, None)
    defaults, given = seen
    assert {name: getattr(defaults, name) for name in KiroframeOptions.model_fields} == KiroframeOptions().model_dump()
    assert (defaults.since, defaults.token, defaults.tracking_url) == (1700000000000, "secret", "http://mlflow-a:5000")
    assert (given.run_page_size, given.incremental, given.since) == (50, False, None)


MIRROR_SPEC = {
    "source": {"trackingUri": "http://mlflow-a:5000", "credentialsSecret": {"name": "primary"}},
    "destination": {"trackingUri": "http://mlflow-b:5000", "credentialsSecret": {"name": "standby"}},
    "objects": {"experiments": ["churn"]},
    "renames": {"experiments": {"churn": "standby-churn"}},
    "options": {"fullCompareEvery": "12h"},
    "schedule": "*/5 * * * *",
}


def test_a_mirror_job_talks_to_each_server_with_its_own_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Job's SRC_* variables are the source's credentials, DST_* the destination's; the payload's
    watermark and last full comparison reach the engine as they are."""
    calls: list[tuple[tuple, dict]] = []
    engine = types.ModuleType("ferry.engine.mirror")  # the adapter alone: the engine is tested in tests/engine
    engine.mirror = lambda *args, **kwargs: calls.append((args, kwargs)) or Outcome()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ferry.engine.mirror", engine)
    for name in ("TOKEN", "USERNAME", "PASSWORD"):
        monkeypatch.delenv(f"MLFLOW_TRACKING_{name}", raising=False)
    monkeypatch.setenv("SRC_MLFLOW_TRACKING_USERNAME", "reader")
    monkeypatch.setenv("SRC_MLFLOW_TRACKING_PASSWORD", "read-secret")
    monkeypatch.setenv("DST_MLFLOW_TRACKING_TOKEN", "write-token")
    payload = JobPayload(kind="MlflowMirror", name="n", namespace="d", spec=MIRROR_SPEC, watermark=1700000000000,
                         last_full_compare=1699990000000)
    spec = read_spec(payload)
    execute(engines.ENGINES["MlflowMirror"], spec, payload, None)
    ((source, destination, objects, options, renames), kwargs), = calls
    assert (source.uri, destination.uri) == ("http://mlflow-a:5000", "http://mlflow-b:5000")
    assert (source.transport.settings.username, source.transport.settings.password) == ("reader", "read-secret")
    assert source.transport.settings.token is None
    assert destination.transport.settings.token == "write-token" and destination.transport.settings.username is None
    assert (objects, options, renames) == (spec.objects, spec.options, spec.renames)
    assert options.full_compare_every == "12h" and renames.experiments == {"churn": "standby-churn"}
    assert (kwargs["since"], kwargs["last_full_compare"]) == (1700000000000, 1699990000000)
