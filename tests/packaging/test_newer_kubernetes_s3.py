"""The Jobs of an export to and an import from an S3 bucket are valid for Kubernetes 1.28 and newer.

They differ from the claim's Jobs in what a schema checks: no data volume, and the bucket's keys
as ``secretKeyRef`` variables, one of them ``optional``.
"""

from __future__ import annotations

from ferry.api.resources import MLFLOW_EXPORT, MLFLOW_IMPORT
from ferry.controller.lifecycle import Observed, decide
from ferry.controller.settings import OperatorSettings
from tests.packaging.newer_kubernetes import problems
from tests.unit.decisions import NOW, created_job, resource
from tests.unit.test_decide_s3 import EXPORT_SPEC, S3


def test_s3_jobs_are_valid_for_newer_kubernetes() -> None:
    settings = OperatorSettings(job_image="ferry:test")
    export = resource(MLFLOW_EXPORT, EXPORT_SPEC)
    restore = resource(MLFLOW_IMPORT, {"destination": {"trackingUri": "http://mlflow:5000"}, "source": {"s3": S3}},
                       name="restore")  # fmt: skip
    jobs = [created_job(decide(r, Observed(), NOW, settings)).job for r in (export, restore)]
    assert all("valueFrom" in e for j in jobs for e in j["spec"]["template"]["spec"]["containers"][0]["env"][-3:])
    assert problems(jobs) == []
