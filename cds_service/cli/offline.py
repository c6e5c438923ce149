"""Decide a hook request in this process, with no server, no database and no FHIR fetch.

`vertebral-cds evaluate` uses it: the same `HookFlow` as the endpoint (request validation, draft order,
prefetch, facts, rules, cards), with `record_evaluations` off, so nothing is stored or logged, and no
FHIR server, so a key that was not prefetched is missing data rather than a fetch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from cds_service.admin.thresholds_source import StaticThresholds
from cds_service.hooks.discovery import SERVICES, prefetch_keys
from cds_service.hooks.fhir_client import FetchLimits, FhirFetcher
from cds_service.hooks.flow import HookFlow
from cds_service.storage.database import Database
from fhir_mappings.codesets import CodeSets, default_codesets

SERVICE_FOR_HOOK = {service.hook: service for service in SERVICES}


@contextmanager
def offline_flow(
    *,
    thresholds_file: str | None = None,
    clock: Callable[[], datetime] | None = None,
    demo_imaging_stand_in: bool = False,
    codesets: CodeSets | None = None,
) -> Iterator[HookFlow]:
    """A `HookFlow` that records nothing and fetches nothing; closed on leaving the block."""
    codesets = codesets or default_codesets()
    fetcher = FhirFetcher(
        FetchLimits(request_timeout_seconds=1, deadline_seconds=1, max_pages=1, max_response_bytes=10_000),
        workers=1,
    )
    database = Database("sqlite://")  # never opened: nothing is recorded
    try:
        yield HookFlow(
            codesets=codesets,
            prefetch=prefetch_keys(codesets),
            fetcher=fetcher,
            database=database,
            thresholds=StaticThresholds.from_file(thresholds_file).current,
            hash_key=b"offline",
            clock=clock or (lambda: datetime.now(UTC)),
            new_id=lambda: str(uuid.uuid4()),
            demo_imaging_stand_in=demo_imaging_stand_in,
            record_evaluations=False,
        )
    finally:
        fetcher.close()
        database.dispose()


def decide(flow: HookFlow, request: dict[str, Any]) -> dict[str, Any]:
    """The response the service would send for `request` (order-select or order-sign)."""
    without_server = {k: v for k, v in request.items() if k not in ("fhirServer", "fhirAuthorization")}
    return flow.run(SERVICE_FOR_HOOK[str(request.get("hook"))], without_server)
