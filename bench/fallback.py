"""Fallback fetch: a hook call without prefetch against the real FHIR server (SEKMET) on 127.0.0.1.

The patient (the largest record) is loaded into a fresh server from the test harness
(`tests/support/fhir_server.py`). Each query the service sends for a missing key (`fetch_query`) is
timed alone, one after another, following `next` pages, with a keep-alive session as the service uses:
the slowest of them is the floor of a call that runs them in parallel, their sum the cost of running them
one by one. The same queries sent at once by a plain thread pool show what the server itself allows.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import orjson
import requests

from bench.http_load import one_call
from bench.records import Record, hook_body
from cds_service.discovery import prefetch_keys
from cds_service.hook_models import HookRequest
from cds_service.patient_data import fetch_query
from fhir_mappings.codesets import default_codesets

HOOK_PATH = "/cds-services/vertebral-augmentation-select"


@dataclass(frozen=True)
class FallbackFigure:
    observations_on_server: int
    queries: dict[str, float]
    """Key → median milliseconds of its query alone (all pages)."""
    at_once_ms: float
    hook_ms: float
    cards: int

    @property
    def slowest(self) -> tuple[str, float]:
        key = max(self.queries, key=lambda k: self.queries[k])
        return key, self.queries[key]

    @property
    def serial_ms(self) -> float:
        return sum(self.queries.values())

    @property
    def ratio(self) -> float:
        return self.hook_ms / self.slowest[1]


def _transaction(record: Record) -> dict[str, Any]:
    """The record as a transaction Bundle for the harness (references to resources it lacks dropped)."""
    resources = [record.patient] + [r for rs in record.resources.values() for r in rs]
    entries = []
    for resource in resources:
        kept = {k: v for k, v in resource.items() if k not in ("encounter", "requester")}
        entries.append({"fullUrl": f"urn:uuid:{kept['id']}", "resource": kept})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _run_query(session: requests.Session, base: str, query: str) -> int:
    """GET the query and its `next` pages; the number of resources."""
    url: str | None = urljoin(base.rstrip("/") + "/", query)
    found = 0
    while url:
        response = session.get(url, headers={"Accept": "application/fhir+json"}, timeout=60)
        response.raise_for_status()
        page = orjson.loads(response.content)
        found += len(page.get("entry") or []) if page.get("resourceType") == "Bundle" else 1
        url = next((link["url"] for link in page.get("link") or [] if link.get("relation") == "next"), None)
    return found


def _median_ms(action: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def measure_fallback(
    record: Record, synthea_prefix: str | None, service_port: int, repeats: int
) -> FallbackFigure:
    from tests.support.fhir_server import FhirServer, load_synthea  # noqa: PLC0415 - test harness, on demand

    with FhirServer(max_lifetime=600) as fhir:
        bundle = load_synthea(synthea_prefix) if synthea_prefix else _transaction(record)
        patient_id = fhir.load_patient(bundle)
        if patient_id != record.patient_id:
            raise RuntimeError(f"loaded patient {patient_id}, expected {record.patient_id}")
        body = hook_body(record, prefetch=False, fhir_server=fhir.base_url)
        request = HookRequest.model_validate(body)
        queries = {
            key.key: fetch_query(key, request)
            for key in prefetch_keys(default_codesets())
            if not key.needs_encounter
        }
        session = requests.Session()
        found = {key: _run_query(session, fhir.base_url, query) for key, query in queries.items()}  # warm-up
        alone: dict[str, list[float]] = {key: [] for key in queries}
        for _ in range(repeats):
            for key, query in queries.items():
                started = time.perf_counter()
                _run_query(session, fhir.base_url, query)
                alone[key].append((time.perf_counter() - started) * 1000)

        local = threading.local()

        def pooled(query: str) -> int:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            return _run_query(local.session, fhir.base_url, query)

        with ThreadPoolExecutor(max_workers=len(queries)) as pool:
            list(pool.map(pooled, queries.values()))  # warm-up: one connection per thread
            at_once = _median_ms(lambda: list(pool.map(pooled, queries.values())), repeats)

        raw = orjson.dumps(body)
        _, answer = one_call(service_port, HOOK_PATH, raw)  # warm-up: the service's pooled connections
        hook_ms = _median_ms(lambda: one_call(service_port, HOOK_PATH, raw), repeats)
        cards = len(orjson.loads(answer).get("cards", []))
    return FallbackFigure(
        observations_on_server=found.get("observations", 0),
        queries={key: statistics.median(values) for key, values in alone.items()},
        at_once_ms=at_once,
        hook_ms=hook_ms,
        cards=cards,
    )
