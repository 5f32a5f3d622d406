"""Export and import of MLflow 3 traces in mlflow-export-import's ``export-traces`` layout.

An export directory holds ``traces.json`` (``mlflow.experiments``: each experiment's id, name and
trace ids) and one directory per trace, ``<trace_id>/trace.json`` plus
``<trace_id>/artifacts/traces.json`` (see `ferry.engine.trace_format`). Inside an experiment's
export this is the ``traces/`` directory, as with the peer.

Export pages through the search one page at a time and holds one trace at a time; trace ids go
to a spool file, so memory does not grow with the number of traces. A trace directory whose
``trace.json`` exists is complete (written last, atomically) and is not fetched again.

Import keeps the source's trace ids, span ids and times when the destination has no trace of
that id (the OTLP path, `ferry.tracking.traces`); otherwise the trace gets a new id. Every
imported trace is tagged ``ferry.source.trace_id``: a trace found by its id or by that tag in the
destination experiment is not imported again.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from mlflow.exceptions import MlflowException

from ferry.engine import trace_format as fmt
from ferry.engine import trace_import
from ferry.engine.files import read_export_file, system_section, write_export_file, write_json
from ferry.errors import FerryError, InputError
from ferry.outcome import Counts, Outcome
from ferry.progress import ProgressSink, Tracker
from ferry.tracking.client import TrackingClient
from ferry.tracking.traces import BATCH_GET_SIZE, Traces

JsonDict = fmt.JsonDict
TRACES_FILE = "traces.json"
TRACE_FILE = "trace.json"
SPANS_DIR = "artifacts"
SPANS_FILE = "traces.json"


# -- export ----------------------------------------------------------------------------------------


def export_trace(client: TrackingClient, trace_id: str, output_dir: str | Path) -> Outcome:
    """Write one trace to `output_dir` (``trace.json`` and ``artifacts/traces.json``)."""
    out = Path(output_dir)
    traces = Traces(client)
    _write_trace(traces, traces.get(trace_id), out)
    return Outcome.of(Counts(traces=1), path=str(out), message=f"exported trace {trace_id} to {out}")


def _fetched(traces: Traces, trace_ids: list[str]) -> Iterator[tuple[str, JsonDict | FerryError]]:
    """Each trace of `trace_ids` whole, many per request; one by one where the batch has no spans for it
    (spans kept in the artifact store, or a server without batchGet). A trace that cannot be read
    comes as its error."""
    batch = traces.get_many(trace_ids) if trace_ids else {}
    for trace_id in trace_ids:
        trace = batch.get(trace_id)
        if trace is None or not trace.get("spans"):
            try:
                trace = traces.get(trace_id)
            except FerryError as err:
                yield trace_id, err
                continue
        yield trace_id, trace


def _write_trace(traces: Traces, trace: JsonDict, out: Path) -> str:
    """Write one fetched trace; returns its experiment id."""
    info = fmt.info_to_file(trace["trace_info"])
    spans = fmt.spans_to_file(trace.get("spans") or [])
    write_json(out / SPANS_DIR / SPANS_FILE, {"spans": spans}, compact=True)
    write_export_file(out, TRACE_FILE, script="export_trace.py", tracking_uri=traces.uri,
                      mlflow={"info": info, "data": fmt.span_summaries(spans, info["trace_id"])})
    return str((info["trace_location"].get("mlflow_experiment") or {}).get("experiment_id", ""))


def export_traces(client: TrackingClient, experiment_ids: str | Sequence[str], output_dir: str | Path, *,
                  traces_since: int | None = None, progress: ProgressSink | None = None) -> Outcome:
    """Write every trace of the experiments (ids, names or ``all``) to `output_dir`.

    `traces_since` (milliseconds since the epoch) keeps only traces whose request started then
    or later: the incremental export of a scheduled run.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    traces, tracker = Traces(client), Tracker(progress)
    experiments = _experiments(client, experiment_ids)
    filter_ = f"trace.timestamp_ms >= {int(traces_since)}" if traces_since is not None else None
    failed: list[str] = []
    ok = 0
    with tempfile.TemporaryDirectory(dir=out, prefix=".trace-ids-") as spool_dir:
        spools = {e["experiment_id"]: Path(spool_dir) / e["experiment_id"] for e in experiments}
        for experiment in experiments:
            exp_id = experiment["experiment_id"]
            with spools[exp_id].open("w", encoding="utf-8") as spool:
                for page in _chunks((str(i["trace_id"]) for i in traces.search([exp_id], filter=filter_)),
                                    BATCH_GET_SIZE):
                    tracker.add_total(len(page))
                    done = {t for t in page if (out / t / TRACE_FILE).is_file()}  # from an earlier run
                    for trace_id, trace in _fetched(traces, [t for t in page if t not in done]):
                        try:
                            if isinstance(trace, FerryError):
                                raise trace
                            _write_trace(traces, trace, out / trace_id)
                        except (FerryError, MlflowException, ValueError, KeyError) as err:
                            failed.append(f"trace {trace_id} of experiment '{experiment['name']}': {_reason(err)}")
                            tracker.fail()
                            continue
                        done.add(trace_id)
                    for trace_id in page:  # in the server's order, as the index lists them
                        if trace_id in done:
                            spool.write(trace_id + "\n")
                            ok += 1
                            tracker.advance()
        _write_index(out, client.uri, experiments, spools, ok, failed)
    return Outcome.of(Counts(traces=ok), failed, path=str(out),
                      message=f"exported {ok} traces of {len(experiments)} experiments to {out}"
                      + (f"; {len(failed)} failed" if failed else ""))


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    """`items` in lists of `size` (the last one shorter), read lazily: memory stays flat."""
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _experiments(client: TrackingClient, ids: str | Sequence[str]) -> list[JsonDict]:
    if isinstance(ids, str):
        if ids == "all":
            return list(client.search_experiments())
        ids = [i.strip() for i in ids.split(",") if i.strip()]
    return [client.find_experiment(i) for i in ids]


def _write_index(out: Path, uri: str, experiments: list[JsonDict], spools: Mapping[str, Path], ok: int,
                 failed: list[str]) -> None:
    """``traces.json``, streamed from the spool files so the id lists are never held together."""
    head = {"system": system_section("export_traces.py", uri),
            "info": {"num_total_trace": ok + len(failed), "num_ok_traces": ok, "num_failed_traces": len(failed),
                     "failed_traces": [line.split(" ", 2)[1] for line in failed]}}
    fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{TRACES_FILE}.", suffix=".part")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(head, indent=2)[:-2] + ',\n  "mlflow": {\n    "experiments": [')
        for n, experiment in enumerate(experiments):
            entry = {"id": experiment["experiment_id"], "name": experiment["name"]}
            fh.write(("," if n else "") + "\n      " + json.dumps(entry)[:-1] + ', "traces": [')
            for m, trace_id in enumerate(_lines(spools[experiment["experiment_id"]])):
                fh.write(("," if m else "") + "\n        " + json.dumps(trace_id))
            fh.write("]}")
        fh.write("\n    ]\n  }\n}\n")
    os.replace(tmp, out / TRACES_FILE)


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield line.strip()


# -- import ----------------------------------------------------------------------------------------


def import_trace(client: TrackingClient, input_dir: str | Path, experiment_name: str, *,
                 run_ids: Mapping[str, str] | None = None, model_ids: Mapping[str, str] | None = None) -> Outcome:
    """Import one trace directory into `experiment_name` (created if missing), idempotently."""
    experiment = client.get_or_create_experiment(experiment_name)
    result = trace_import.import_one(Traces(client), _read_trace(Path(input_dir)), experiment["experiment_id"],
                                     fmt.IdMaps(run_ids or {}, model_ids or {}))
    return Outcome.of(Counts(traces=int(result.created)), result.failed,
                      done=int(result.created or result.existing), message=result.sentence())


def import_traces(client: TrackingClient, input_dir: str | Path, *, experiment_name: str | None = None,
                  experiment_renames: Mapping[str, str] | None = None, run_ids: Mapping[str, str] | None = None,
                  model_ids: Mapping[str, str] | None = None, progress: ProgressSink | None = None) -> Outcome:
    """Import an ``export-traces`` directory, each experiment's traces into the experiment of its name.

    `experiment_name` puts every trace into that one experiment (an experiment import does);
    `run_ids` and `model_ids` map source run and logged model ids to the destination's for
    the traces' links (``mlflow.sourceRun``, ``mlflow.modelId``).
    """
    ids = fmt.IdMaps(run_ids or {}, model_ids or {})
    root = Path(input_dir)
    index = read_export_file(root / TRACES_FILE, "an export-traces directory")
    traces, tracker = Traces(client), Tracker(progress)
    created = existing = 0
    failed: list[str] = []
    for entry in (index.get("mlflow") or {}).get("experiments") or []:
        name = experiment_name or (experiment_renames or {}).get(entry["name"], entry["name"])
        exp_id = client.get_or_create_experiment(name)["experiment_id"]
        tracker.add_total(len(entry.get("traces") or []))
        for trace_id in entry.get("traces") or []:
            try:
                result = trace_import.import_one(traces, _read_trace(root / trace_id), exp_id, ids)
            except (FerryError, MlflowException, ValueError, KeyError) as err:
                failed.append(f"trace {trace_id}: {_reason(err)}")
                tracker.fail()
                continue
            created, existing = created + result.created, existing + result.existing
            failed += result.failed
            tracker.advance()
    message = f"imported {created} traces, {existing} already imported" + (f"; {len(failed)} failed" if failed else "")
    return Outcome.of(Counts(traces=created), failed, done=created + existing, message=message)


def _read_trace(trace_dir: Path) -> trace_import.TraceFiles:
    doc = read_export_file(trace_dir / TRACE_FILE, "an exported trace")
    mlflow = doc.get("mlflow") or {}
    if not isinstance(mlflow.get("info"), dict):
        raise InputError(f"{trace_dir / TRACE_FILE} is not an exported trace: it has no 'mlflow.info'")
    spans_path = trace_dir / SPANS_DIR / SPANS_FILE
    spans = None
    if spans_path.is_file():
        spans = json.loads(spans_path.read_text(encoding="utf-8")).get("spans")
    return trace_import.TraceFiles(info=mlflow["info"], spans=spans, summaries=list(mlflow.get("data") or []))


def _reason(err: Exception) -> str:
    return err.message if isinstance(err, FerryError) else f"{type(err).__name__}: {err}"
