"""Operator settings: defaults for the Jobs it creates and the pace of its periodic look.

Read from the environment (``FERRY_*``; the Helm chart sets them, and the ``ferry operator``
flags are put there before the operator starts) when the operator starts. Nothing here changes what a
resource means; only how Jobs are dressed, how often the operator looks, and what a resource may ask
of its Job (`policy`, the cluster admin's tenancy rules: `ferry.controller.policy`).
"""

from __future__ import annotations

import os

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ferry import __version__
from ferry.controller.policy import Policy


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FERRY_", extra="ignore")

    job_image: str = f"ghcr.io/mlflow-ferry/mlflow-ferry:{__version__}"
    job_image_pull_policy: str = "IfNotPresent"
    job_service_account: str = Field(default="ferry-job", description="ServiceAccount Jobs run as by default.")
    job_backoff_limit: int = 1
    job_active_deadline_seconds: int = 6 * 3600
    job_ttl_seconds_after_finished: int = 24 * 3600
    job_start_timeout_seconds: int = Field(
        default=300, ge=1, description="How long a Job's pod may take to start before the resource is Failed."
    )
    job_cpu_request: str = "100m"
    job_memory_request: str = "256Mi"
    job_memory_limit: str = "2Gi"
    job_run_as_user: int = 65532
    metrics_port: int = Field(
        default=8081, ge=0, le=65535, description="Port of the Prometheus /metrics endpoint; 0 turns it off."
    )
    schedule_tick_seconds: float = Field(
        default=5.0, gt=0, description="How often schedules, and imports waiting for their export, are looked at."
    )
    export_ref_grace_seconds: float = Field(
        default=30.0, ge=0, description="How long an import waits for its MlflowExport to appear at all."
    )
    api_server_hosts: list[str] = Field(
        default_factory=lambda: [h for h in (os.environ.get("KUBERNETES_SERVICE_HOST"),) if h],
        description="Addresses of the Kubernetes API server, refused as internal hosts (FERRY_API_SERVER_HOSTS, "
        "JSON); by default the in-cluster KUBERNETES_SERVICE_HOST.",
    )
    policy: Policy = Field(
        default_factory=Policy,
        description="What a resource may ask of its Job (FERRY_POLICY, JSON; Helm value policy): images, "
        "ServiceAccounts, env, credentials Secrets, hosts, resources.",
    )
