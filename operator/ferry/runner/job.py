"""``ferry job``: run the piece of work the operator described, then say how it went.

Contract with the operator:

* input: env ``FERRY_JOB`` (a `ferry.api.job.JobPayload` as JSON); credentials arrive as
  environment from Secrets (``envFrom``/``secretKeyRef``), never inside the JSON;
* while working: ``status.progress`` of the resource is patched, at most every
  ``FERRY_PROGRESS_INTERVAL`` seconds (default 2);
* at the end: the `Outcome` JSON is written to ``FERRY_TERMINATION_LOG`` (default
  /dev/termination-log) and printed; exit code 0 for Succeeded and PartiallyFailed (the work is
  done and reported; a retry would not change it), non-zero for Failed so the Job's backoffLimit
  can retry what may be transient.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import BaseModel, ValidationError

from ferry.api.job import ENV_VAR, TERMINATION_LOG, JobPayload
from ferry.api.resources import BY_KIND
from ferry.errors import FerryError, UsageError
from ferry.outcome import Outcome, Phase
from ferry.progress import ProgressSink
from ferry.runner.engines import ENGINES, Engine
from ferry.runner.reporter import ProgressReporter, status_patcher


def read_payload(environ: dict[str, str] | os._Environ[str] = os.environ) -> JobPayload:
    text = environ.get(ENV_VAR)
    if not text:
        raise UsageError(f"{ENV_VAR} is not set: `ferry job` runs inside a Job the operator created")
    try:
        payload = JobPayload.model_validate_json(text)
    except ValidationError as err:
        raise UsageError(f"{ENV_VAR} is not a job description: {err.errors()[0]['msg']}") from err
    if payload.kind not in ENGINES:
        raise UsageError(f"{ENV_VAR} names an unknown kind '{payload.kind}'")
    return payload


def read_spec(payload: JobPayload) -> BaseModel:
    """The payload's spec as its kind's model: validated once, here, and handed to the engine."""
    try:
        return BY_KIND[payload.kind].spec.model_validate(payload.spec)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "spec"
        raise UsageError(f"{ENV_VAR} holds an invalid {payload.kind} spec: {where}: {first['msg']}") from err


def execute(engine: Engine, spec: BaseModel, payload: JobPayload, on_progress: ProgressSink | None) -> Outcome:
    """Run `engine` on `spec`; a FerryError becomes a Failed outcome naming it, other errors stay bugs."""
    try:
        return engine(spec, payload, on_progress)
    except FerryError as err:
        return Outcome(phase=Phase.FAILED, message=err.message)


def report(outcome: Outcome, path: Path) -> None:
    message = outcome.to_termination_message()
    try:
        path.write_text(message)
    except OSError as err:
        print(f"warning: cannot write the termination message to {path}: {err}", file=sys.stderr)
    print(message)


def exit_code(outcome: Outcome) -> int:
    return 1 if outcome.phase is Phase.FAILED else 0


def main() -> int:
    payload = read_payload()
    spec = read_spec(payload)
    reporter: ProgressReporter | None = None
    if os.environ.get("FERRY_PROGRESS", "on") != "off":
        try:
            send = status_patcher(payload.kind, payload.namespace, payload.name)
            reporter = ProgressReporter(send, float(os.environ.get("FERRY_PROGRESS_INTERVAL", "2")))
        except Exception as err:  # no API access: the work still runs, the result still reaches the operator
            print(f"warning: progress will not be reported ({type(err).__name__}: {err})", file=sys.stderr)
    try:
        outcome = execute(ENGINES[payload.kind], spec, payload, reporter)
    finally:
        if reporter is not None:
            reporter.close()
    report(outcome, Path(os.environ.get("FERRY_TERMINATION_LOG", TERMINATION_LOG)))
    return exit_code(outcome)
