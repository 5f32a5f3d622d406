"""An MlflowExport into an S3 bucket and an MlflowImport of it by exportRef, on the real control plane.

The bucket is SeaweedFS (`devstack.s3`) with SigV4 keys; the keys reach the Jobs only through a
Secret read key by key. Applied before its Secret exists, the export is Pending with the
kubelet's reason and starts once the Secret appears; then, as a user reads it with kubectl: both
Succeeded, status.path the export's s3:// URL, the destination server equal to the source, and
the secret key nowhere but in its Secret (resources, Jobs, Events, the operator's and the Jobs' logs).
The test writes under a prefix of its own in the direct production server's bucket (the store has
room for the production servers' two buckets only).
"""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from devstack.cluster.logs import read_log
from devstack.cluster.pytest_plugin import wait_for
from devstack.s3 import REGION, S3Server
from tests.e2e.test_export_import import seed

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

FINISHED = {"Succeeded", "PartiallyFailed", "Failed"}


@pytest.fixture
def bucket(exports_bucket: str) -> str:
    return exports_bucket


def test_export_to_a_bucket_then_import_it_by_export_ref(operator, res, k8s_cluster, mlflow_src, mlflow_dst,
                                                         s3: S3Server, bucket: str, unique: str) -> None:
    experiment, model = seed(mlflow_src.uri, unique)
    prefix = f"ferry-e2e/{unique}/backup"
    url = f"s3://{bucket}/{prefix}"
    place = {"bucket": bucket, "prefix": prefix, "endpoint": s3.endpoint_url, "region": REGION,
             "credentialsSecret": {"name": "backup-s3"}}  # fmt: skip
    res.create("MlflowExport", "backup", {
        "source": {"trackingUri": mlflow_src.uri},
        "objects": {"experiments": [experiment], "models": [model]},
        "destination": {"s3": place},
    })  # fmt: skip
    res.create("MlflowImport", "restore", {
        "destination": {"trackingUri": mlflow_dst.uri}, "source": {"exportRef": {"name": "backup"}},
    })  # fmt: skip

    # Honest status at start: no Secret yet, so the pod cannot start and status says why.
    missing = 'secret "backup-s3" not found'
    stuck = wait_for(lambda: (s := res.status("MlflowExport", "backup")).get("phase") == "Pending"
                     and missing in (s.get("message") or "") and s, 30, "the missing Secret in status")
    assert {c["type"]: c for c in stuck["conditions"]}["Succeeded"]["reason"] == "CreateContainerConfigError"
    res.secret("backup-s3", {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key})

    exported = res.wait_phase("MlflowExport", "backup", FINISHED, timeout=180)
    assert exported["phase"] == "Succeeded", exported
    assert exported["path"] == url and "claimName" not in exported
    assert exported["counts"]["experiments"] == 1 and exported["counts"]["runs"] == 4
    assert exported["counts"]["models"] == 1 and exported["counts"]["versions"] == 1
    keys = s3.keys(bucket, prefix + "/")
    assert keys and all(k.startswith(prefix + "/") for k in keys)
    (job,) = res.jobs("backup")
    pod = job.spec.template.spec
    assert [v.name for v in pod.volumes] == ["scratch"]  # no claim for a bucket
    by_name = {e.name: e for e in pod.containers[0].env}
    assert by_name["AWS_SECRET_ACCESS_KEY"].value_from.secret_key_ref.name == "backup-s3"
    assert by_name["AWS_SESSION_TOKEN"].value_from.secret_key_ref.optional is True

    imported = res.wait_phase("MlflowImport", "restore", FINISHED, timeout=180)
    assert imported["phase"] == "Succeeded", imported
    assert imported["sourcePath"] == url
    src, dst = MlflowClient(mlflow_src.uri), MlflowClient(mlflow_dst.uri)
    src_runs = {r.info.run_name: r for r in src.search_runs([src.get_experiment_by_name(experiment).experiment_id])}
    dst_exp = dst.get_experiment_by_name(experiment)
    assert dst_exp is not None
    dst_runs = {r.info.run_name: r for r in dst.search_runs([dst_exp.experiment_id])}
    assert set(dst_runs) == set(src_runs)
    for name, run in src_runs.items():
        got = dst_runs[name]
        assert (got.data.params, got.data.metrics, got.data.tags.get("mlflow.runName")) == (
            run.data.params, run.data.metrics, run.data.tags.get("mlflow.runName"))
        assert (got.info.start_time, got.info.end_time, got.info.status) == (
            run.info.start_time, run.info.end_time, run.info.status)
        history = [(m.step, m.value) for m in dst.get_metric_history(got.info.run_id, "loss")]
        assert history == [(m.step, m.value) for m in src.get_metric_history(run.info.run_id, "loss")]
    assert [v.version for v in dst.search_model_versions(f"name='{model}'")] == ["1"]

    # The secret key is nowhere but in its Secret.
    seen = [str(res.get("MlflowExport", "backup")), str(res.get("MlflowImport", "restore")), operator.log()]
    seen += [str(e.message) for e in res.core.list_namespaced_event(res.namespace).items]
    seen += [str(j.to_dict()) for j in res.jobs()]
    pods = res.core.list_namespaced_pod(res.namespace, label_selector="ferry.dev/kind").items
    assert len(pods) >= 2
    seen += [read_log(res.namespace, p.metadata.name, None, k8s_cluster.state_dir) for p in pods]
    assert not [text[:200] for text in seen if s3.secret_key in text]
