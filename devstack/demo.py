"""`make demo`: the whole product on this machine, without Docker, in a few minutes.

    python -m devstack.demo up      # start everything, apply examples/, wait, compare, leave it running
    python -m devstack.demo status  # what is running, `kubectl get ferry -A`
    python -m devstack.demo down    # stop every process by its recorded pid and delete .demo/

`up` starts the local control plane (state in `.demo/k8s`), two MLflow servers (the source seeded
with the `demo` workload: experiments with metric history, nested runs, datasets, a registered
model with versions, stages and aliases; and MLflow 3's objects, `devstack.genai_workload`: a
logged model, traces with assessments, a prompt with an alias, an evaluation dataset; the
destination production-shaped: PostgreSQL, artifacts in S3, MLflow's basic auth), an S3 endpoint
(SeaweedFS, for the destination's artifacts and the S3 backup), the Kiroframe stand-in, installs
the Helm chart, and
applies every file of `examples/` as it is, except for what only makes sense in a real cluster:
service URLs, object names, the schedules and the bucket's region are rewritten for the local
servers (see `rewrites`), and an S3 destination without an endpoint gets the local one, in
memory; the files are not touched.

The mirror (`examples/mlflow-mirror.yaml`, the source kept in step on the destination) comes
once the one-off resources are done (the schedules' first runs go on meanwhile): the import
writes to the same server, and two writers copying one run at the same moment would each make a
copy. Its first sync is asked for with the `ferry.dev/sync-now` annotation; while it runs, a few
runs are logged on the source and one more sync is asked for, and the demo waits for the sync
that carries them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import requests
import yaml
from kubernetes import client, config
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from devstack.cluster.control_plane import Cluster
from devstack.cluster.paths import bin_dir
from devstack.compare import differences, format_table, snapshot, summary_rows
from devstack.genai_workload import seed_genai
from devstack.helm import install
from devstack.mlflow_server import BasicAuth, MlflowServer
from devstack.postgres import PostgresCluster
from devstack.procs import free_port, spawn, stop_pid, wait_until
from devstack.s3 import REGION as S3_REGION
from devstack.s3 import S3Server
from devstack.workload import WORKLOADS, seed
from ferry.api import API_VERSION, BY_KIND
from ferry.api.mirror import SYNC_NOW_ANNOTATION
from ferry.controller.policy import CREDENTIALS_LABEL

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".demo"
STATE = DEMO / "state.json"
PIDS = DEMO / "pids"             # one pid a line, written as each process starts
EXAMPLES = ROOT / "examples"
NAMESPACE = "ml"                 # where the examples are applied (the operator watches it)
SYSTEM = "ferry-system"          # where the chart is installed
RELEASE = "ferry"
PVC = "mlflow-backups"
WORKLOAD = WORKLOADS["demo"]
SOURCE_EXPERIMENT = WORKLOAD.experiment_name(0)   # "churn-prediction"
SOURCE_MODEL = WORKLOAD.model_name(0)             # "demo-model-0"
LIVE_EXPERIMENT = WORKLOAD.experiment_name(1)     # where runs are logged while the mirror runs
LIVE_RUNS = 3
MIRROR = "MlflowMirror"
FINISHED = {"Succeeded", "PartiallyFailed", "Failed"}


ARTIFACTS_BUCKET = "mlflow-artifacts"  # the destination's artifact store
BACKUP_BUCKET = "ml-backups"           # examples/s3-backup.yaml's bucket


@dataclass
class DemoState:
    """Where the demo's servers listen, and the credentials the examples' Secrets carry."""

    source_uri: str
    destination_uri: str
    kiroframe_url: str
    kiroframe_token: str
    destination_username: str
    destination_password: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    postgres_root: str


def record(pid: int | None) -> None:
    """Remember a started process at once, so `down` stops it even if `up` fails later."""
    with PIDS.open("a") as fh:
        fh.write(f"{pid}\n")


def start_mlflow(server: MlflowServer) -> MlflowServer:
    try:
        return server.start(timeout=300)
    finally:
        record(server.pid)


def start_storage() -> tuple[PostgresCluster, S3Server]:
    """PostgreSQL and the S3 endpoint behind the production-shaped destination."""
    postgres, s3 = PostgresCluster(), S3Server(root=DEMO / "s3")
    try:
        postgres.start()
    finally:
        record(postgres.pid)
    try:
        s3.start()
    finally:
        record(s3.pid)
    for bucket in (ARTIFACTS_BUCKET, BACKUP_BUCKET):
        s3.create_bucket(bucket)
    return postgres, s3


def rewrites(state: DemoState) -> dict[str, str]:
    """Exact values of examples/ and what they become here: keys and values, anywhere in a document."""
    return {
        "http://mlflow.ml.svc:5000": state.source_uri,
        "http://mlflow-staging.ml.svc:5000": state.destination_uri,
        "http://mlflow-standby.ml-dr.svc:5000": state.destination_uri,  # the mirror's standby
        "https://my.kiroframe.com": state.kiroframe_url,
        "churn": SOURCE_EXPERIMENT,
        "churn-classifier": SOURCE_MODEL,
        "*/15 * * * *": "* * * * *",  # sync every minute, so the demo shows one
        "*/5 * * * *": "* * * * *",   # the mirror too (its first syncs are asked for: sync-now)
        "eu-west-1": S3_REGION,
    }


def with_local_endpoint(doc: dict[str, Any], state: DemoState) -> dict[str, Any]:
    """An S3 destination or source without an endpoint means AWS; here it is the local SeaweedFS."""
    for part in ("destination", "source"):
        s3 = (doc["spec"].get(part) or {}).get("s3")
        if isinstance(s3, dict) and not s3.get("endpoint"):
            s3["endpoint"] = state.s3_endpoint
    return doc


def rewrite(node: Any, table: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {table.get(k, k): rewrite(v, table) for k, v in node.items()}
    if isinstance(node, list):
        return [rewrite(v, table) for v in node]
    return table.get(node, node) if isinstance(node, str) else node


def say(message: str, started: float) -> None:
    click.echo(f"[{time.monotonic() - started:6.1f}s] {message}", err=True)


def kubectl(cluster: Cluster, *args: str) -> str:
    env = {**os.environ, **cluster.env()}
    result = subprocess.run([str(bin_dir() / "kubectl"), *args], env=env, capture_output=True, text=True)
    return result.stdout + result.stderr


# -- up ---------------------------------------------------------------------------------------------


def start_servers(started: float) -> DemoState:
    """Two MLflow servers (the source seeded, the destination production-shaped), the S3 endpoint
    and the Kiroframe stand-in, while the cluster starts."""
    postgres, s3 = start_storage()
    say(f"PostgreSQL on port {postgres.port}, S3 (SeaweedFS) {s3.endpoint_url}", started)
    auth = BasicAuth(database_uri=postgres.create_database("mlflow_demo_auth"))
    servers = [MlflowServer(root=DEMO / "mlflow-src"),
               MlflowServer(root=DEMO / "mlflow-dst", backend_uri=postgres.create_database("mlflow_demo"),
                            artifacts_destination=f"s3://{ARTIFACTS_BUCKET}/artifacts", auth=auth, s3_env=s3.env())]
    with ThreadPoolExecutor(2) as pool:
        source, destination = pool.map(start_mlflow, servers)
    say(f"MLflow source {source.uri}, destination {destination.uri} (PostgreSQL, artifacts in "
        f"s3://{ARTIFACTS_BUCKET}, basic auth)", started)
    seeded = seed(source.uri, WORKLOAD)
    say(f"seeded the source: {len(seeded.experiments)} experiments, {seeded.runs} runs, "
        f"{seeded.metric_points} metric points, models {seeded.models}", started)
    genai = seed_genai(source.uri, SOURCE_EXPERIMENT)
    say(f"seeded MLflow 3 objects in {SOURCE_EXPERIMENT}: {len(genai.logged_models)} logged model, "
        f"{len(genai.traces)} traces, prompt {genai.prompt} ({genai.prompt_versions} versions), "
        f"evaluation dataset {genai.dataset} ({genai.records} records)", started)
    token = uuid.uuid4().hex
    port = free_port()
    kiroframe = spawn([sys.executable, "-m", "devstack.kiroframe", "--port", str(port), "--token", token],
                      DEMO / "kiroframe.log", cwd=ROOT)
    record(kiroframe.pid)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: requests.get(f"{url}/_standin/records", timeout=2).ok, 30, "Kiroframe stand-in", kiroframe,
               DEMO / "kiroframe.log")
    say(f"Kiroframe stand-in {url}", started)
    return DemoState(source.uri, destination.uri, url, token, auth.admin_username, auth.admin_password,
                     s3.endpoint_url, s3.access_key, s3.secret_key, str(postgres.root))


def prepare_namespace(api: client.ApiClient, state: DemoState) -> None:
    """The namespace the examples go to, with the claim and the Secrets they reference."""
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    core.create_namespaced_persistent_volume_claim(NAMESPACE, {
        "metadata": {"name": PVC},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
    # The local servers need no credentials; the Secret still shows how they are passed (keys -> env).
    # Each carries the label that lets a resource name it as credentials (policy.credentialsSecretLabel).
    secrets = {
        "mlflow-credentials": {"MLFLOW_TRACKING_INSECURE_TLS": "false"},
        "kiroframe-token": {"token": state.kiroframe_token},
        "mlflow-primary-credentials": {"MLFLOW_TRACKING_INSECURE_TLS": "false"},
        **{secret: {"MLFLOW_TRACKING_USERNAME": state.destination_username,  # both name the destination
                    "MLFLOW_TRACKING_PASSWORD": state.destination_password}
           for secret in ("mlflow-staging-credentials", "mlflow-standby-credentials")},
        "backup-s3": {"AWS_ACCESS_KEY_ID": state.s3_access_key, "AWS_SECRET_ACCESS_KEY": state.s3_secret_key},
    }
    key, _, value = CREDENTIALS_LABEL.partition("=")
    for name, data in secrets.items():
        core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": name, "labels": {key: value}},
                                                  "stringData": data})


def rendered_examples(state: DemoState) -> list[dict[str, Any]]:
    """The resources of examples/, rewritten for the local servers."""
    return [with_local_endpoint(rewrite(doc, rewrites(state)), state)
            for path in sorted(EXAMPLES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())
            if doc and doc.get("apiVersion") == API_VERSION]


def apply(api: client.ApiClient, docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    custom = client.CustomObjectsApi(api)
    for doc in docs:
        custom.create_namespaced_custom_object(*API_VERSION.split("/"), NAMESPACE, BY_KIND[doc["kind"]].plural, doc)
    return [(doc["kind"], doc["metadata"]["name"]) for doc in docs]


def wait_for(api: client.ApiClient, applied: list[tuple[str, str]], started: float, timeout: float = 300) -> None:
    """Until each one-off resource has finished and the sync has pushed once (or the time is up)."""
    custom = client.CustomObjectsApi(api)
    group, version = API_VERSION.split("/")
    pending = set(applied)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for kind, name in sorted(pending):
            obj = custom.get_namespaced_custom_object(group, version, NAMESPACE, BY_KIND[kind].plural, name)
            status, spec = obj.get("status") or {}, obj["spec"]
            done = (status.get("lastSuccessfulTime") if kind == "KiroframeSync"
                    else status.get("nextScheduleTime") if spec.get("schedule")
                    else status.get("phase") in {"Succeeded", "PartiallyFailed", "Failed", "FailedValidation"})
            if done:
                what = (f"scheduled, next run {status['nextScheduleTime']}" if kind != "KiroframeSync" and spec.get("schedule")
                        else f"{status.get('phase')} {status.get('message') or ''}".rstrip())
                say(f"{kind} {name}: {what}", started)
                pending.discard((kind, name))
        time.sleep(1)
    for kind, name in sorted(pending):
        say(f"{kind} {name}: still working after {timeout:.0f} s (see `python -m devstack.demo status`)", started)


# -- the mirror ------------------------------------------------------------------------------------


def mirror_status(api: client.ApiClient, name: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(api).get_namespaced_custom_object(*API_VERSION.split("/"), NAMESPACE,
                                                                      BY_KIND[MIRROR].plural, name)
    return obj.get("status") or {}


def request_sync(api: client.ApiClient, name: str, value: str) -> None:
    """`kubectl annotate mlflowmirror <name> ferry.dev/sync-now=<value> --overwrite`."""
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        *API_VERSION.split("/"), NAMESPACE, BY_KIND[MIRROR].plural, name,
        {"metadata": {"annotations": {SYNC_NOW_ANNOTATION: value}}})


def wait_for_sync(api: client.ApiClient, name: str, after: str | None, newer_than_ms: int = 0,
                  timeout: float = 180) -> dict[str, Any]:
    """The status once a sync other than Job `after` has finished (and, if it did not fail, began after
    `newer_than_ms`: its watermark is its start), or the latest status when the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        status = mirror_status(api, name)
        last = status.get("lastResult") or {}
        if last.get("jobName") not in (None, after) and last.get("phase") in FINISHED:
            if last["phase"] == "Failed" or (status.get("watermark") or 0) > newer_than_ms:
                return status
            after = last["jobName"]  # began before the runs ended: the next one carries them
        if time.monotonic() > deadline:
            return status
        time.sleep(1)


def sync_line(name: str, status: dict[str, Any]) -> str:
    last = status.get("lastResult") or {}
    if last.get("phase") not in FINISHED:
        return f"{MIRROR} {name}: no sync finished yet ({status.get('message') or 'see make demo-status'})"
    return (f"{MIRROR} {name}: {last['phase']} ({last.get('message') or ''}), lag {status.get('lagSeconds', '?')} s, "
            f"last sync {status.get('lastSyncTime') or 'none'}")


def log_live_runs(uri: str) -> int:
    """A few finished runs in LIVE_EXPERIMENT, through MLflow's client, as a training job would log them;
    returns when the last one ended (ms)."""
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # no UI link per ended run
    mlflow_client = MlflowClient(tracking_uri=uri)
    experiment_id = mlflow_client.get_experiment_by_name(LIVE_EXPERIMENT).experiment_id
    ended = 0
    for n in range(LIVE_RUNS):
        run = mlflow_client.create_run(experiment_id, run_name=f"retrain-{n}", tags={"trigger": "demo"})
        now = int(time.time() * 1000)
        mlflow_client.log_batch(run.info.run_id, params=[Param("learning_rate", str(0.01 * (n + 1)))],
                                metrics=[Metric("loss", 1.0 / (step + n + 1), now + step, step) for step in range(5)])
        mlflow_client.set_terminated(run.info.run_id)
        ended = max(ended, mlflow_client.get_run(run.info.run_id).info.end_time)
    return ended


def live_comparison(state: DemoState) -> str:
    """LIVE_EXPERIMENT on the source and on the standby, field by field."""
    source = snapshot(state.source_uri, [LIVE_EXPERIMENT], [])
    with destination_login(state):
        destination = snapshot(state.destination_uri, [LIVE_EXPERIMENT], [])
    found = differences(source, destination)
    runs = len((destination["experiments"][LIVE_EXPERIMENT] or {}).get("runs") or {})
    return (f"{LIVE_EXPERIMENT} on the destination: {runs} runs, "
            + ("identical to the source" if not found else f"{len(found)} differences, first {found[0]}"))


def run_mirrors(api: client.ApiClient, state: DemoState, mirrors: list[dict[str, Any]], started: float) -> None:
    """Apply the mirrors with a first sync asked for; while it runs, log runs on the source and ask for
    one more sync; wait for the sync that carries them."""
    for doc in mirrors:
        doc["metadata"].setdefault("annotations", {})[SYNC_NOW_ANNOTATION] = "first"  # not at the next minute
    for kind, name in apply(api, mirrors):
        say(f"applied {kind}/{name} with {SYNC_NOW_ANNOTATION}=first", started)
        deadline = time.monotonic() + 60
        while not mirror_status(api, name).get("jobName") and time.monotonic() < deadline:
            time.sleep(0.5)  # its Job exists: the runs below are logged while that sync runs
        ended = log_live_runs(state.source_uri)
        value = str(ended)
        request_sync(api, name, value)
        say(f"logged {LIVE_RUNS} runs in {LIVE_EXPERIMENT} on the source while the first sync runs; "
            f"annotated {SYNC_NOW_ANNOTATION}={value}", started)
        first = wait_for_sync(api, name, after=None)
        say(sync_line(name, first), started)
        later = wait_for_sync(api, name, after=(first.get("lastResult") or {}).get("jobName"), newer_than_ms=ended)
        say(sync_line(name, later), started)
        say(f"{MIRROR} {name}: {live_comparison(state)}", started)


def mirror_summary(api: client.ApiClient) -> str:
    """Each mirror's lag, last sync and latest result, from its status."""
    custom = client.CustomObjectsApi(api)
    items = custom.list_namespaced_custom_object(*API_VERSION.split("/"), NAMESPACE, BY_KIND[MIRROR].plural)["items"]
    return "\n".join(sync_line(obj["metadata"]["name"], obj.get("status") or {}) for obj in items)


@contextmanager
def destination_login(state: DemoState) -> Iterator[None]:
    """The destination is behind basic auth; MLflow's client reads these."""
    login = {"MLFLOW_TRACKING_USERNAME": state.destination_username,
             "MLFLOW_TRACKING_PASSWORD": state.destination_password}
    os.environ.update(login)
    try:
        yield
    finally:
        for key in login:
            os.environ.pop(key, None)


def comparison(state: DemoState) -> str:
    """One line per kind (runs, models, logged models, traces, prompts, evaluation datasets)."""
    exported = rewrite(yaml.safe_load((EXAMPLES / "mlflow-export.yaml").read_text()), rewrites(state))
    objects = exported["spec"]["objects"]
    imported = rewrite(yaml.safe_load((EXAMPLES / "mlflow-import.yaml").read_text()), rewrites(state))
    renamed = imported["spec"].get("target", {}).get("renames", {}).get("models", {}).get(SOURCE_MODEL, SOURCE_MODEL)
    selected = {"prompts": objects.get("prompts", []), "datasets": objects.get("evaluationDatasets", []),
                "mlflow3": True}
    source = snapshot(state.source_uri, [SOURCE_EXPERIMENT], [SOURCE_MODEL], **selected)
    with destination_login(state):
        destination = snapshot(state.destination_uri, [SOURCE_EXPERIMENT], [renamed], **selected)
    destination["models"] = {SOURCE_MODEL: destination["models"][renamed]}  # compare under the source's name
    rows = [(f"{what} ({SOURCE_MODEL} -> {renamed})" if what == "models" else what, *rest)
            for what, *rest in summary_rows(source, destination)]
    return format_table(rows, ("object", "source", "destination", "copy"))


def s3_summary(api: client.ApiClient, state: DemoState) -> str:
    """Where each export to S3 went and what the bucket holds there."""
    custom = client.CustomObjectsApi(api)
    lines = []
    for obj in custom.list_namespaced_custom_object(*API_VERSION.split("/"), NAMESPACE, "mlflowexports")["items"]:
        path = (obj.get("status") or {}).get("path") or ""
        if not path.startswith("s3://"):
            continue
        bucket, _, prefix = path.removeprefix("s3://").partition("/")
        keys = S3Server(port=int(state.s3_endpoint.rsplit(":", 1)[1]), access_key=state.s3_access_key,
                        secret_key=state.s3_secret_key).keys(bucket, prefix)
        finished = any(key.endswith(".ferry/manifest.json") for key in keys)
        lines.append(f"MlflowExport {obj['metadata']['name']}: {len(keys)} objects in {path}, "
                     f"{'finished (manifest written)' if finished else 'NOT finished (no manifest)'}")
    return "\n".join(lines)


def kiroframe_summary(state: DemoState) -> str:
    records = requests.get(f"{state.kiroframe_url}/_standin/records", timeout=5).json()
    kinds = {1: "experiments", 2: "runs", 3: "model lists"}
    counts = {name: sum(1 for r in records if r.get("import_type") == t) for t, name in kinds.items()}
    return "Kiroframe stand-in received " + ", ".join(f"{n} {name}" for name, n in counts.items())


def operator_pod(cluster: Cluster) -> str:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    pods = client.CoreV1Api(api).list_namespaced_pod(SYSTEM, label_selector=f"app.kubernetes.io/instance={RELEASE}")
    return pods.items[0].metadata.name if pods.items else "<operator pod>"


def instructions(cluster: Cluster, state: DemoState) -> str:
    env = cluster.env()
    return "\n".join([
        "The demo is running. To look around:",
        f"  export KUBECONFIG={shlex.quote(env['KUBECONFIG'])} PATH={shlex.quote(str(bin_dir()))}:$PATH",
        "  kubectl get ferry -A",
        f"  kubectl describe mlflowimport churn-restore -n {NAMESPACE}",
        f"  kubectl annotate mlflowmirror standby -n {NAMESPACE} {SYNC_NOW_ANNOTATION}=\"$(date +%s)\" --overwrite  "
        "# one more sync now; kubectl get mlmirror -A shows its lag",
        f"  .venv/bin/python -m devstack.cluster logs --state-dir .demo/k8s {SYSTEM} {operator_pod(cluster)}",
        f"MLflow UI: source {state.source_uri}  destination {state.destination_uri} "
        f"(user {state.destination_username}, password {state.destination_password})",
        f"S3 endpoint: {state.s3_endpoint} (access key {state.s3_access_key})",
        f"Kiroframe stand-in: {state.kiroframe_url}/_standin/records",
        "Stop everything: make demo-down",
    ])


@click.group()
def main() -> None:
    """The local demo of mlflow-ferry."""


@main.command()
def up() -> None:
    """Start the demo stack, apply examples/, wait, compare source and destination."""
    started = time.monotonic()
    if PIDS.exists():
        raise click.ClickException("the demo is already up (make demo-status); stop it first with make demo-down")
    DEMO.mkdir(exist_ok=True)
    cluster = Cluster(DEMO / "k8s")
    with ThreadPoolExecutor(1) as pool:
        cluster_up = pool.submit(cluster.up)
        try:
            state = start_servers(started)
        finally:
            cluster_up.result()
    STATE.write_text(json.dumps(asdict(state), indent=2))
    say(f"cluster up at {cluster.server}", started)
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    prepare_namespace(api, state)
    # Schedules looked at every second (5 s by default): a requested sync starts at once.
    # The local servers listen on this machine's loopback, where the local kubelet runs the Jobs: an
    # internal address, which an admin lists for Jobs to reach it (policy.allowedInternalHosts).
    install(cluster.kubeconfig, SYSTEM, RELEASE, {"operator": {
        "watchNamespaces": [NAMESPACE], "livenessPort": free_port(),
        "extraEnv": [{"name": "FERRY_SCHEDULE_TICK_SECONDS", "value": "1"}]},
        "policy": {"allowedInternalHosts": ["127.0.0.1"]}})
    say(f"chart installed: release {RELEASE} in {SYSTEM}, watching namespace {NAMESPACE}", started)
    docs = rendered_examples(state)
    mirrors = [doc for doc in docs if doc["kind"] == MIRROR]
    applied = apply(api, [doc for doc in docs if doc["kind"] != MIRROR])
    say(f"applied examples/: {', '.join(f'{k}/{n}' for k, n in applied)}", started)
    one_off = [(doc["kind"], doc["metadata"]["name"]) for doc in docs
               if doc["kind"] != MIRROR and not doc["spec"].get("schedule")]  # the import among them
    wait_for(api, one_off, started)
    with ThreadPoolExecutor(1) as pool:  # the mirror's syncs while the schedules run their first
        mirrored = pool.submit(run_mirrors, api, state, mirrors, started)
        wait_for(api, [a for a in applied if a not in one_off], started)
        mirrored.result()
    click.echo(kubectl(cluster, "get", "ferry", "-A"))
    click.echo(comparison(state))
    click.echo(s3_summary(api, state))
    click.echo(mirror_summary(api))
    click.echo(kiroframe_summary(state) + "\n")
    click.echo(instructions(cluster, state))
    say("demo ready", started)


@main.command()
def status() -> None:
    """What is running, and the resources."""
    if not STATE.exists():
        raise click.ClickException("the demo is not up; start it with make demo")
    state = DemoState(**json.loads(STATE.read_text()))
    cluster = Cluster(DEMO / "k8s")
    for name, alive in cluster.alive().items():
        click.echo(f"{name}: {'running' if alive else 'stopped'}")
    click.echo(kubectl(cluster, "get", "ferry,jobs", "-A"))
    if cluster.is_up():
        click.echo(mirror_summary(config.new_client_from_config(config_file=str(cluster.kubeconfig))) + "\n")
    click.echo(instructions(cluster, state))


@main.command()
def down() -> None:
    """Stop every process the demo started, by recorded pid, and delete .demo/."""
    if PIDS.exists():
        for line in PIDS.read_text().split():
            if line.isdigit():
                stop_pid(int(line))
    if (DEMO / "k8s").exists():
        Cluster(DEMO / "k8s").down()
    if STATE.exists():  # PostgreSQL's data lives outside .demo/ (its user must reach it)
        shutil.rmtree(json.loads(STATE.read_text()).get("postgres_root") or DEMO, ignore_errors=True)
    shutil.rmtree(DEMO, ignore_errors=True)
    click.echo("demo stopped; .demo/ removed", err=True)


if __name__ == "__main__":
    main()
