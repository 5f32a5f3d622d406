"""``ferry``: the umbrella command — the operator, the Job runner, the CRDs, the version."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ferry import __version__
from ferry.cli.common import one_line_errors
from ferry.cli.mirror import mirror as mirror_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """mlflow-ferry: move MLflow data with Kubernetes resources."""


@cli.command()
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Watch this namespace (repeatable).")
@click.option("--all-namespaces", "-A", is_flag=True, help="Watch every namespace (needs the ClusterRole).")
@click.option("--liveness", "liveness", metavar="URL", help="Serve a liveness probe, e.g. http://0.0.0.0:8080/healthz.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--verbose", "-v", is_flag=True, help="Log kopf's own decisions too.")
@click.option("--job-image", envvar="FERRY_JOB_IMAGE", help="Default image of the Jobs.")
@click.option("--job-service-account", envvar="FERRY_JOB_SERVICE_ACCOUNT", help="Default ServiceAccount of Jobs.")
@click.option("--schedule-tick-seconds", type=float, envvar="FERRY_SCHEDULE_TICK_SECONDS",
              help="How often schedules are looked at (default 5).")
@click.option("--standalone/--peering", default=True, show_default=True,
              help="Run without kopf peering (one replica, strategy Recreate).")
def operator(
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    liveness: str | None,
    log_format: str,
    verbose: bool,
    job_image: str | None,
    job_service_account: str | None,
    schedule_tick_seconds: float | None,
    standalone: bool,
) -> None:
    """Run the operator (what `kopf run -m ferry.controller` does, with ferry's flags, started again
    when a restarting API server ends its watches: `ferry.supervisor`)."""
    if bool(namespaces) == all_namespaces:
        raise click.UsageError("give --namespace (one or more) or --all-namespaces")
    overrides = {
        "FERRY_JOB_IMAGE": job_image,
        "FERRY_JOB_SERVICE_ACCOUNT": job_service_account,
        "FERRY_SCHEDULE_TICK_SECONDS": None if schedule_tick_seconds is None else str(schedule_tick_seconds),
    }
    # Flags win over FERRY_* variables: put them in the environment the settings are read from.
    os.environ.update({k: v for k, v in overrides.items() if v is not None})
    _check_settings()
    from ferry import supervisor

    if not supervisor.supervised():  # the pod's process: the operator proper runs as its child
        flags = [*(f"--namespace={ns}" for ns in namespaces), *(["--all-namespaces"] if all_namespaces else []),
                 *([f"--liveness={liveness}"] if liveness else []), f"--log-format={log_format}",
                 *(["--verbose"] if verbose else []), "--standalone" if standalone else "--peering"]  # fmt: skip
        sys.exit(supervisor.supervise([sys.executable, "-m", "ferry.cli.main", "operator", *flags]))
    import kopf

    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL)
    import ferry.controller  # noqa: F401  (registers the handlers)
    from ferry.controller.stopping import run_once

    code = run_once(
        standalone=standalone, clusterwide=all_namespaces, namespaces=namespaces, liveness_endpoint=liveness,
    )  # fmt: skip
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@cli.command()
@one_line_errors
def job() -> None:
    """Run the work described by FERRY_JOB (what the operator's Jobs run)."""
    from ferry.runner.job import main

    sys.exit(main())


@cli.command()
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("crds"), show_default=True)
def crds(output_dir: Path) -> None:
    """Write the CustomResourceDefinitions generated from ferry.api."""
    from ferry.api.crds import write

    for path in write(output_dir):
        click.echo(str(path))


@cli.command()
def version() -> None:
    """Print the version."""
    click.echo(__version__)


cli.add_command(mirror_command, "mirror")


def main() -> None:
    cli()


def _check_settings() -> None:
    """A bad FERRY_* value (the policy's JSON, a port) is one line before kopf starts, not a traceback
    from its startup handler."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from ferry.controller.settings import OperatorSettings

    try:
        OperatorSettings()
    except SettingsError as err:  # not even JSON
        field = str(err).split('"')[1] if '"' in str(err) else "settings"
        raise click.ClickException(f"FERRY_{field.upper()}: not valid JSON") from None
    except ValidationError as err:
        first = err.errors()[0]
        head, *inside = [str(part) for part in first["loc"]]
        where = f"FERRY_{head.upper()}" + (f" ({'.'.join(inside)})" if inside else "")
        raise click.ClickException(f"{where}: {first['msg']}") from None


if __name__ == "__main__":
    main()
