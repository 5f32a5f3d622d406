"""``ferry mirror``: keep a destination tracking server in step with a source, the engine an MlflowMirror's Jobs run.

Each server's credentials come from ``SRC_MLFLOW_TRACKING_*`` / ``DST_MLFLOW_TRACKING_*``, else
from the plain ``MLFLOW_TRACKING_*`` variables. ``--state-file`` keeps the watermark between runs
of the command (the resource keeps it in its status); without one, the first sync compares
everything. Without ``--once`` it syncs every ``--interval`` seconds until stopped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click
from pydantic import BaseModel, ValidationError

from ferry.cli.common import one_line_errors
from ferry.cli.options import boolean, command, rename_file, report, split_list, text, workers_and_quiet
from ferry.errors import InputError, UsageError
from ferry.options import MirrorObjects, MirrorOptions, Renames
from ferry.outcome import Outcome, Phase
from ferry.progress import terminal_sink
from ferry.tracking import TrackingClient
from ferry.tracking.settings import TrackingSettings

DEFAULTS = MirrorOptions()


class MirrorState(BaseModel):
    """What one sync hands the next: where to start, and when everything was last compared (ms)."""

    watermark: int | None = None
    last_full_compare: int | None = None

    @classmethod
    def load(cls, path: Path | None) -> MirrorState:
        if path is None or not path.is_file():
            return cls()
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError, ValueError) as err:
            raise InputError(f"{path}: not a mirror state file ({str(err).splitlines()[0]})") from None

    def save(self, path: Path | None) -> None:
        if path is None:
            return
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.model_dump(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def after(self, outcome: Outcome) -> MirrorState:
        if outcome.phase is Phase.FAILED:
            return self
        return MirrorState(watermark=outcome.watermark,
                           last_full_compare=outcome.full_compare_time or self.last_full_compare)


@command("Keeps a destination MLflow tracking server in step with a source: copies what changed since the "
         "previous sync, server to server.")
@text("--src-mlflow-uri", "Source MLflow tracking server URI.", required=True)
@text("--dst-mlflow-uri", "Destination MLflow tracking server URI.", required=True)
@text("--experiments", "Experiments to mirror, comma-separated names, or 'all'.", default="all")
@text("--models", "Registered models to mirror, comma-separated names, or 'all'.", default="all")
@text("--prompts", "Prompts to mirror, comma-separated names, or 'all'.", default="all")
@text("--experiment-rename-file", "File of 'old_name,new_name' lines: experiment renames by prefix.")
@text("--model-rename-file", "File of 'old_name,new_name' lines: registered model renames by prefix.")
@boolean("--include-artifacts", "Copy the runs' artifact files too.", default=DEFAULTS.include_artifacts)
@boolean("--include-traces", "Copy the mirrored experiments' traces.", default=DEFAULTS.include_traces)
@boolean("--include-logged-models", "Copy the mirrored experiments' logged models.",
         default=DEFAULTS.include_logged_models)
@boolean("--delete-missing", "Delete at the destination what was deleted at the source.",
         default=DEFAULTS.delete_missing)
@text("--full-compare-every", "How often a sync compares everything, e.g. 24h, 30m; 0: never.",
      default=DEFAULTS.full_compare_every)
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON file keeping the watermark between runs. Unset: the first sync compares everything.")
@click.option("--once", is_flag=True, default=False, help="One sync, then exit with its result.")
@click.option("--interval", type=click.FloatRange(1), default=60.0, show_default=True,
              help="Seconds between syncs without --once.")
@workers_and_quiet
@one_line_errors
def mirror(src_mlflow_uri: str, dst_mlflow_uri: str, experiments: str, models: str, prompts: str,
           experiment_rename_file: str | None, model_rename_file: str | None, include_artifacts: bool,
           include_traces: bool, include_logged_models: bool, delete_missing: bool, full_compare_every: str,
           state_file: Path | None, once: bool, interval: float, workers: int, quiet: bool) -> None:
    from ferry.engine.mirror import mirror as sync

    if src_mlflow_uri.rstrip("/") == dst_mlflow_uri.rstrip("/"):
        raise UsageError("--src-mlflow-uri and --dst-mlflow-uri are the same server")
    try:
        options = MirrorOptions(include_artifacts=include_artifacts, include_traces=include_traces,
                                include_logged_models=include_logged_models, delete_missing=delete_missing,
                                full_compare_every=full_compare_every)
    except ValidationError:
        raise UsageError(f"--full-compare-every '{full_compare_every}': expected e.g. 24h, 30m, 1h30m or 0") \
            from None
    objects = MirrorObjects(experiments=split_list(experiments), models=split_list(models),
                            prompts=split_list(prompts))
    renames = Renames(experiments=rename_file(experiment_rename_file) or {},
                      models=rename_file(model_rename_file) or {})
    src = TrackingClient(src_mlflow_uri, TrackingSettings.from_env("SRC_"))
    dst = TrackingClient(dst_mlflow_uri, TrackingSettings.from_env("DST_"))
    state = MirrorState.load(state_file)
    while True:
        outcome = sync(src, dst, objects, options, renames, since=state.watermark,
                       last_full_compare=state.last_full_compare, workers=workers,
                       on_progress=terminal_sink("mirror", quiet=quiet))
        state = state.after(outcome)
        state.save(state_file)
        if once:
            report(outcome)
            return
        print(outcome.message + (f"; lag {outcome.lag_seconds} s" if outcome.lag_seconds is not None else ""),
              flush=True)
        for failure in outcome.failed:
            print(f"Failed: {failure}", file=sys.stderr)
        time.sleep(interval)
