"""Read the vertebral augmentation order out of `context.draftOrders`, however the EHR sends it.

EHRs send levels three ways (clinical-rules.md §1b): several bodySites on one order, one order per
level, or a primary code plus add-on lines; some only say it in text ("T12, L1") or in `quantity`.
The level count is the largest any of those says, so no style undercounts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from fhir_mappings.codesets import CodeSets, ProcedureCode, canonical_system
from fhir_mappings.json_access import (
    JsonObject,
    codings,
    concept_text,
    first_date,
    obj,
    objects,
    parse_date,
    reference_of,
    text,
)
from fhir_mappings.levels import (
    distinct_levels,
    level_count_in_text,
    levels_in_text,
    names_other_cementoplasty,
    names_vertebral_site,
    spine_position,
)
from rules.facts import DraftOrder, LevelOrigin, LevelSource, ProcedureKind, SpineRegion

SNOMED = "http://snomed.info/sct"
__all__ = ["DraftOrderReading", "levels_in_text", "read_draft_order", "region_of"]


def region_of(levels: Sequence[str]) -> SpineRegion | None:
    segments = {level[0] for level in levels}
    if segments == {"T"}:
        return "thoracic"
    if segments == {"L"}:
        return "lumbar"
    if segments <= {"T", "L"} and segments:
        return "thoracolumbar"
    if segments <= {"C", "T"} and segments:
        return "cervicothoracic"
    if segments <= {"L", "S"} and segments:
        return "lumbosacral"
    return None


@dataclass
class DraftOrderReading:
    """The merged order plus the raw resources the edge needs (to build an `update` suggestion)."""

    order: DraftOrder | None
    selected_resources: list[JsonObject] = field(default_factory=list)
    session_resources: list[JsonObject] = field(default_factory=list)
    """Every augmentation order of the session: unselected ones first, then the selected."""
    context_medication_requests: list[JsonObject] = field(default_factory=list)
    context_medications: list[JsonObject] = field(default_factory=list)
    """Medication resources sent beside draft MedicationRequests (Epic, since 2024)."""


@dataclass
class _Matched:
    resource: JsonObject
    procedure: ProcedureCode | None
    text_kind: ProcedureKind | None
    add_on_count: int


def _draft_entries(draft_orders: object) -> list[JsonObject]:
    bundle = obj(draft_orders)
    resources = [obj(entry.get("resource")) for entry in objects(bundle.get("entry"))]
    return [r for r in resources if r]


def _match(
    resource: JsonObject, codesets: CodeSets, snomed_codes: frozenset[str], demo: bool
) -> _Matched | None:
    if resource.get("resourceType") != "ServiceRequest" or resource.get("status") in (
        "revoked",
        "entered-in-error",
    ):
        return None
    concept = obj(resource.get("code"))
    primary: ProcedureCode | None = None
    add_ons = 0
    for system, code, display in codings(concept):
        found = codesets.procedure(system, code)
        if found is None and canonical_system(system) == SNOMED and code in snomed_codes:
            found = ProcedureCode(
                kind="vertebral-augmentation",
                region=None,
                add_on=False,
                demo_stand_in=False,
                display=display or "vertebral augmentation",
            )
        if found is None or (found.demo_stand_in and not demo):
            continue
        if found.add_on:
            add_ons += 1
        if primary is None or (primary.add_on and not found.add_on):
            primary = found
    words = concept_text(concept)
    text_kind = codesets.procedure_by_text(words) if words else None
    if primary is None and text_kind is not None and not _vertebral_by_text(words, resource):
        text_kind = None
    if primary is None and text_kind is None:
        return None
    return _Matched(resource=resource, procedure=primary, text_kind=text_kind, add_on_count=add_ons)


def _vertebral_by_text(words: str, resource: JsonObject) -> bool:
    """A text-only order is vertebral augmentation only when it names a vertebral level or spinal site
    and no other bone: a cementoplasty of the pelvis or a sacroplasty is not (clinical-rules.md §1)."""
    everything = " ; ".join([words, *(concept_text(site) for site in objects(resource.get("bodySite")))])
    return names_vertebral_site(everything) and not names_other_cementoplasty(everything)


def _body_site_levels(resource: JsonObject, codesets: CodeSets) -> list[str]:
    levels: list[str] = []
    for site in objects(resource.get("bodySite")):
        coded = [lvl for s, c, _ in codings(site) if (lvl := codesets.vertebra_level(s, c))]
        levels.extend(coded[:1] or levels_in_text(concept_text(site)))
    return levels


def _texts(resource: JsonObject) -> str:
    parts = [concept_text(resource.get("code")), text(resource.get("patientInstruction")) or ""]
    parts.extend(concept_text(d) for d in objects(resource.get("orderDetail")))
    parts.extend(text(n.get("text")) or "" for n in objects(resource.get("note")))
    return " ; ".join(p for p in parts if p)


def _quantity(resource: JsonObject) -> int:
    value = obj(resource.get("quantityQuantity")).get("value")
    return (
        int(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 30
        else 0
    )


def _planned_date(resources: Iterable[JsonObject]) -> date | None:
    dates = []
    for resource in resources:
        found = first_date(resource, "occurrenceDateTime", "occurrencePeriod")
        events = obj(resource.get("occurrenceTiming")).get("event")
        if found is None and isinstance(events, list) and events:
            found = parse_date(events[0])
        if found is not None:
            dates.append(found)
    return min(dates) if dates else None


def _procedure_kind(matched: Sequence[_Matched]) -> ProcedureKind:
    kinds = {m.procedure.kind for m in matched if m.procedure} | {m.text_kind for m in matched if m.text_kind}
    for kind in ("kyphoplasty", "vertebroplasty"):
        if kind in kinds:
            return kind
    return "vertebral-augmentation"


def _count_levels(
    matched: Sequence[_Matched], codesets: CodeSets
) -> tuple[list[LevelOrigin], int, LevelSource | None]:
    """The named levels with their origin, the level count, and what the count rests on.

    Structured data outranks text: body sites name the levels when any order has them; the count is the
    largest of the structured counts (body sites, one order per level, add-on lines, quantity). The
    order's text (history clauses removed) is read only when nothing structured names a level, and
    counts only when nothing structured counts. With nothing at all, one level is assumed (None).
    """
    origins: dict[str, LevelOrigin] = {}
    primaries = [m for m in matched if not (m.procedure and m.procedure.add_on)]
    per_order = len(primaries) > 1
    for m in matched:
        for level in _body_site_levels(m.resource, codesets):
            source: LevelSource = "one order per level" if per_order else "body site"
            origins.setdefault(level, LevelOrigin(level=level, source=source))
    add_on_lines = sum(m.add_on_count for m in matched)
    add_on_quantity = sum(_quantity(m.resource) for m in matched if m.procedure and m.procedure.add_on)
    counts: list[tuple[int, LevelSource]] = [
        (len(origins), "one order per level" if per_order else "body site"),
        (max((_quantity(m.resource) for m in primaries), default=0), "quantity"),
        (len(primaries) if per_order else 0, "one order per level"),
        ((1 + max(add_on_lines, add_on_quantity)) if add_on_lines else 0, "add-on code"),
    ]
    structured = max(counts, key=lambda c: c[0])
    if structured[0] > 0:
        return list(origins.values()), structured[0], structured[1]
    for m in matched:
        for level in levels_in_text(_texts(m.resource)):
            origins.setdefault(level, LevelOrigin(level=level, source="order text"))
    if origins:
        return list(origins.values()), len(origins), "order text"
    written = max((n for m in matched if (n := level_count_in_text(_texts(m.resource)))), default=None)
    if written is not None:
        return [], written, "order text"
    return [], 1, None


def read_draft_order(
    draft_orders: object,
    selections: Sequence[str] | None,
    codesets: CodeSets,
    snomed_codes: frozenset[str] = frozenset(),
    demo_stand_in: bool = False,
) -> DraftOrderReading:
    """The vertebral augmentation order in the draft orders, or `order=None` when there is none.

    `selections` (order-select) limits guidance to the selected orders; unselected augmentation
    orders still count towards the levels of the session. Order-sign passes None: all orders count.
    """
    entries = _draft_entries(draft_orders)
    selected_refs = set(selections) if selections is not None else None
    matched = [m for r in entries if (m := _match(r, codesets, snomed_codes, demo_stand_in))]
    guided = [m for m in matched if selected_refs is None or reference_of(m.resource) in selected_refs]
    medication_requests = [
        r for r in entries if r.get("resourceType") in ("MedicationRequest", "MedicationStatement")
    ]
    medications = [r for r in entries if r.get("resourceType") == "Medication"]
    if not guided:
        return DraftOrderReading(
            order=None, context_medication_requests=medication_requests, context_medications=medications
        )
    origins, level_count, count_source = _count_levels(matched, codesets)
    distinct = distinct_levels([o.level for o in origins])
    stated = count_source is not None
    region = next((m.procedure.region for m in guided if m.procedure and m.procedure.region), None)
    guided_ids = {id(m) for m in guided}  # by identity: `m not in guided` compared whole resources, O(n²)
    codes = tuple(dict.fromkeys(f"{s}|{c}" for m in matched for s, c, _ in codings(m.resource.get("code"))))
    order = DraftOrder(
        references=tuple(reference_of(m.resource) for m in matched),
        procedure=_procedure_kind(matched),
        region=region_of(distinct) or region,
        levels=tuple(distinct),
        level_origins=tuple(sorted(origins, key=lambda o: spine_position(o.level))),
        level_count_source=count_source,
        level_count=level_count,
        level_count_stated=stated,
        planned_date=_planned_date(m.resource for m in matched),
        codes=codes,
        is_demo_stand_in=all(m.procedure is not None and m.procedure.demo_stand_in for m in guided),
        display=concept_text(guided[0].resource.get("code")) or "vertebral augmentation",
    )
    return DraftOrderReading(
        order=order,
        selected_resources=[m.resource for m in guided],
        session_resources=[m.resource for m in matched if id(m) not in guided_ids]
        + [m.resource for m in guided],
        context_medication_requests=medication_requests,
        context_medications=medications,
    )
