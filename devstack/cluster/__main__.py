"""`python -m devstack.cluster up|down|env|status|logs|sa-kubeconfig`: the local cluster from a shell.

    python -m devstack.cluster up && eval "$(python -m devstack.cluster env)" && kubectl get nodes
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import click

from devstack.cluster.control_plane import BuildMissing, Cluster
from devstack.cluster.logs import read_log
from devstack.cluster.paths import default_state_dir

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "build-control-plane.sh"

state_dir_option = click.option("--state-dir", type=click.Path(path_type=Path), default=None,
                                help="where the cluster keeps its state (default: $FERRY_CLUSTER_DIR or "
                                     "~/.cache/ferry-k8s/run)")


def _cluster(state_dir: Path | None, pod_path: str | None = None) -> Cluster:
    return Cluster(state_dir or default_state_dir(), pod_path=pod_path)


@click.group()
def main() -> None:
    """A local Kubernetes control plane with a local kubelet."""


@main.command()
@state_dir_option
@click.option("--pod-path", envvar="FERRY_POD_PATH", default=None,
              help="PATH of container processes (default: this Python's bin directory, then $PATH)")
@click.option("--build/--no-build", default=True, help="run hack/build-control-plane.sh first (cached)")
def up(state_dir: Path | None, pod_path: str | None, build: bool) -> None:
    """Start etcd, kube-apiserver, kube-controller-manager and the local kubelet."""
    if build:
        subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=sys.stderr)
    cluster = _cluster(state_dir, pod_path)
    started = time.monotonic()
    try:
        cluster.up()
    except (BuildMissing, RuntimeError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    click.echo(f"cluster up in {time.monotonic() - started:.1f} s at {cluster.server}", err=True)
    click.echo(f"KUBECONFIG={cluster.kubeconfig}", err=True)


@main.command()
@state_dir_option
def down(state_dir: Path | None) -> None:
    """Stop every process the cluster recorded (and any pod process left behind)."""
    _cluster(state_dir).down()


@main.command()
@state_dir_option
def env(state_dir: Path | None) -> None:
    """Print `export` lines for KUBECONFIG, FERRY_CLUSTER_DIR and PATH (kubectl v1.20.2 first)."""
    cluster = _cluster(state_dir)
    if cluster.state is None:
        raise click.ClickException("no cluster here; run `python -m devstack.cluster up`")
    for key, value in cluster.env().items():
        click.echo(f"export {key}={shlex.quote(value)}")


@main.command()
@state_dir_option
def status(state_dir: Path | None) -> None:
    """Which processes are alive; exit 1 unless all are and the API server is ready."""
    cluster = _cluster(state_dir)
    for name, alive in cluster.alive().items():
        click.echo(f"{name}: {'running' if alive else 'stopped'}")
    sys.exit(0 if cluster.is_up() else 1)


@main.command()
@state_dir_option
@click.argument("namespace")
@click.argument("pod")
@click.option("-c", "--container", default=None)
def logs(state_dir: Path | None, namespace: str, pod: str, container: str | None) -> None:
    """Print a container's log (the local kubelet has no API for `kubectl logs`)."""
    try:
        click.echo(read_log(namespace, pod, container, state_dir or default_state_dir()), nl=False)
    except FileNotFoundError as error:
        raise click.ClickException(str(error)) from None


@main.command("sa-kubeconfig")
@state_dir_option
@click.argument("namespace")
@click.argument("name")
def sa_kubeconfig(state_dir: Path | None, namespace: str, name: str) -> None:
    """Write a kubeconfig for ServiceAccount NAMESPACE/NAME and print its path."""
    try:
        click.echo(_cluster(state_dir).serviceaccount_kubeconfig(namespace, name))
    except (TimeoutError, RuntimeError) as error:
        raise click.ClickException(str(error)) from None


if __name__ == "__main__":
    main()
