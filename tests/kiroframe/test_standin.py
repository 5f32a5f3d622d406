"""The Kiroframe stand-in itself: it must refuse what the service refuses, or the sync tests prove nothing."""

from __future__ import annotations

import requests

from devstack.kiroframe import KiroframeStandIn
from tests.kiroframe.conftest import TOKEN


def post(standin: KiroframeStandIn, body: object, token: str = TOKEN) -> requests.Response:
    return requests.post(f"{standin.url}/arcee/v2/import", json=body, headers={"x-api-key": token}, timeout=10)


def body(kind: int, line: object) -> dict:
    return {"import_source": "mlflow", "import_source_id": "0123456789", "import_type": kind,
            "owner_id": None, "line": line}


def test_standin_checks_token_and_shape_and_deduplicates(kiroframe: KiroframeStandIn) -> None:
    assert post(kiroframe, body(2, {"run_id": "r1"}), token="nope").status_code == 401
    assert post(kiroframe, {"import_type": 2}).status_code == 400
    assert post(kiroframe, body(2, {"no_run_id": 1})).status_code == 400
    assert post(kiroframe, body(3, {"name": "m"})).status_code == 400  # models must be a list
    assert post(kiroframe, {**body(1, {"experiment_id": "1"}), "import_source_id": "short"}).status_code == 400
    assert kiroframe.records() == []

    assert post(kiroframe, body(2, {"run_id": "r1", "v": 1})).status_code == 201
    assert post(kiroframe, body(2, {"run_id": "r1", "v": 2})).status_code == 201
    assert post(kiroframe, body(3, [{"name": "m"}])).status_code == 201
    assert [r["line"] for r in kiroframe.records(2)] == [{"run_id": "r1", "v": 2}]
    assert kiroframe.deliveries()[("0123456789", 2, "r1")] == 2

    kiroframe.fail_next(1, 429, retry_after=7)
    kiroframe.fail_next(1, 503)
    throttled = post(kiroframe, body(2, {"run_id": "r2"}))
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "7")
    assert post(kiroframe, body(2, {"run_id": "r2"})).status_code == 503
    assert post(kiroframe, body(2, {"run_id": "r2"})).status_code == 201
    assert kiroframe.request_count == 11

    control = requests.get(f"{kiroframe.url}/_standin/deliveries", timeout=10).json()
    assert {"key": ["0123456789", 2, "r1"], "count": 2} in control
