"""MLflow's fluent API aimed at one server, as a fresh process would find it."""

from __future__ import annotations

import os

import mlflow

ASYNC_TRACES = "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"


def point_fluent_api_at(uri: str, *, async_traces: bool = False) -> None:
    """Aim `mlflow.*` (runs, traces, prompts) at `uri`, with tracing as new.

    MLflow's trace exporter is process-wide and remembers what the server it last wrote to could
    not do: once a server without span storage (a file store, MLflow 2) has refused spans, it
    writes every later trace's spans as an artifact, whatever the server. And with asynchronous
    logging (MLflow 3's default) a trace's info may reach the server before its spans, and then
    its spans go to the artifacts as well. Seeds are synchronous unless `async_traces`: where a
    trace's spans end up must not depend on the machine's load or on which server came first.
    """
    os.environ[ASYNC_TRACES] = "true" if async_traces else "false"
    mlflow.set_tracking_uri(uri)
    mlflow.tracing.reset()
