"""The CRDs, the RBAC manifests and the Jobs the operator builds are valid for Kubernetes 1.28 and newer."""

from __future__ import annotations

from pathlib import Path

import yaml

from ferry.api.resources import KIROFRAME_SYNC, MLFLOW_EXPORT, MLFLOW_IMPORT, MLFLOW_MIRROR
from ferry.controller.jobs import build_job
from ferry.controller.resource import Resource
from ferry.controller.settings import OperatorSettings
from tests.packaging.newer_kubernetes import problems, versions

ROOT = Path(__file__).resolve().parents[2]
META = {"namespace": "ml", "uid": "0d9c7e7a-1", "generation": 1, "creationTimestamp": "2024-01-01T00:00:00Z"}
SPECS = {
    MLFLOW_EXPORT: {
        "source": {"trackingUri": "http://mlflow:5000", "credentialsSecret": {"name": "creds"}},
        "objects": {"experiments": ["*"]}, "destination": {"pvc": {"claimName": "backups"}},
        "job": {"resources": {"limits": {"memory": "1Gi"}}, "nodeSelector": {"pool": "batch"},
                "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
                "env": [{"name": "EXTRA", "value": "1"}]},
    },
    MLFLOW_IMPORT: {"destination": {"trackingUri": "http://mlflow:5000"}, "source": {"pvc": {"claimName": "b"}}},
    KIROFRAME_SYNC: {"schedule": "0 * * * *", "source": {"trackingUri": "http://mlflow:5000"},
                     "kiroframe": {"url": "https://kf.example", "tokenSecret": {"name": "kf"}}},
    MLFLOW_MIRROR: {"schedule": "*/5 * * * *",
                    "source": {"trackingUri": "http://mlflow:5000", "credentialsSecret": {"name": "primary"}},
                    "destination": {"trackingUri": "http://standby:5000", "credentialsSecret": {"name": "standby"}}},
}  # fmt: skip


def manifests(folder: Path) -> list[dict]:
    return [doc for path in sorted(folder.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_schemas_of_current_releases_are_there() -> None:
    assert versions()[0].startswith("1.28") and len(versions()) >= 5


def test_crds_and_rbac_are_valid_for_newer_kubernetes() -> None:
    assert problems([*manifests(ROOT / "crds"), *manifests(ROOT / "deploy" / "rbac")]) == []


def test_the_jobs_the_operator_builds_are_valid_for_newer_kubernetes() -> None:
    jobs = []
    for kind, spec in SPECS.items():
        resource = Resource(kind, {"metadata": {"name": kind.singular, **META}, "spec": spec})
        jobs.append(build_job(resource, kind.spec.model_validate(spec), job_name=f"{kind.singular}-1",
                              settings=OperatorSettings(), claim_name="backups"))
    assert problems(jobs) == []
