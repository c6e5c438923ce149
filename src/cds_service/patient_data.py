"""Gather the patient's data: prefetch first, then the FHIR server for what is missing (CDS Hooks §Prefetch).

- key present with data: used (and its `next` pages followed on the FHIR server);
- key present with `null`: the EHR has no such data;
- key present with an OperationOutcome, or absent: fetched from `fhirServer`;
- a category that can be had neither way: a gap, said in a `data-unavailable` card;
- nothing clinical at all: 412.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from cds_service.discovery import PrefetchKey
from cds_service.errors import FetchRefused, PreconditionFailed
from cds_service.fhir_client import FhirFetcher, same_origin
from cds_service.hook_models import HookRequest
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


def _fill(template: str, request: HookRequest) -> str:
    ctx = request.context
    values = {"patientId": ctx.patient_id, "encounterId": ctx.encounter_id or "", "userId": ctx.user_id}
    for name, value in values.items():
        template = template.replace(f"{{{{context.{name}}}}}", quote(value, safe="/"))
    return template


def _is_error(value: dict[str, Any]) -> bool:
    if value.get("resourceType") == "OperationOutcome":
        return True
    if value.get("resourceType") != "Bundle":
        return False
    entries = [e.get("resource") for e in value.get("entry") or [] if isinstance(e, dict)]
    return bool(entries) and all(
        isinstance(r, dict) and r.get("resourceType") == "OperationOutcome" for r in entries
    )


def _resources(value: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """Resources in a prefetched value, and its `next` page URL if paginated."""
    if value.get("resourceType") != "Bundle":
        return [value], None
    resources = [
        e["resource"]
        for e in value.get("entry") or []
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]
    next_url = next(
        (
            link.get("url")
            for link in value.get("link") or []
            if isinstance(link, dict) and link.get("relation") == "next"
        ),
        None,
    )
    return resources, next_url if isinstance(next_url, str) else None


def _accept(key: PrefetchKey, resources: list[dict[str, Any]], record: PatientRecord) -> None:
    wanted = [r for r in resources if r.get("resourceType") in key.resource_types]
    for unexpected in (r for r in resources if r.get("resourceType") not in key.resource_types):
        if unexpected.get("resourceType") != "OperationOutcome":
            record.issues.append(
                ParseIssue(
                    reference=f"{unexpected.get('resourceType')}", problem=f"unexpected type in {key.key}"
                )
            )
    record.add(wanted)


def allowed_server(base: str, allowed: list[str]) -> bool:
    return not allowed or any(base.rstrip("/").startswith(a.rstrip("/")) for a in allowed)


def gather(
    request: HookRequest, keys: tuple[PrefetchKey, ...], fetcher: FhirFetcher, allowed_servers: list[str]
) -> tuple[PatientRecord, DataStats]:
    record = PatientRecord()
    stats = DataStats()
    prefetch = request.prefetch or {}
    to_fetch: dict[str, str] = {}
    by_key = {k.key: k for k in keys}
    for key in keys:
        if key.needs_encounter and not request.context.encounter_id:
            continue
        if key.key in prefetch:
            value = prefetch[key.key]
            if value is None:
                stats.prefetch_null.append(key.key)
                continue
            if isinstance(value, dict) and not _is_error(value):
                resources, next_url = _resources(value)
                _accept(key, resources, record)
                stats.prefetched.append(key.key)
                if next_url:
                    to_fetch[key.key] = next_url
                continue
            stats.prefetch_errors.append(key.key)
        to_fetch[key.key] = _fill(key.template, request)

    base = request.fhir_base
    if to_fetch and base is None:
        for name in to_fetch:
            record.gaps.append(
                DataGap(category=by_key[name].category, reason=f"{name}: not prefetched and no fhirServer")
            )
    elif to_fetch and base is not None:
        if not allowed_server(base, allowed_servers):
            raise FetchRefused("fhirServer is not on this service's list of allowed FHIR servers")
        for name, query in to_fetch.items():
            if query.startswith(("http://", "https://")) and not same_origin(query, base):
                raise FetchRefused(f"prefetch {name} has a next link to another server")
        results = fetcher.fetch_all(base, to_fetch, request.access_token)
        stats.fetch_ms = max((r.elapsed_ms for r in results.values()), default=0.0)
        for name, result in results.items():
            key = by_key[name]
            if result.error is not None:
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
    return record, stats
