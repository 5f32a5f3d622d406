"""An import's webhook secrets reach its Job as a read-only Secret volume, never as values anywhere else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import ferry.engine.service as service
from ferry.api.job import ENV_VAR, JobPayload
from ferry.api.mlflow_import import WEBHOOK_SECRETS_DIR
from ferry.api.resources import MLFLOW_IMPORT
from ferry.controller.jobs import build_job
from ferry.controller.resource import Resource
from ferry.controller.settings import OperatorSettings
from ferry.outcome import Outcome
from ferry.runner.engines import run_import

SPEC = {
    "destination": {"trackingUri": "http://mlflow:5000"},
    "source": {"pvc": {"claimName": "backups", "subPath": "nightly"}},
    "webhookSecrets": {"secretName": "registry-hooks"},
}


def import_job(spec: dict) -> dict:
    body = {"apiVersion": "ferry.dev/v1alpha1", "kind": "MlflowImport", "spec": spec,
            "metadata": {"name": "restore", "namespace": "ml", "uid": "5678-ef", "generation": 1}}
    return build_job(Resource(MLFLOW_IMPORT, body), MLFLOW_IMPORT.spec.model_validate(spec), job_name="restore-1",
                     settings=OperatorSettings(job_image="ferry:test"), claim_name="backups", claim_read_only=True,
                     input_path="/data/nightly")


def test_the_secret_is_mounted_read_only_where_the_runner_reads_it() -> None:
    pod = import_job(SPEC)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["webhook-secrets"] == {"name": "webhook-secrets",
                                          "secret": {"secretName": "registry-hooks", "defaultMode": 0o440}}
    [container] = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["webhook-secrets"] == {"name": "webhook-secrets", "mountPath": WEBHOOK_SECRETS_DIR,
                                         "readOnly": True}
    assert "envFrom" not in container  # the Secret is not the Job's environment
    assert not [e for e in container["env"] if "registry-hooks" in json.dumps(e.get("valueFrom", {}))]
    payload = json.loads({e["name"]: e for e in container["env"]}[ENV_VAR]["value"])
    assert payload["spec"]["webhookSecrets"] == {"secretName": "registry-hooks"}  # by reference only
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]  # the 0440 files are readable


def test_without_webhook_secrets_there_is_no_such_volume() -> None:
    spec = {k: v for k, v in SPEC.items() if k != "webhookSecrets"}
    pod = import_job(spec)["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["scratch", "data"]


def test_the_runner_hands_the_mounted_directory_to_the_engine(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """The engine's own import is replaced: this checks only what the runner passes it."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr(service, "import_objects", lambda *a, **kw: seen.update(kw) or Outcome())
    payload = JobPayload(kind="MlflowImport", name="restore", namespace="ml", spec=SPEC, input_path=str(tmp_path))
    run_import(MLFLOW_IMPORT.spec.model_validate(SPEC), payload, None)
    assert str(seen["webhook_secrets"]) == WEBHOOK_SECRETS_DIR
    spec = {k: v for k, v in SPEC.items() if k != "webhookSecrets"}
    run_import(MLFLOW_IMPORT.spec.model_validate(spec), payload, None)
    assert seen["webhook_secrets"] is None
