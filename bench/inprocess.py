"""In-process cost: what the hook endpoint does for one call, minus HTTP, against `json.loads` of its body.

"What the endpoint does" is the route's own steps after the body has arrived: `orjson.loads`, the JSON
shape limits, `HookFlow.run` (request model, draft order, prefetch, mapping, rules, cards, storing the
evaluation row in SQLite, the log line) and encoding the answer with orjson. Each repetition times
`json.loads`, `orjson.loads` and the endpoint's work back to back on the same bytes, so that a busy
machine slows all three alike; the figures are medians.
"""

from __future__ import annotations

import functools
import json
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.hooks import flow as hook_flow
from cds_service.hooks.discovery import SELECT_SERVICE_ID, SERVICES_BY_ID
from cds_service.hooks.flow import HookFlow
from cds_service.hooks.json_limits import JsonLimits, check_json_limits
from cds_service.settings import Settings

_STORE = "store_evaluation"
"""What `HookFlow` calls to write an evaluation row without the writer thread."""


@dataclass(frozen=True)
class InProcessFigure:
    name: str
    observations: int
    body_bytes: int
    runs: int
    json_ms: float
    orjson_ms: float
    service_ms: float
    """With every call mapping its data afresh (the mapping cache off): a patient seen for the first time."""
    storage_ms: float
    cards: int
    again_ms: float = 0.0
    """The same call again with the mapping cache on, as when order-select fires again for the patient."""

    @property
    def ratio(self) -> float:
        return self.service_ms / self.json_ms

    @property
    def us_per_observation(self) -> float:
        return self.service_ms * 1000 / self.observations


def bench_settings(data_dir: Path, *, raised_limits: bool = False) -> dict[str, str]:
    """VCDS_ settings of an app the benchmark builds: a SQLite file (the default deployment) and a fixed
    hash key; `raised_limits` accepts the 10,000-Observation record (about 9.6 MB; the default limit
    is 5 MB)."""
    settings = {
        "VCDS_DATABASE_URL": f"sqlite:///{data_dir / 'vertebral-cds.sqlite3'}",
        "VCDS_PATIENT_HASH_KEY": "bench-patient-hash-key",
    }
    if raised_limits:
        settings |= {
            "VCDS_MAX_REQUEST_BYTES": "40000000",
            "VCDS_MAX_JSON_VALUES": "5000000",
            "VCDS_MAX_BUNDLE_ENTRIES": "50000",
        }
    return settings


def _silence_logs(log_file: Path) -> None:
    """The service logs one JSON line per call, as deployed; here they go to a file, not the table."""
    stream = log_file.open("a", encoding="utf-8")
    for handler in logging.getLogger("vertebral_cds").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)


class InProcessBench:
    def __init__(self, data_dir: Path) -> None:
        values = bench_settings(data_dir, raised_limits=True)
        settings = Settings.model_validate({k.removeprefix("VCDS_").lower(): v for k, v in values.items()})
        self.app = create_app(settings)
        self._lifespan = TestClient(self.app)  # runs the app's start-up (and, in `close`, shutdown)
        self._lifespan.__enter__()
        _silence_logs(data_dir / "in-process.log")
        self.flow: HookFlow = self.app.state.flow
        # The served app queues its rows for a writer thread that batches them; here each call writes
        # its own row in the call, so the figure includes a whole transaction per call (the worst case).
        self.flow.writer = None
        # Decisions are measured here, so no call is answered as a repeat of an earlier one.
        self.flow.answer_cache = None
        self.cache = self.flow.mapping_cache
        self.service = SERVICES_BY_ID[SELECT_SERVICE_ID]
        self.limits = JsonLimits(
            settings.max_json_depth, settings.max_json_values, settings.max_bundle_entries
        )
        self.storage_ms: list[float] = []
        self._wrap_storage()

    def close(self) -> None:
        setattr(hook_flow, _STORE, self._store)
        self._lifespan.__exit__(None, None, None)

    def _wrap_storage(self) -> None:
        """Time each evaluation row the flow writes (in the call: the writer thread is off here)."""
        store: Callable[..., str] = getattr(hook_flow, _STORE)
        self._store = store

        @functools.wraps(store)
        def timed(*args: Any, **kwargs: Any) -> str:
            started = time.perf_counter()
            try:
                return store(*args, **kwargs)
            finally:
                self.storage_ms.append((time.perf_counter() - started) * 1000)

        setattr(hook_flow, _STORE, timed)

    def endpoint_work(self, raw: bytes) -> bytes:
        """The hook route's work for one body, minus HTTP."""
        body = orjson.loads(raw)
        check_json_limits(body, self.limits)
        return self.flow.answer(self.service, body)

    def measure(
        self, name: str, raw: bytes, observations: int, seconds: float, max_runs: int = 200
    ) -> InProcessFigure:
        self.flow.mapping_cache = None  # cold: every call maps its data
        answer = orjson.loads(self.endpoint_work(raw))  # warm-up, and a check that it decides
        started = time.perf_counter()
        self.endpoint_work(raw)
        estimate = time.perf_counter() - started
        runs = max(5, min(max_runs, int(seconds / max(estimate, 1e-4) / 1.5)))
        timings: dict[str, list[float]] = {"json": [], "orjson": [], "service": []}
        steps: list[tuple[str, Callable[[bytes], Any]]] = [
            ("json", json.loads),
            ("orjson", orjson.loads),
            ("service", self.endpoint_work),
        ]
        self.storage_ms.clear()
        for _ in range(runs):
            for key, step in steps:
                started = time.perf_counter()
                step(raw)
                timings[key].append((time.perf_counter() - started) * 1000)
        again = self._again_ms(raw, runs)
        return InProcessFigure(
            name=name,
            observations=observations,
            body_bytes=len(raw),
            runs=runs,
            json_ms=statistics.median(timings["json"]),
            orjson_ms=statistics.median(timings["orjson"]),
            service_ms=statistics.median(timings["service"]),
            storage_ms=statistics.median(self.storage_ms) if self.storage_ms else 0.0,
            cards=len(answer.get("cards", [])),
            again_ms=again,
        )

    def _again_ms(self, raw: bytes, runs: int) -> float:
        """Median of the same call with the mapping cache on and filled by a first call."""
        self.flow.mapping_cache = self.cache
        try:
            self.endpoint_work(raw)
            timings = []
            for _ in range(runs):
                started = time.perf_counter()
                self.endpoint_work(raw)
                timings.append((time.perf_counter() - started) * 1000)
            return statistics.median(timings)
        finally:
            self.flow.mapping_cache = None
