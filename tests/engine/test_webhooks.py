"""Model registry webhooks (MLflow >= 3.3) between two real servers, and their signing secrets.

MLflow never returns a secret, so the tests check one by its effect: the destination's test
delivery to a receiver on 127.0.0.1 must carry the signature MLflow computes with that secret
(``mlflow/webhooks/delivery.py``: HMAC-SHA256 of ``<delivery id>.<timestamp>.<body>``, base64,
``v1,`` prefix). The session servers allow http URLs on private addresses for this
(``tests/conftest.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from mlflow.genai.scorers import Guidelines

from devstack.mlflow_server import MlflowServer
from ferry.cli.models import export_models, import_models
from ferry.engine.service import export_objects, import_objects
from ferry.engine.webhooks import (
    SKIPPED_SECRET,
    WEBHOOKS_DIR,
    WEBHOOKS_FILE,
    export_webhooks,
    import_webhooks,
    load_secrets,
)
from ferry.errors import InputError
from ferry.options import ExportOptions, ImportOptions, Selection
from ferry.tracking import TrackingClient
from ferry.tracking.scorers import Scorers
from tests.engine.registry_seed import seed_model

SECRET = "whsec-signed-by-the-source"


class Receiver(ThreadingHTTPServer):
    """Records every POST (headers and body) and answers 200."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], str]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.server.deliveries.append((dict(self.headers.items()), body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def hooks(mlflow_src: MlflowServer, mlflow_dst: MlflowServer, receiver: Receiver, unique: str) -> Iterator[list[str]]:
    """Two webhooks on the source, one with a secret; every webhook of this test is deleted afterwards."""
    src = MlflowClient(mlflow_src.uri)
    src.create_webhook(f"signed-{unique}", f"{receiver.url}/signed", ["model_version.created",
                       "registered_model.created"], description="deploy on new versions", secret=SECRET)
    src.create_webhook(f"plain-{unique}", f"{receiver.url}/plain", ["prompt.created"], status="DISABLED")
    yield [f"signed-{unique}", f"plain-{unique}"]
    for uri in (mlflow_src.uri, mlflow_dst.uri):  # the servers are shared: leave no URL behind
        client = MlflowClient(uri)
        for hook in client.list_webhooks(max_results=1000):
            if hook.name.endswith(unique):
                client.delete_webhook(hook.webhook_id)


def view(uri: str, names: list[str]) -> dict[str, list[dict]]:
    """The webhooks named, as MLflow's own client reads them: every field an import must reproduce."""
    found: dict[str, list[dict]] = {}
    for hook in MlflowClient(uri).list_webhooks(max_results=1000):
        if hook.name in names:
            found.setdefault(hook.name, []).append({
                "url": hook.url, "events": sorted(str(e) for e in hook.events), "description": hook.description,
                "status": str(hook.status)})
    return found


def hook_id(uri: str, name: str) -> str:
    [hook] = [h for h in MlflowClient(uri).list_webhooks(max_results=1000) if h.name == name]
    return hook.webhook_id


def delivered_signature(uri: str, name: str, receiver: Receiver) -> tuple[str | None, str]:
    """Have `uri` post a test delivery of webhook `name`; (the signature it sent, the one SECRET gives)."""
    before = len(receiver.deliveries)
    result = MlflowClient(uri).test_webhook(hook_id(uri, name))
    assert result.success, result.error_message
    headers, body = receiver.deliveries[before]
    signed = f"{headers['X-MLflow-Delivery-Id']}.{headers['X-MLflow-Timestamp']}.{body}"
    expected = "v1," + base64.b64encode(hmac.new(SECRET.encode(), signed.encode(), hashlib.sha256).digest()).decode()
    return headers.get("X-MLflow-Signature"), expected


def test_webhooks_round_trip_field_by_field_with_their_secret_and_a_rerun_creates_nothing(
        mlflow_src: MlflowServer, mlflow_dst: MlflowServer, src_client: TrackingClient, dst_client: TrackingClient,
        hooks: list[str], receiver: Receiver, tmp_path: Path) -> None:
    signed, plain = hooks
    outcome = export_webhooks(src_client, tmp_path, hooks)
    assert (outcome.phase, outcome.message, outcome.counts.webhooks) == ("Succeeded", "2 webhooks", 2)
    doc = json.loads((tmp_path / WEBHOOKS_FILE).read_text())
    assert doc["system"]["mlflow_tracking_uri"] == src_client.uri
    assert [h["name"] for h in doc["mlflow"]["webhooks"]] == [plain, signed]
    assert doc["mlflow"]["webhooks"][1]["events"] == [{"entity": "MODEL_VERSION", "action": "CREATED"},
                                                      {"entity": "REGISTERED_MODEL", "action": "CREATED"}]

    outcome = import_webhooks(dst_client, tmp_path, secrets={signed: SECRET, plain: ""})
    assert outcome.phase == "Succeeded", outcome.failed
    assert outcome.message == "2 webhooks (2 created, 0 already there)"
    assert view(mlflow_dst.uri, hooks) == view(mlflow_src.uri, hooks)
    assert view(mlflow_dst.uri, hooks)[plain] == [{"url": f"{receiver.url}/plain", "events": ["prompt.created"],
                                                   "description": None, "status": "DISABLED"}]

    sent, expected = delivered_signature(mlflow_dst.uri, signed, receiver)
    assert sent == expected  # the destination signs with the source's secret
    assert "X-MLflow-Signature" not in delivered_headers(mlflow_dst.uri, plain, receiver)  # and this one has none

    again = import_webhooks(dst_client, tmp_path, secrets={signed: SECRET, plain: ""})
    assert (again.phase, again.message) == ("Succeeded", "2 webhooks (0 created, 2 already there)")
    assert {k: len(v) for k, v in view(mlflow_dst.uri, hooks).items()} == {signed: 1, plain: 1}


def delivered_headers(uri: str, name: str, receiver: Receiver) -> dict[str, str]:
    before = len(receiver.deliveries)
    assert MlflowClient(uri).test_webhook(hook_id(uri, name)).success
    return receiver.deliveries[before][0]


def test_a_webhook_without_a_secret_is_created_and_reported_until_the_secrets_file_gives_it(
        mlflow_src: MlflowServer, mlflow_dst: MlflowServer, hooks: list[str], receiver: Receiver,
        tmp_path: Path) -> None:
    signed, plain = hooks
    out = tmp_path / "export"
    exported = export_objects(mlflow_src.uri, out, Selection(webhooks=["*"]), ExportOptions())
    assert exported.phase == "Succeeded", exported.failed
    assert (out / WEBHOOKS_DIR / WEBHOOKS_FILE).is_file()

    first = import_objects(mlflow_dst.uri, out, ImportOptions())  # no secrets at all
    assert first.phase == "PartiallyFailed"
    mine = sorted(f for f in first.failed if signed in f or plain in f)
    assert [(signed in f or plain in f) and SKIPPED_SECRET in f for f in mine] == [True, True]
    assert "webhook secrets file" in mine[0]
    assert view(mlflow_dst.uri, hooks) == view(mlflow_src.uri, hooks)  # created all the same
    assert "X-MLflow-Signature" not in delivered_headers(mlflow_dst.uri, signed, receiver)

    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(f"{signed}: {SECRET}\n{plain}: ''\n")
    second = import_objects(mlflow_dst.uri, out, ImportOptions(), webhook_secrets=secrets)
    assert not [f for f in second.failed if signed in f or plain in f], second.failed
    assert {k: len(v) for k, v in view(mlflow_dst.uri, hooks).items()} == {signed: 1, plain: 1}
    sent, expected = delivered_signature(mlflow_dst.uri, signed, receiver)
    assert sent == expected  # the rerun set the secret on the webhook it had created


def test_export_models_and_import_models_carry_webhooks_and_the_experiments_scorers(
        mlflow_src: MlflowServer, mlflow_dst: MlflowServer, src_client: TrackingClient, dst_client: TrackingClient,
        hooks: list[str], receiver: Receiver, unique: str, tmp_path: Path) -> None:
    signed, plain = hooks
    model = seed_model(mlflow_src.uri, f"hooked-{unique}", tmp_path / "seed", versions=1)
    experiment = model.experiments[1]  # version 1's run is in the second experiment
    exp_id = MlflowClient(mlflow_src.uri).get_experiment_by_name(experiment).experiment_id
    mlflow.set_tracking_uri(mlflow_src.uri)  # scorers register through the global client
    Guidelines(name="polite", guidelines=["Be polite"]).register(name="polite", experiment_id=exp_id)

    out, runner = tmp_path / "bulk", CliRunner()
    exported = runner.invoke(export_models, ["--models", model.name, "--output-dir", str(out),
                                             "--webhooks", f"{signed},{plain}"],
                             env={"MLFLOW_TRACKING_URI": mlflow_src.uri}, catch_exceptions=False)
    assert exported.exit_code == 0, exported.output
    assert "2 webhooks" in exported.output and "1 scorers" in exported.output

    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({signed: SECRET}))
    imported = runner.invoke(import_models, ["--input-dir", str(out), "--webhook-secrets-file", str(secrets)],
                             env={"MLFLOW_TRACKING_URI": mlflow_dst.uri}, catch_exceptions=False)
    assert imported.exit_code == 3, imported.output  # plain has no entry: reported
    assert f"Failed: webhook '{plain}' ({receiver.url}/plain): {SKIPPED_SECRET}: " in imported.output
    assert "2 webhooks" in imported.output and f"webhook '{signed}'" not in imported.output
    assert view(mlflow_dst.uri, hooks) == view(mlflow_src.uri, hooks)
    sent, expected = delivered_signature(mlflow_dst.uri, signed, receiver)
    assert sent == expected

    dst_exp = dst_client.get_experiment_by_name(experiment)
    assert dst_exp is not None
    src_versions = Scorers(src_client).versions(exp_id, "polite")
    dst_versions = Scorers(dst_client).versions(dst_exp["experiment_id"], "polite")
    assert [v["serialized_scorer"] for v in dst_versions] == [v["serialized_scorer"] for v in src_versions]


def test_a_server_without_webhooks_has_none_to_export(mlflow2: TrackingClient, tmp_path: Path) -> None:
    outcome = export_webhooks(mlflow2, tmp_path)
    assert outcome.phase == "Succeeded" and outcome.counts.webhooks == 0
    assert outcome.message == f"0 webhooks (MLflow at {mlflow2.uri} has no webhooks (before MLflow 3.3))"
    assert not (tmp_path / WEBHOOKS_FILE).exists()


def test_secrets_come_from_json_yaml_or_a_mounted_secret(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"a": "1", "b": null}')
    assert load_secrets(tmp_path / "s.json") == {"a": "1", "b": None}
    (tmp_path / "s.yaml").write_text("a: '1'\nb: ''\n")
    assert load_secrets(tmp_path / "s.yaml") == {"a": "1", "b": ""}
    mounted = tmp_path / "mounted"  # what the kubelet writes for a Secret volume
    (mounted / "..2026_01_01").mkdir(parents=True)
    (mounted / "..2026_01_01" / "hook-a").write_text("s3cr3t\n")
    (mounted / "..data").symlink_to("..2026_01_01")
    (mounted / "hook-a").symlink_to("..data/hook-a")
    assert load_secrets(mounted) == {"hook-a": "s3cr3t"}
    with pytest.raises(InputError, match="does not exist"):
        load_secrets(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(InputError, match="not a mapping of webhook names to secrets"):
        load_secrets(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("a: [\n")
    with pytest.raises(InputError, match="is not JSON or YAML"):
        load_secrets(tmp_path / "bad.yaml")
