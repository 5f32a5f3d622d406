"""One exported trace into one destination experiment, keeping its ids where the server allows.

The trace keeps its id (``tr-`` + its OpenTelemetry trace id) unless the destination already has
a trace of that id elsewhere (a copy within one server, an import into a second experiment);
then it gets an id derived from the source id and the destination experiment (a random one only
if that is taken too). Derived, not random, because a trace is written in two requests (spans,
then info): an import stopped between them leaves a spans-only trace behind, and the rerun must
find and finish that trace rather than leave it and write another. Span ids and times always
stay. Assessments keep their ids with a kept trace id (they are unique per server, so a new
trace gets new assessment ids) and are created oldest first, so an override marks the
assessment it overrides invalid, as at the source.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from ferry.engine import trace_format as fmt
from ferry.tracking.traces import Traces

JsonDict = fmt.JsonDict
SOURCE_TRACE_TAG = "ferry.source.trace_id"
FINALIZED_KEY = "mlflow.trace.infoFinalized"


@dataclass
class TraceFiles:
    """What an export holds for one trace; `spans` is None when the export has no span data."""

    info: JsonDict
    spans: list[JsonDict] | None
    summaries: list[JsonDict]


@dataclass
class Result:
    source_id: str
    trace_id: str | None = None
    created: bool = False
    existing: bool = False
    failed: list[str] = field(default_factory=list)

    def sentence(self) -> str:
        verb = "imported" if self.created else "already imported as" if self.existing else "did not import"
        kept = " (same id)" if self.trace_id == self.source_id else ""
        return f"{verb} trace {self.source_id}" + (f" as {self.trace_id}{kept}" if self.created else
                                                   f" {self.trace_id}" if self.existing else "")


def import_one(traces: Traces, files: TraceFiles, experiment_id: str, ids: fmt.IdMaps) -> Result:
    """Import the trace unless an earlier import did; finish the assessments of one that stopped halfway."""
    src_id = fmt.source_trace_id(files.info)
    otel_id = fmt.otel_trace_id(files.spans or []) or _otel_id(src_id) or os.urandom(16)
    found = traces.find_info("tr-" + otel_id.hex())
    if found is not None and _here(found, experiment_id) and _finalized(found):
        return _finish(traces, files, found, ids, Result(src_id, found["trace_id"], existing=True))
    earlier = _earlier_import(traces, experiment_id, src_id)
    if earlier is not None:
        return _finish(traces, files, earlier, ids, Result(src_id, earlier["trace_id"], existing=True))
    if found is not None and not _here(found, experiment_id):
        otel_id = _free_id(traces, src_id, experiment_id)  # the id is taken on this server
    trace_id = "tr-" + otel_id.hex()
    result = Result(src_id, trace_id, created=True)
    spans = _spans(files, otel_id, result)
    if spans:
        traces.log_spans(experiment_id, spans, what=f"trace {src_id}")
    info = fmt.info_for_import(files.info, trace_id, experiment_id, ids, {SOURCE_TRACE_TAG: src_id})
    created = traces.start_trace(info)
    return _finish(traces, files, created, ids, result)


def _spans(files: TraceFiles, otel_id: bytes, result: Result) -> list:
    if files.spans is not None:
        return fmt.spans_from_file(files.spans, otel_id)
    if files.summaries:
        result.failed.append(f"trace {result.source_id}: the export has no span data (artifacts/traces.json), "
                             "only span names and parents; its spans were imported with those and the trace's "
                             "start and end times, without attributes, inputs, outputs or events")
        return fmt.skeleton_spans(files.info, files.summaries, otel_id)
    result.failed.append(f"trace {result.source_id}: the export has no spans; imported its trace info only")
    return []


def _free_id(traces: Traces, src_id: str, experiment_id: str) -> bytes:
    """The same new id on every rerun into the experiment, so a spans-only trace left there is reused.

    A finished trace of that id in this experiment carries the source tag and was found before
    this; one in another experiment (a hash collision, practically never) means a random id.
    """
    derived = hashlib.sha256(f"{src_id}\0{experiment_id}".encode()).digest()[:16]
    taken = traces.find_info("tr-" + derived.hex())
    return derived if taken is None or _here(taken, experiment_id) else os.urandom(16)


def _otel_id(trace_id: str) -> bytes | None:
    hex_part = trace_id.removeprefix("tr-")
    try:
        raw = bytes.fromhex(hex_part)
    except ValueError:
        return None
    return raw if len(raw) == 16 else None


def _here(info: JsonDict, experiment_id: str) -> bool:
    location = (info.get("trace_location") or {}).get("mlflow_experiment") or {}
    return str(location.get("experiment_id")) == str(experiment_id)


def _finalized(info: JsonDict) -> bool:
    """A whole trace, not the spans-only record a stopped import leaves behind."""
    return (info.get("trace_metadata") or {}).get(FINALIZED_KEY) == "true" or \
        SOURCE_TRACE_TAG in (info.get("tags") or {})


def _earlier_import(traces: Traces, experiment_id: str, src_id: str) -> JsonDict | None:
    """A trace of the experiment that an earlier import created from `src_id` under another id."""
    quoted = src_id.replace("'", "\\'")
    for info in traces.search([experiment_id], filter=f"tags.`{SOURCE_TRACE_TAG}` = '{quoted}'"):
        if _finalized(info):
            return info
    return None


def _finish(traces: Traces, files: TraceFiles, dst_info: JsonDict, ids: fmt.IdMaps,
            result: Result) -> Result:
    """Create the assessments the destination trace lacks, oldest first."""
    trace_id = str(dst_info["trace_id"])
    keep_ids = trace_id == result.source_id
    have = {_key_of_rest(a): a.get("assessment_id") for a in dst_info.get("assessments") or []}
    wanted = sorted(files.info.get("assessments") or [], key=lambda a: a.get("create_time_ms") or 0)
    id_map: dict[str, str] = {}
    overridden = {a.get("overrides") for a in wanted if a.get("overrides")}
    for src in wanted:
        src_key = _key_of_file(src)
        new_id = have.get(src_key)
        if new_id is None:
            overrides = src.get("overrides")
            body = fmt.assessment_for_import(src, trace_id, ids, keep_id=keep_ids,
                                             overrides=id_map.get(overrides, overrides if keep_ids else None)
                                             if overrides else None)
            new_id = traces.create_assessment(trace_id, body).get("assessment_id")
        if src.get("assessment_id") and new_id:
            id_map[src["assessment_id"]] = str(new_id)
        if src.get("valid") is False and src.get("assessment_id") not in overridden:
            result.failed.append(f"assessment '{src.get('name')}' of trace {result.source_id}: invalid at the "
                                 "source without an overriding assessment; MLflow creates assessments valid")
    return result


def _key_of_file(a: JsonDict) -> tuple[str, int, str, str]:
    source = a.get("source") or {}
    return (str(a.get("name")), int(a.get("create_time_ms") or 0), str(source.get("source_type")),
            str(source.get("source_id")))


def _key_of_rest(a: JsonDict) -> tuple[str, int, str, str]:
    source = a.get("source") or {}
    return (str(a.get("assessment_name")), int(fmt.millis(a.get("create_time")) or 0),
            str(source.get("source_type")), str(source.get("source_id")))
