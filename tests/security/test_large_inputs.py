"""Input that was quadratic: thousands of selected draft orders are read in linear time, and the hook
call answers well under a second."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fhir_mappings.codesets import default_codesets
from fhir_mappings.draft_orders import read_draft_order
from tests.support.app import client_for, make_app, sample

SELECT = "/cds-services/vertebral-augmentation-select"
CPT = "http://www.ama-assn.org/go/cpt"


def _orders(count: int) -> tuple[dict[str, Any], list[str]]:
    entries = [
        {
            "resource": {
                "resourceType": "ServiceRequest",
                "id": f"o{i}",
                "status": "draft",
                "intent": "order",
                "code": {"coding": [{"system": CPT, "code": "22513"}]},
            }
        }
        for i in range(count)
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}, [
        f"ServiceRequest/o{i}" for i in range(count)
    ]


def _reading_seconds(count: int) -> float:
    bundle, selections = _orders(count)
    codesets = default_codesets()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        reading = read_draft_order(bundle, selections, codesets)
        best = min(best, time.perf_counter() - started)
    assert reading.order is not None
    assert len(reading.session_resources) == count
    return best


def test_reading_selected_draft_orders_grows_linearly() -> None:
    small, large = _reading_seconds(500), _reading_seconds(4000)
    assert large / small < 16  # 8× the orders: linear is about 8×, quadratic about 64×


def test_five_thousand_selected_orders_are_answered_well_under_a_second(tmp_path: Path) -> None:
    body = sample("order-select.json")
    bundle, selections = _orders(5000)
    body["context"]["draftOrders"] = bundle
    body["context"]["selections"] = selections
    with client_for(make_app(tmp_path)) as client:
        client.post(SELECT, json=body)  # warm
        started = time.perf_counter()
        response = client.post(SELECT, json=body)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert elapsed < 1.0
