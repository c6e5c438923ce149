"""Gather the patient's data: prefetch first, then the FHIR server for what is missing (CDS Hooks §Prefetch).

- key present with data: used (and its `next` pages followed on the FHIR server);
- key present with `null`: the EHR has no such data;
- key present with an OperationOutcome, or absent: fetched from `fhirServer`;
- a category that can be had neither way: a gap, said in a `data-unavailable` card;
- nothing clinical at all: 412.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from cds_service import metrics
from cds_service.discovery import PrefetchKey
from cds_service.errors import FetchRefused, PreconditionFailed
from cds_service.fhir_client import FhirFetcher, next_link
from cds_service.hook_models import HookRequest
from cds_service.smart_scopes import fetch_allowed
from cds_service.url_policy import UrlRefused
from fhir_mappings.record import PatientRecord
from rules.facts import DataCategory, DataGap, ParseIssue

_CLINICAL = frozenset(
    {
        DataCategory.CONDITIONS,
        DataCategory.OBSERVATIONS,
        DataCategory.MEDICATIONS,
        DataCategory.ALLERGIES,
        DataCategory.IMAGING,
    }
)


@dataclass
class DataStats:
    """How the data arrived; stored with the evaluation (no values, no ids)."""

    prefetched: list[str] = field(default_factory=list)
    prefetch_null: list[str] = field(default_factory=list)
    prefetch_errors: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    fetch_ms: float = 0.0

    def count(self) -> None:
        """Add these keys to the prefetch metrics (once per answered call, cached or not)."""
        metrics.observe_prefetch(
            hits=self.prefetched,
            nulls=self.prefetch_null,
            errors=self.prefetch_errors,
            fetched=self.fetched,
            failed=self.failed,
        )


FETCH_PAGE_SIZE = 1000
"""`_count` of the searches the service sends itself: each `next` page is one more round trip, and the
slowest query sets the latency of a call without prefetch. A server caps `_count` at its own maximum."""


def _fill(template: str, request: HookRequest) -> str:
    ctx = request.context
    values = {"patientId": ctx.patient_id, "encounterId": ctx.encounter_id or "", "userId": ctx.user_id}
    for name, value in values.items():
        template = template.replace(f"{{{{context.{name}}}}}", quote(value, safe="/"))
    return template


def fetch_query(key: PrefetchKey, request: HookRequest) -> str:
    """What the service asks `fhirServer` for a key it must fetch: the prefetch template, filled in, with
    large pages for a search."""
    query = _fill(key.template, request)
    return f"{query}&_count={FETCH_PAGE_SIZE}" if "?" in query else query


def _is_error(value: dict[str, Any]) -> bool:
    """An OperationOutcome, or a Bundle of nothing but OperationOutcomes (stops at the first other entry)."""
    resource_type = value.get("resourceType")
    if resource_type == "OperationOutcome":
        return True
    if resource_type != "Bundle":
        return False
    outcomes = False
    entries = value.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict) or resource.get("resourceType") != "OperationOutcome":
            return False
        outcomes = True
    return outcomes


def _entry_resources(value: dict[str, Any]) -> Iterator[Any]:
    """The resources in a prefetched value: itself, or a Bundle's entries (unchecked: see `_accept`)."""
    if value.get("resourceType") != "Bundle":
        yield value
        return
    entries = value.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict):
            yield entry.get("resource")


Arrival = Literal["not-asked", "null", "data", "error", "absent"]


def _arrival(key: PrefetchKey, request: HookRequest) -> Arrival:
    """How a key came in the request: not asked (needs an encounter the call has not), `null` (no
    data), data, an error (OperationOutcome: fetch it), or absent (fetch it)."""
    if key.needs_encounter and not request.context.encounter_id:
        return "not-asked"
    prefetch = request.prefetch or {}
    if key.key not in prefetch:
        return "absent"
    value = prefetch[key.key]
    if value is None:
        return "null"
    return "data" if isinstance(value, dict) and not _is_error(value) else "error"


def needs_fetch(request: HookRequest, keys: tuple[PrefetchKey, ...]) -> bool:
    """Whether `gather` will ask `fhirServer` for anything: blocking I/O, which belongs off the event loop."""
    if request.fhir_base is None:
        return False
    prefetch = request.prefetch or {}
    for key in keys:
        arrival = _arrival(key, request)
        if arrival in ("error", "absent") or (arrival == "data" and next_link(prefetch[key.key])):
            return True
    return False


def _accept(key: PrefetchKey, resources: Iterable[Any], record: PatientRecord) -> None:
    """Keep the resources of the types the key asks for; name any other type (OperationOutcomes, which
    servers add as warnings, are dropped silently). One pass: this runs over every prefetched entry."""
    wanted = key.resource_types
    by_type = record.resources
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        resource_type = resource.get("resourceType")
        if type(resource_type) is str and resource_type in wanted:
            by_type[resource_type].append(resource)
        elif resource_type != "OperationOutcome":
            record.issues.append(
                ParseIssue(reference=f"{resource_type}", problem=f"unexpected type in {key.key}")
            )


def _drop_fetches_outside_the_scope(
    request: HookRequest, to_fetch: dict[str, str], by_key: dict[str, PrefetchKey], record: PatientRecord
) -> None:
    """SMART v1 or v2 scopes: only the fetches the EHR authorised are sent; the others become gaps."""
    scope = request.fhir_authorization.scope if request.fhir_authorization else None
    if scope is None:
        return
    for name in [n for n, query in to_fetch.items() if not fetch_allowed(scope, by_key[n].template, query)]:
        record.gaps.append(
            DataGap(category=by_key[name].category, reason=f"{name}: outside the granted scope")
        )
        del to_fetch[name]


def gather(
    request: HookRequest, keys: tuple[PrefetchKey, ...], fetcher: FhirFetcher, deadline: float | None = None
) -> tuple[PatientRecord, DataStats]:
    """The patient's data. `deadline` (monotonic): the call's, which bounds the fetches too. A
    `fhirServer` the URL policy refuses is a 400; a paging link it refuses is a gap of that key."""
    record = PatientRecord(patient_id=request.context.patient_id)
    stats = DataStats()
    prefetch = request.prefetch or {}
    to_fetch: dict[str, str] = {}
    by_key = {k.key: k for k in keys}
    for key in keys:
        arrival = _arrival(key, request)
        if arrival == "not-asked":
            continue
        if arrival == "null":
            stats.prefetch_null.append(key.key)
            continue
        if arrival == "data":
            value = prefetch[key.key]
            _accept(key, _entry_resources(value), record)
            next_url = next_link(value) if value.get("resourceType") == "Bundle" else None
            stats.prefetched.append(key.key)
            if next_url:
                to_fetch[key.key] = next_url
            continue
        if arrival == "error":
            stats.prefetch_errors.append(key.key)
        to_fetch[key.key] = fetch_query(key, request)

    base = request.fhir_base
    if to_fetch and base is None:
        for name in to_fetch:
            record.gaps.append(
                DataGap(category=by_key[name].category, reason=f"{name}: not prefetched and no fhirServer")
            )
    elif to_fetch and base is not None:
        try:
            fhir_base = fetcher.policy.fhir_base(base)
        except UrlRefused as error:
            raise FetchRefused(f"fhirServer refused by this service's URL policy: {error}") from error
        _drop_fetches_outside_the_scope(request, to_fetch, by_key, record)
        results = fetcher.fetch_all(fhir_base, to_fetch, request.access_token, deadline) if to_fetch else {}
        stats.fetch_ms = max((r.elapsed_ms for r in results.values()), default=0.0)
        for name, result in results.items():
            key = by_key[name]
            metrics.FETCH_LATENCY.labels(key=name).observe(result.elapsed_ms / 1000)
            if result.error is not None:
                metrics.FETCH_ERRORS.labels(key=name).inc()
                stats.failed.append(name)
                record.gaps.append(DataGap(category=key.category, reason=f"{name}: {result.error}"))
            else:
                stats.fetched.append(name)
                _accept(key, result.resources, record)

    failed_categories = {gap.category for gap in record.gaps}
    attempted = {k.category for k in keys if not (k.needs_encounter and not request.context.encounter_id)}
    got_clinical = (attempted & _CLINICAL) - failed_categories
    if not got_clinical:
        reasons = "; ".join(gap.reason for gap in record.gaps[:6])
        raise PreconditionFailed(
            f"The patient's data could not be obtained from prefetch or fhirServer: {reasons}"
        )
    stats.count()
    return record, stats
