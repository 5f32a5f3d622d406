"""A trace in mlflow-export-import's files, and back to what MLflow's REST API takes.

``trace.json`` holds ``info`` (the Python client's ``TraceInfo`` as the peer dumps it: times in
milliseconds, metadata and tags as dicts, assessments with ``assessment_type``) and ``data``
(each span's name, ids and parent: the peer's summary). The spans themselves are
``artifacts/traces.json``: ``{"spans": [...]}`` in MLflow's own trace data format
(``Span.to_dict``), the file MLflow writes to a trace's artifact location, so MLflow's span codec
reads and writes it. Readers also accept MLflow 2's field names (``request_id``,
``timestamp_ms``, ``request_metadata`` ...), which older exports carry.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from mlflow.entities.span import Span
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtelSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from ferry.tracking.traces import span_from_json

JsonDict = dict[str, Any]

SOURCE_RUN_KEY = "mlflow.sourceRun"        # trace metadata: the run the trace was recorded in
MODEL_ID_KEY = "mlflow.modelId"            # trace metadata: the logged model the trace was recorded for
UNMAPPED_TAGS = {SOURCE_RUN_KEY: "ferry.source.run_id", MODEL_ID_KEY: "ferry.source.model_id"}
REQUEST_ID_ATTRIBUTE = "mlflow.traceRequestId"
SERVER_TAGS = ("mlflow.artifactLocation", "mlflow.trace.spansLocation")  # the destination sets its own
STATES = {"TRACE_STATUS_UNSPECIFIED": "STATE_UNSPECIFIED"}


@dataclass(frozen=True)
class IdMaps:
    """Source to destination ids of the objects traces link to, as the caller imported them."""

    runs: Mapping[str, str] = field(default_factory=dict)
    models: Mapping[str, str] = field(default_factory=dict)


# -- times -----------------------------------------------------------------------------------------


def millis(value: Any) -> int | None:
    """Milliseconds from the REST API's Timestamp ("...Z") or Duration ("0.050s") JSON."""
    if value is None or isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("s") and not text.endswith("Z"):
        duration = Duration()
        duration.FromJsonString(text)
        return int(duration.ToMilliseconds())
    stamp = Timestamp()
    stamp.FromJsonString(text)
    return int(stamp.ToMilliseconds())


def timestamp_json(ms: int) -> str:
    stamp = Timestamp()
    stamp.FromMilliseconds(int(ms))
    return stamp.ToJsonString()


def duration_json(ms: int) -> str:
    duration = Duration()
    duration.FromMilliseconds(int(ms))
    return duration.ToJsonString()


# -- export: REST JSON to the files ----------------------------------------------------------------


def info_to_file(info: JsonDict) -> JsonDict:
    """A REST trace info in the peer's ``TraceInfo`` shape."""
    location = info.get("trace_location") or {}
    return {
        "trace_id": info["trace_id"],
        "trace_location": {"type": location.get("type"), "mlflow_experiment": location.get("mlflow_experiment"),
                           "inference_table": None, "uc_schema": None, "uc_table_prefix": None},
        "request_time": millis(info.get("request_time")),
        "state": info.get("state"),
        "request_preview": info.get("request_preview"),
        "response_preview": info.get("response_preview"),
        "client_request_id": info.get("client_request_id"),
        "execution_duration": millis(info.get("execution_duration")),
        "trace_metadata": dict(info.get("trace_metadata") or {}),
        "tags": dict(info.get("tags") or {}),
        "assessments": [assessment_to_file(a) for a in info.get("assessments") or []],
    }


def assessment_to_file(a: JsonDict) -> JsonDict:
    """A REST assessment in the peer's ``Feedback``/``Expectation`` shape."""
    feedback, expectation = a.get("feedback"), a.get("expectation")
    error = (feedback or {}).get("error")
    kind = "feedback" if feedback is not None else "expectation" if expectation is not None else "issue"
    return {
        "assessment_type": kind,
        "name": a.get("assessment_name"),
        "source": {"source_type": (a.get("source") or {}).get("source_type"),
                   "source_id": (a.get("source") or {}).get("source_id")},
        "trace_id": a.get("trace_id"),
        "run_id": a.get("run_id"),
        "rationale": a.get("rationale"),
        "metadata": a.get("metadata"),
        "span_id": a.get("span_id"),
        "create_time_ms": millis(a.get("create_time")),
        "last_update_time_ms": millis(a.get("last_update_time")),
        "assessment_id": a.get("assessment_id"),
        "error": error,
        "expectation": _expectation_value(expectation) if expectation is not None else None,
        "feedback": {"value": feedback.get("value"), "error": error} if feedback is not None else None,
        "issue": a.get("issue"),
        "overrides": a.get("overrides"),
        "valid": a.get("valid", True) if kind == "feedback" else a.get("valid"),
    }


def _expectation_value(expectation: JsonDict) -> Any:
    serialized = expectation.get("serialized_value")
    if serialized:
        return json.loads(serialized["value"])
    return expectation.get("value")


def _expectation_json(value: Any) -> JsonDict:
    """MLflow's own rule (``ExpectationValue.to_proto``): anything but a scalar travels as JSON text."""
    if value is not None and not isinstance(value, (int, float, bool, str)):
        return {"serialized_value": {"serialization_format": "JSON_FORMAT", "value": json.dumps(value)}}
    return {"value": value}


def spans_to_file(spans: list[JsonDict]) -> list[JsonDict]:
    """REST spans (OTel JSON) in MLflow's trace data format."""
    return [Span.from_otel_proto(span_from_json(s)).to_dict() for s in spans]


def span_summaries(file_spans: list[JsonDict], trace_id: str) -> list[JsonDict]:
    """The peer's ``data``: each span's name, ids (hex) and parent."""
    return [{"name": s["name"], "trace_id": trace_id, "span_id": _hex(s["span_id"]),
             "parent_id": _hex(s["parent_span_id"]) if s.get("parent_span_id") else None} for s in file_spans]


def _hex(b64: str) -> str:
    return base64.b64decode(b64).hex()


# -- import: the files to REST ---------------------------------------------------------------------


def source_trace_id(info: JsonDict) -> str:
    return str(info.get("trace_id") or info.get("request_id"))


def spans_from_file(file_spans: list[JsonDict], trace_id_bytes: bytes) -> list[OtelSpan]:
    """MLflow trace data spans (v3 or v2 schema) as OTel spans of the trace `trace_id_bytes`."""
    found = []
    for data in file_spans:
        attributes = data.setdefault("attributes", {})
        attributes.setdefault(REQUEST_ID_ATTRIBUTE, json.dumps("tr-" + trace_id_bytes.hex()))
        proto = Span.from_dict(data).to_otel_proto()
        proto.trace_id = trace_id_bytes
        found.append(proto)
    return found


def otel_trace_id(file_spans: list[JsonDict]) -> bytes | None:
    """The OpenTelemetry trace id the spans were recorded under, if they say."""
    for data in file_spans:
        if "context" in data:  # MLflow 2 schema: hex ids
            return bytes.fromhex(str(data["context"]["trace_id"]).removeprefix("0x").zfill(32))
        if data.get("trace_id"):
            raw = str(data["trace_id"])
            try:
                decoded = base64.b64decode(raw, validate=True)
            except (ValueError, binascii.Error):
                decoded = b""
            return decoded if len(decoded) == 16 else bytes.fromhex(raw.removeprefix("tr-")[-32:].zfill(32))
    return None


def skeleton_spans(info: JsonDict, summaries: list[JsonDict], trace_id_bytes: bytes) -> list[OtelSpan]:
    """Spans from the peer's summaries alone (names, ids, parents) spanning the trace's time.

    The peer's export of an MLflow 3 server has no span data when the spans live in the
    tracking store; this keeps the trace's structure instead of dropping the trace.
    """
    start = int(_first(info, "request_time", "timestamp_ms") or 0) * 1_000_000
    end = start + int(_first(info, "execution_duration", "execution_time_ms") or 0) * 1_000_000
    state = import_state(info)
    spans = []
    for summary in summaries:
        span = OtelSpan(trace_id=trace_id_bytes, span_id=bytes.fromhex(str(summary["span_id"])),
                        name=str(summary.get("name") or ""), start_time_unix_nano=start, end_time_unix_nano=end)
        if summary.get("parent_id"):
            span.parent_span_id = bytes.fromhex(str(summary["parent_id"]))
        elif state in ("OK", "ERROR"):
            span.status.code = Status.STATUS_CODE_OK if state == "OK" else Status.STATUS_CODE_ERROR
        spans.append(span)
    return spans


def _first(info: JsonDict, *keys: str) -> Any:
    return next((info[k] for k in keys if info.get(k) is not None), None)


def import_state(info: JsonDict) -> str:
    state = str(_first(info, "state", "status") or "STATE_UNSPECIFIED")
    return STATES.get(state, state)


def info_for_import(info: JsonDict, trace_id: str, experiment_id: str, ids: IdMaps,
                    extra_tags: Mapping[str, str]) -> JsonDict:
    """The ``StartTraceV3`` trace info: the source's fields under `trace_id` in `experiment_id`.

    The run link (``mlflow.sourceRun``) and logged model link (``mlflow.modelId``) point at the
    destination objects mapped from the source's. One that is not mapped (no such object here)
    is not linked; its source id stays as a ``ferry.source.*`` tag instead of a dangling link.
    """
    metadata = dict(_first(info, "trace_metadata", "request_metadata") or {})
    moved: dict[str, str] = {}
    for key, mapping in ((SOURCE_RUN_KEY, ids.runs), (MODEL_ID_KEY, ids.models)):
        source = metadata.pop(key, None)
        if source and source in mapping:
            metadata[key] = mapping[source]
        elif source:
            moved[UNMAPPED_TAGS[key]] = str(source)
    tags = {k: str(v) for k, v in (info.get("tags") or {}).items() if k not in SERVER_TAGS}
    out: JsonDict = {
        "trace_id": trace_id,
        "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}},
        "state": import_state(info),
        "trace_metadata": {k: str(v) for k, v in metadata.items()},
        "tags": {**tags, **moved, **extra_tags},
    }
    request_time = _first(info, "request_time", "timestamp_ms")
    if request_time is not None:
        out["request_time"] = timestamp_json(int(request_time))
    duration = _first(info, "execution_duration", "execution_time_ms")
    if duration is not None:
        out["execution_duration"] = duration_json(int(duration))
    for key in ("request_preview", "response_preview", "client_request_id"):
        if info.get(key) is not None:
            out[key] = info[key]
    return out


def assessment_for_import(a: JsonDict, trace_id: str, ids: IdMaps, *, keep_id: bool,
                          overrides: str | None) -> JsonDict:
    """A file assessment as the REST ``Assessment`` to create on `trace_id`."""
    out: JsonDict = {
        "assessment_name": a.get("name") or a.get("assessment_name"),
        "trace_id": trace_id,
        "source": {k: v for k, v in (a.get("source") or {}).items() if v is not None},
    }
    if keep_id and a.get("assessment_id"):
        out["assessment_id"] = a["assessment_id"]
    for key in ("create_time", "last_update_time"):
        if a.get(f"{key}_ms") is not None:
            out[key] = timestamp_json(int(a[f"{key}_ms"]))
    kind = a.get("assessment_type") or ("feedback" if a.get("feedback") is not None else "expectation")
    if kind == "feedback":
        feedback = a.get("feedback") or {}
        out["feedback"] = {"value": feedback.get("value")}
        error = feedback.get("error") or a.get("error")
        if error:
            out["feedback"]["error"] = {k: v for k, v in error.items() if v is not None}
    elif kind == "expectation":
        out["expectation"] = _expectation_json(a.get("expectation"))
    else:
        out["issue"] = a.get("issue")
    for key in ("rationale", "metadata", "span_id"):
        if a.get(key):
            out[key] = a[key]
    if a.get("run_id") in ids.runs:  # an assessment logged from a run that is not here stays unlinked
        out["run_id"] = ids.runs[a["run_id"]]
    if overrides:
        out["overrides"] = overrides
    return out
