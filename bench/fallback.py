"""Fallback fetch: a hook call without prefetch, the service fetching every key from `fhirServer`.

The patient (the largest record) is loaded into a fresh real FHIR server (SEKMET, from the test harness
`testing/fhir_server.py`) on 127.0.0.1. Each query the service sends for a missing key
(`fetch_query`) is timed alone, one after another, following `next` pages, over keep-alive
connections with the service's HTTP client (urllib3): the slowest of them is the floor of a call that
runs them in parallel, their sum the cost of running them one by one. The same queries sent at once
by a plain thread pool show what the server itself allows. SEKMET runs with four uvicorn workers: as
one process it would answer one query at a time, and the figure would measure its queue instead of
the service.

Then SEKMET's answers are replayed by a stand-in that answers each query after a fixed latency, many
at once, as an EHR's FHIR server does: there the slowest query and the sum are far apart, and the
call's latency shows whether the service sends its queries in parallel.

For SEKMET the CPU time its processes spend on one round of the queries sent at once is measured too
(from /proc): on a machine whose cores SEKMET shares with the service and the benchmark, no client can
get all answers sooner than that CPU time divided by the cores, whatever the slowest query costs alone.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import orjson
import urllib3

from bench.http_load import one_call
from bench.records import Record, hook_body
from bench.server import cpu_ms, descendants
from cds_service.hooks.discovery import prefetch_keys
from cds_service.hooks.models import HookRequest
from cds_service.hooks.patient_data import fetch_query
from fhir_mappings.codesets import default_codesets

HOOK_PATH = "/cds-services/vertebral-augmentation-select"
STAND_IN_LATENCY_SECONDS = 0.020
SEKMET_WORKERS = 4


@dataclass(frozen=True)
class FallbackFigure:
    server: str
    observations_on_server: int
    queries: dict[str, float]
    """Key → median milliseconds of its query alone (all pages)."""
    at_once_ms: float
    hook_ms: float
    """The call on a service with its mapping cache off: every call maps what it fetched (first call)."""
    again_ms: float
    """The same call again on a service with its mapping cache on (same answers: mapping reused)."""
    cards: int
    server_cpu_ms: float | None = None
    """CPU time of the FHIR server's processes for one round of the queries sent at once (None: not
    measured, as for the stand-in, which only sleeps)."""

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

    @property
    def again_ratio(self) -> float:
        return self.again_ms / self.slowest[1]

    @property
    def floor_ratio(self) -> float:
        """A plain thread pool's round of the same queries ÷ the slowest query: what a client that does
        nothing with the answers gets from this server on this machine, the floor of `ratio`."""
        return self.at_once_ms / self.slowest[1]


def _transaction(record: Record) -> dict[str, Any]:
    """The record as a transaction Bundle for the harness (references to resources it lacks dropped)."""
    resources = [record.patient] + [r for rs in record.resources.values() for r in rs]
    entries = []
    for resource in resources:
        kept = {k: v for k, v in resource.items() if k not in ("encounter", "requester")}
        entries.append({"fullUrl": f"urn:uuid:{kept['id']}", "resource": kept})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _run_query(
    http: urllib3.PoolManager, base: str, query: str, record: dict[str, bytes] | None = None
) -> int:
    """GET the query and its `next` pages, with keep-alive connections and the same HTTP client as the
    service (urllib3); the number of resources. `record`: path and query → body."""
    url: str | None = urljoin(base.rstrip("/") + "/", query)
    found = 0
    while url:
        response = http.request(
            "GET", url, headers={"Accept": "application/fhir+json"}, timeout=60.0, retries=False
        )
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status} for {url}")
        if record is not None:
            record[_request_key(url)] = response.data
        page = orjson.loads(response.data)
        found += len(page.get("entry") or []) if page.get("resourceType") == "Bundle" else 1
        url = next((link["url"] for link in page.get("link") or [] if link.get("relation") == "next"), None)
    return found


def _request_key(url: str) -> str:
    parts = urlsplit(url)
    return unquote(f"{parts.path}?{parts.query}" if parts.query else parts.path)


class StandIn:
    """Answers recorded FHIR responses after a fixed latency, each request in its own thread."""

    def __init__(self, latency_seconds: float) -> None:
        self.answers: dict[str, bytes] = {}
        answers, latency = self.answers, latency_seconds

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the service's connection pools expect

            def setup(self) -> None:
                super().setup()
                # headers and body go out in separate writes: without this, Nagle's algorithm and the
                # client's delayed ACK add 40 ms to every answer
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self) -> None:
                time.sleep(latency)
                body = answers.get(_request_key(self.path))
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/fhir"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def replay(self, recorded: dict[str, bytes], recorded_base: str) -> None:
        """Serve `recorded` (from `recorded_base`) at this server's base, links rewritten to it."""
        old, new = urlsplit(recorded_base), urlsplit(self.base_url)
        for key, body in recorded.items():
            self.answers[key] = body.replace(old.netloc.encode(), new.netloc.encode())

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _median_ms(action: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def _measure(
    server: str,
    base_url: str,
    record: Record,
    service_ports: tuple[int, int],
    repeats: int,
    recording: dict[str, bytes],
    server_pid: int | None = None,
) -> FallbackFigure:
    body = hook_body(record, prefetch=False, fhir_server=base_url)
    request = HookRequest.model_validate(body)
    queries = {
        key.key: fetch_query(key, request)
        for key in prefetch_keys(default_codesets())
        if not key.needs_encounter
    }
    http = urllib3.PoolManager(maxsize=len(queries), retries=False)
    found = {key: _run_query(http, base_url, query, recording) for key, query in queries.items()}  # warm-up
    alone: dict[str, list[float]] = {key: [] for key in queries}
    for _ in range(repeats):
        for key, query in queries.items():
            started = time.perf_counter()
            _run_query(http, base_url, query)
            alone[key].append((time.perf_counter() - started) * 1000)

    def pooled(query: str) -> int:
        return _run_query(http, base_url, query)  # the pool manager is shared by threads, as in the service

    server_pids = descendants(server_pid) if server_pid is not None else []
    with ThreadPoolExecutor(max_workers=len(queries)) as pool:
        list(pool.map(pooled, queries.values()))  # warm-up: one connection per thread
        cpu_before = sum(cpu_ms(pid) for pid in server_pids)
        at_once = _median_ms(lambda: list(pool.map(pooled, queries.values())), repeats)
        server_cpu = (sum(cpu_ms(pid) for pid in server_pids) - cpu_before) / repeats

    raw = orjson.dumps(body)
    cold_port, cached_port = service_ports
    _, answer = one_call(cold_port, HOOK_PATH, raw)  # warm-up: the service's pooled connections
    hook_ms = _median_ms(lambda: one_call(cold_port, HOOK_PATH, raw), repeats)
    one_call(cached_port, HOOK_PATH, raw)  # connections, and the mapping of these answers
    again_ms = _median_ms(lambda: one_call(cached_port, HOOK_PATH, raw), repeats)
    return FallbackFigure(
        server=server,
        observations_on_server=found.get("observations", 0),
        queries={key: statistics.median(values) for key, values in alone.items()},
        at_once_ms=at_once,
        hook_ms=hook_ms,
        again_ms=again_ms,
        cards=len(orjson.loads(answer).get("cards", [])),
        server_cpu_ms=server_cpu if server_pids else None,
    )


def measure_fallback(
    record: Record, synthea_prefix: str | None, service_ports: tuple[int, int], repeats: int
) -> tuple[FallbackFigure, FallbackFigure]:
    """(the real FHIR server, its answers replayed by a parallel stand-in with a fixed latency).

    `service_ports`: a service with its mapping cache off, and one with it on."""
    from testing.fhir_server import FhirServer, load_synthea  # noqa: PLC0415 - test harness, on demand

    recorded: dict[str, bytes] = {}
    # Four uvicorn workers, as a FHIR server is deployed: one SEKMET process answers one query at a time,
    # which would measure the server's queue, not whether the service sends its queries in parallel.
    with FhirServer(max_lifetime=600, workers=SEKMET_WORKERS) as fhir:
        bundle = load_synthea(synthea_prefix) if synthea_prefix else _transaction(record)
        patient_id = fhir.load_patient(bundle)
        if patient_id != record.patient_id:
            raise RuntimeError(f"loaded patient {patient_id}, expected {record.patient_id}")
        real = _measure(
            f"SEKMET ({SEKMET_WORKERS} uvicorn workers)",
            fhir.base_url,
            record,
            service_ports,
            repeats,
            recorded,
            server_pid=fhir.pid,
        )
        sekmet_base = fhir.base_url
    stand_in = StandIn(STAND_IN_LATENCY_SECONDS)
    try:
        stand_in.replay(recorded, sekmet_base)
        replayed = _measure(
            f"its answers, replayed after {STAND_IN_LATENCY_SECONDS * 1000:.0f} ms each, in parallel",
            stand_in.base_url,
            record,
            service_ports,
            repeats,
            {},
        )
    finally:
        stand_in.close()
    return real, replayed
