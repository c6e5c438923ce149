"""Gather the patient's data: prefetch first, then the FHIR server for what is missing (CDS Hooks §Prefetch).

- key present with data: used (and its `next` pages followed on the FHIR server);
- key present with `null`, or with a "no results" Bundle (only OperationOutcomes, every issue a warning or
  information, as Epic answers an empty search with code 4101): the EHR has no such data;
- key present with an error OperationOutcome, or absent: fetched from `fhirServer`;
- resources under keys the service never asked for (an analyst's own names, e.g. `medications`): used by
  their type, and a discovery key whose type came that way is not fetched (discovery stays the contract);
- a category that can be had neither way: a gap, said in a `data-unavailable` card;
- nothing clinical at all: 412.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from cds_service.hooks.discovery import PrefetchKey
from cds_service.hooks.fhir_client import FhirFetcher, next_link
from cds_service.hooks.models import HookRequest
from cds_service.hooks.smart_scopes import fetch_allowed
from cds_service.web import metrics
from cds_service.web.errors import FetchRefused, PreconditionFailed
from cds_service.web.url_policy import UrlRefused
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


_NOT_ERRORS = frozenset({"warning", "information"})


def _list(value: object) -> list[Any]:
    """A JSON array, or nothing: any other value where an array belongs reads as empty."""
    return value if isinstance(value, list) else []


def _outcome_only(value: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The OperationOutcomes of a value made of nothing else (itself, or a Bundle's every entry), or None
    when it holds anything else (stops at the first other entry)."""
    resource_type = value.get("resourceType")
    if resource_type == "OperationOutcome":
        return [value]
    if resource_type != "Bundle":
        return None
    outcomes = []
    for entry in _list(value.get("entry")):
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict) or resource.get("resourceType") != "OperationOutcome":
            return None
        outcomes.append(resource)
    return outcomes or None


def _no_results(outcome: dict[str, Any]) -> bool:
    """An OperationOutcome that only warns or informs (Epic's 4101 "no results"): not a failure."""
    issues = [i for i in _list(outcome.get("issue")) if isinstance(i, dict)]
    return bool(issues) and all(i.get("severity") in _NOT_ERRORS for i in issues)


def _classify(value: dict[str, Any]) -> Literal["data", "empty", "error"]:
    """A prefetched value: data; a search Bundle that found nothing and says so with warning or information
    outcomes (Epic's 4101, `search.mode: outcome`); or an error (any other OperationOutcome, bare or in a
    Bundle of nothing else: fetched again). A bare OperationOutcome is an error whatever its severity: a
    search answers with a Bundle."""
    outcomes = _outcome_only(value)
    if outcomes is None:
        return "data"
    if value.get("resourceType") == "Bundle" and all(_no_results(o) for o in outcomes):
        return "empty"
    return "error"


def _entry_resources(value: dict[str, Any]) -> Iterator[Any]:
    """The resources in a prefetched value: itself, or a Bundle's entries (unchecked: see `_accept`)."""
    if value.get("resourceType") != "Bundle":
        yield value
        return
    for entry in _list(value.get("entry")):
        if isinstance(entry, dict):
            yield entry.get("resource")


def _primary_types(key: PrefetchKey) -> frozenset[str]:
    """The types that answer a key (Medication comes with a medication search, but never answers one)."""
    return key.resource_types - {"Medication"}


def _self_link_type(value: dict[str, Any]) -> str | None:
    """The resource type a search Bundle was for, from its `self` link (`.../MedicationRequest?...`)."""
    for link in _list(value.get("link")):
        if isinstance(link, dict) and link.get("relation") == "self" and isinstance(link.get("url"), str):
            try:
                path = urlsplit(link["url"]).path.rstrip("/")
            except ValueError:  # an unparseable link names no type
                return None
            name = path.rsplit("/", 1)[-1]
            return name if name[:1].isupper() and name.isalpha() else None
    return None


@dataclass(frozen=True)
class _OtherKeys:
    """What came under prefetch keys the service never asked for: the resources of the types it reads, and
    the discovery keys those types (or an empty search for them) answer."""

    resources: tuple[dict[str, Any], ...] = ()
    answered: frozenset[str] = frozenset()
    empty: frozenset[str] = frozenset()
    """Discovery keys whose type came back as an empty search (a 4101 bundle's `self` link names it)."""


def _other_keys(request: HookRequest, keys: tuple[PrefetchKey, ...]) -> _OtherKeys:
    prefetch = request.prefetch or {}
    known = {k.key for k in keys}
    other = [v for name, v in prefetch.items() if name not in known and isinstance(v, dict)]
    if not other:
        return _OtherKeys()
    wanted = frozenset().union(*(k.resource_types for k in keys))
    resources: list[dict[str, Any]] = []
    types: set[str] = set()
    searched_empty: set[str] = set()
    for value in other:
        kind = _classify(value)
        if kind == "error":
            continue
        if kind == "empty":
            searched = _self_link_type(value)
            searched_empty.update({searched} if searched else ())
            continue
        for resource in _entry_resources(value):
            resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
            if type(resource_type) is str and resource_type in wanted:
                resources.append(resource)
                types.add(resource_type)
    answered = frozenset(k.key for k in keys if _primary_types(k) & types)
    empty = frozenset(k.key for k in keys if _primary_types(k) & searched_empty) - answered
    return _OtherKeys(tuple(resources), answered, empty)


Arrival = Literal["not-asked", "null", "data", "error", "absent", "elsewhere"]


def _arrival(key: PrefetchKey, request: HookRequest, other: _OtherKeys) -> Arrival:
    """How a key came in the request: not asked (needs an encounter the call has not), `null` or a "no
    results" Bundle (no data), data, an error (OperationOutcome: fetch it), absent (fetch it), or absent
    but its resources came under another key (`elsewhere`: not fetched; `null` when that was an empty
    search for its type)."""
    if key.needs_encounter and not request.context.encounter_id:
        return "not-asked"
    prefetch = request.prefetch or {}
    if key.key not in prefetch:
        if key.key in other.answered:
            return "elsewhere"
        return "null" if key.key in other.empty else "absent"
    value = prefetch[key.key]
    if value is None:
        return "null"
    if not isinstance(value, dict):
        return "error"
    kind = _classify(value)
    return "null" if kind == "empty" else kind


def needs_fetch(request: HookRequest, keys: tuple[PrefetchKey, ...]) -> bool:
    """Whether `gather` will ask `fhirServer` for anything: blocking I/O, which belongs off the event loop."""
    if request.fhir_base is None:
        return False
    prefetch = request.prefetch or {}
    other = _other_keys(request, keys)
    for key in keys:
        arrival = _arrival(key, request, other)
        if arrival in ("error", "absent") or (arrival == "data" and next_link(prefetch[key.key])):
            return True
    return False


def _accept(
    key: PrefetchKey, resources: Iterable[Any], record: PatientRecord, readable: frozenset[str]
) -> None:
    """Keep the resources of the types the service reads (`readable`), under whichever key they came;
    name any other type (OperationOutcomes, which servers add as warnings, are dropped silently). One
    pass: this runs over every prefetched entry."""
    by_type = record.resources
    for resource in resources:
        if not isinstance(resource, dict):
            continue
        resource_type = resource.get("resourceType")
        if type(resource_type) is str and resource_type in readable:
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


def _read_prefetch(
    request: HookRequest,
    keys: tuple[PrefetchKey, ...],
    record: PatientRecord,
    stats: DataStats,
    readable: frozenset[str],
) -> dict[str, str]:
    """Take what the prefetch holds into `record`; returns what must be fetched (key → query or URL)."""
    prefetch = request.prefetch or {}
    to_fetch: dict[str, str] = {}
    other = _other_keys(request, keys)
    record.add(other.resources)
    for key in keys:
        arrival = _arrival(key, request, other)
        if arrival == "not-asked":
            continue
        if arrival == "null":
            stats.prefetch_null.append(key.key)
            continue
        if arrival == "elsewhere":
            stats.prefetched.append(key.key)  # counted under the discovery key: site names are free text
            continue
        if arrival == "data":
            value = prefetch[key.key]
            _accept(key, _entry_resources(value), record, readable)
            next_url = next_link(value) if value.get("resourceType") == "Bundle" else None
            stats.prefetched.append(key.key)
            if next_url:
                to_fetch[key.key] = next_url
            continue
        if arrival == "error":
            stats.prefetch_errors.append(key.key)
        to_fetch[key.key] = fetch_query(key, request)
    return to_fetch


def gather(
    request: HookRequest, keys: tuple[PrefetchKey, ...], fetcher: FhirFetcher, deadline: float | None = None
) -> tuple[PatientRecord, DataStats]:
    """The patient's data. `deadline` (monotonic): the call's, which bounds the fetches too. A
    `fhirServer` the URL policy refuses is a 400; a paging link it refuses is a gap of that key."""
    record = PatientRecord(patient_id=request.context.patient_id)
    stats = DataStats()
    by_key = {k.key: k for k in keys}
    readable = frozenset().union(*(k.resource_types for k in keys))
    to_fetch = _read_prefetch(request, keys, record, stats, readable)

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
                _accept(key, result.resources, record, readable)

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
