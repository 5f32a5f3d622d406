"""MLflow 3 traces over REST: search, read, and write a trace keeping its ids and times.

Reads use ``/api/3.0/mlflow/traces``. Writing a trace takes the path MLflow's own client takes
against a 3.4+ server: the spans go to the OTLP endpoint ``/v1/traces`` (protobuf, with the
``x-mlflow-experiment-id`` header), which stores them under the trace id derived from their
OpenTelemetry trace id, with their span ids and times as sent; then ``StartTraceV3`` writes the
trace info (request time, duration, state, previews, metadata, tags) over what the spans implied.
An MLflow 2 server answers 404 for these endpoints: `EndpointMissing`, "no traces here".
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import requests
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtelSpan

from ferry.errors import NotFoundError, ServerError
from ferry.redirects import CrossOriginRedirect
from ferry.tracking.client import TrackingClient
from ferry.tracking.transport import RETRY_STATUSES, ApiError, EndpointMissing, JsonDict

TRACES_API = "api/3.0/mlflow/traces"
OTLP_PATH = "v1/traces"
EXPERIMENT_HEADER = "x-mlflow-experiment-id"
SEARCH_PAGE_SIZE = 500          # SearchTracesV3's maximum
BATCH_GET_SIZE = 100            # trace ids per batchGet: a GET, so the ids go in the URL
OTLP_ATTEMPTS = 4


class Traces:
    """The traces of one server; requests go through its `TrackingClient`'s transport."""

    def __init__(self, client: TrackingClient) -> None:
        self.client = client
        self.batch_reads = True  # until the server refuses a batchGet

    @property
    def uri(self) -> str:
        return self.client.uri

    def _call(self, method: str, path: str, **kwargs: Any) -> JsonDict:
        return self.client.transport.call(method, f"{TRACES_API}{path}", **kwargs)

    # -- reads -----------------------------------------------------------------------------------

    def search(self, experiment_ids: Sequence[str], *, filter: str | None = None,
               order_by: Sequence[str] = ("timestamp_ms ASC",)) -> Iterator[JsonDict]:
        """Trace infos (no spans) of the experiments, one server page at a time.

        A server without the v3 trace API has no traces for us: nothing is yielded.
        """
        body: JsonDict = {
            "locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": e}}
                          for e in experiment_ids],
            "max_results": SEARCH_PAGE_SIZE, "order_by": list(order_by),
        }
        if filter:
            body["filter"] = filter
        token: str | None = None
        while True:
            try:
                page = self._call("POST", "/search", json={**body, **({"page_token": token} if token else {})})
            except EndpointMissing:
                return
            yield from page.get("traces", [])
            token = page.get("next_page_token")
            if not token:
                return

    def get(self, trace_id: str) -> JsonDict:
        """The whole trace: ``{"trace_info": ..., "spans": [OTel span JSON, ...]}``."""
        return self._call("GET", "/get", params={"trace_id": trace_id}, what=f"trace '{trace_id}'")["trace"]

    def get_many(self, trace_ids: Sequence[str]) -> dict[str, JsonDict]:
        """Whole traces by id, up to `BATCH_GET_SIZE` a request (``traces/batchGet``), as `get` returns them.

        Only the spans the tracking store holds itself come back this way: a batch holding a trace
        whose spans are in the artifact store fails whole ("Trace data not stored in tracking
        store"), and so does a server without batchGet. Then this answers nothing, now and for the
        rest of this client's life, and `get` fetches each trace.
        """
        if not self.batch_reads:
            return {}
        try:
            answer = self._call("GET", "/batchGet", params={"trace_ids": list(trace_ids)},
                                what=f"{len(trace_ids)} traces")
        except (EndpointMissing, ServerError):
            self.batch_reads = False
            return {}
        return {str(t["trace_info"]["trace_id"]): t for t in answer.get("traces") or []}

    def find_info(self, trace_id: str) -> JsonDict | None:
        """The trace info of `trace_id`, or None if this server has no such trace."""
        try:
            return self._call("GET", f"/{trace_id}", what=f"trace '{trace_id}'")["trace"]["trace_info"]
        except NotFoundError:
            return None
        except EndpointMissing:
            raise EndpointMissing(f"MLflow at {self.uri} has no MLflow 3 trace API: "
                                  "traces can be imported into MLflow 3.4 or later only") from None

    # -- writes ----------------------------------------------------------------------------------

    def log_spans(self, experiment_id: str, spans: Sequence[OtelSpan], *, what: str) -> None:
        """Store `spans` (all of one trace) through the OTLP endpoint, ids and times as given."""
        request = ExportTraceServiceRequest()
        scope = request.resource_spans.add().scope_spans.add()
        scope.spans.extend(spans)
        self._post_otlp(experiment_id, request.SerializeToString(), what)

    def _post_otlp(self, experiment_id: str, body: bytes, what: str) -> None:
        transport = self.client.transport
        url = f"{transport.uri}/{OTLP_PATH}"
        headers = {"Content-Type": "application/x-protobuf", EXPERIMENT_HEADER: experiment_id}
        response: requests.Response | None = None
        for attempt in range(OTLP_ATTEMPTS):
            try:
                response = transport.session.post(url, data=body, headers=headers,
                                                  timeout=transport.settings.timeout)
            except CrossOriginRedirect as err:
                raise ServerError(f"MLflow at {self.uri}: {err}") from None
            except (requests.ConnectionError, requests.Timeout) as err:
                if attempt == OTLP_ATTEMPTS - 1:
                    raise ServerError(f"cannot reach MLflow at {self.uri}: {err}") from None
            else:
                if response.status_code not in RETRY_STATUSES:
                    break
            time.sleep(0.5 * 2 ** attempt)
        assert response is not None
        if response.status_code == 404:
            raise EndpointMissing(f"MLflow at {self.uri} has no OTLP endpoint /{OTLP_PATH} (HTTP 404): "
                                  "traces can be imported into MLflow 3.4 or later only")
        if response.status_code >= 400:
            raise ApiError(f"MLflow at {self.uri} refused the spans of {what}: HTTP {response.status_code}: "
                           f"{_detail(response)}", status=response.status_code)

    def start_trace(self, trace_info: JsonDict) -> JsonDict:
        """Write the trace info (``StartTraceV3``); the trace may already hold its spans."""
        answer = self._call("POST", "", json={"trace": {"trace_info": trace_info}},
                            what=f"trace '{trace_info.get('trace_id')}'")
        return answer["trace"]["trace_info"]

    def create_assessment(self, trace_id: str, assessment: JsonDict) -> JsonDict:
        answer = self._call("POST", f"/{trace_id}/assessments", json={"assessment": assessment},
                            what=f"trace '{trace_id}'")
        return answer["assessment"]


def span_from_json(span: JsonDict) -> OtelSpan:
    """An OTel span from the REST API's JSON of it (snake_case fields, base64 ids)."""
    return json_format.ParseDict(span, OtelSpan(), ignore_unknown_fields=True)


def _detail(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300] or response.reason
    if isinstance(data, dict):
        return " ".join(str(data.get("message") or data.get("detail") or data).split())[:300]
    return str(data)[:300]
