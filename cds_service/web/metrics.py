"""Prometheus metrics: latency, cards by rule, FHIR fetches, prefetch hit rate, feedback, thresholds.

Labels carry ids of services, rules and prefetch keys only: never patient data. With several worker
processes, set PROMETHEUS_MULTIPROC_DIR (see README, "Operate") so /metrics adds up every worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HOOK_LATENCY = Histogram(
    "vcds_hook_latency_seconds", "Time to answer a hook call.", ["service"], buckets=_LATENCY_BUCKETS
)
HOOK_RESPONSES = Counter(
    "vcds_hook_responses_total", "Hook calls answered, by HTTP status.", ["service", "status"]
)
CARDS = Counter("vcds_cards_total", "Cards returned, by rule and indicator.", ["rule", "indicator"])
FETCH_LATENCY = Histogram(
    "vcds_fhir_fetch_seconds",
    "Time of one FHIR query to the EHR, by prefetch key.",
    ["key"],
    buckets=_LATENCY_BUCKETS,
)
FETCH_ERRORS = Counter("vcds_fhir_fetch_errors_total", "FHIR queries that failed, by prefetch key.", ["key"])
PREFETCH_KEYS = Counter(
    "vcds_prefetch_keys_total",
    "Prefetch keys by how they were satisfied: hit (sent by the EHR), null, error, fetched, failed.",
    ["outcome"],
)
FEEDBACK = Counter("vcds_feedback_total", "Feedback items stored, by rule and outcome.", ["rule", "outcome"])
MAPPING_CACHE = Counter(
    "vcds_mapping_cache_total",
    "Patient records mapped: hit (same content mapped before, within the TTL), miss, uncacheable.",
    ["result"],
)
ANSWER_CACHE = Counter(
    "vcds_answer_cache_total",
    "Hook calls answered as an identical earlier call was (new card ids; its own row and log line).",
    ["result"],
)
EVALUATION_ROWS_DROPPED = Counter(
    "vcds_evaluation_rows_dropped_total",
    "Evaluation rows not stored (the cards were still answered), by reason: queue full, database error.",
    ["reason"],
)
EVALUATION_BATCH_ROWS = Histogram(
    "vcds_evaluation_batch_rows",
    "Evaluation rows written per transaction by the writer thread.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
THRESHOLDS_VERSION = Gauge(
    "vcds_thresholds_version", "Thresholds version used by the latest hook call.", multiprocess_mode="max"
)


def observe_prefetch(
    hits: Iterable[str],
    nulls: Iterable[str],
    errors: Iterable[str],
    fetched: Iterable[str],
    failed: Iterable[str],
) -> None:
    for outcome, keys in (
        ("hit", hits),
        ("null", nulls),
        ("error", errors),
        ("fetched", fetched),
        ("failed", failed),
    ):
        count = sum(1 for _ in keys)
        if count:
            PREFETCH_KEYS.labels(outcome=outcome).inc(count)


def exposition() -> tuple[bytes, str]:
    """The metrics text; across all workers when running in multi-process mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
