"""DiagnosticReport, ImagingStudy and Procedure → ImagingFact: spine MRI/CT and DXA on record."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from fhir_mappings.codesets import CodeSets
from fhir_mappings.json_access import (
    JsonObject,
    codings,
    concept_text,
    first_date,
    objects,
    reference_of,
    text,
)
from fhir_mappings.parsing import validation_problem
from rules.facts import Evidence, ImagingFact, ParseIssue

ImagingKind = Literal["mri-spine", "ct-spine", "dxa"]
_EXCLUDED_STATUSES = frozenset({"entered-in-error", "cancelled", "not-done", "registered", "preparation"})
_DATE_FIELDS = {
    "DiagnosticReport": ("effectiveDateTime", "effectivePeriod", "issued"),
    "ImagingStudy": ("started",),
    "Procedure": ("performedDateTime", "performedPeriod"),
}


def _concepts(resource: JsonObject) -> list[object]:
    if resource.get("resourceType") == "ImagingStudy":
        concepts: list[object] = list(objects(resource.get("procedureCode")))
        for series in objects(resource.get("series")):
            site = series.get("bodySite")  # a Coding in R4, not a CodeableConcept
            if isinstance(site, dict):
                concepts.append({"coding": [site], "text": site.get("display")})
        return concepts
    return [resource.get("code")]


def imaging_kind(resource: JsonObject, codesets: CodeSets) -> ImagingKind | None:
    concepts = _concepts(resource)
    for concept in concepts:
        for system, code, _ in codings(concept):
            kind = codesets.imaging_kind(system, code)
            if kind is not None:
                return kind
    words = " ".join(concept_text(c) for c in concepts)
    if resource.get("resourceType") == "ImagingStudy":
        modalities = {
            m.get("code") for s in objects(resource.get("series")) for m in [s.get("modality") or {}]
        }
        words = f"{' '.join(str(m) for m in modalities if m)} {words} {resource.get('description') or ''}"
    return codesets.imaging_kind_by_text(words) if words.strip() else None


def map_imaging(
    resources: Iterable[JsonObject], codesets: CodeSets, issues: list[ParseIssue]
) -> tuple[ImagingFact, ...]:
    facts: list[ImagingFact] = []
    for resource in resources:
        if text(resource.get("status")) in _EXCLUDED_STATUSES:
            continue
        kind = imaging_kind(resource, codesets)
        if kind is None:
            continue
        performed = first_date(resource, *_DATE_FIELDS.get(str(resource.get("resourceType")), ()))
        if performed is None:
            issues.append(ParseIssue(reference=reference_of(resource), problem="imaging without a date"))
            continue
        problem = validation_problem(resource)
        if problem is not None:
            issues.append(problem)
            continue
        display = " / ".join(c for c in (concept_text(x) for x in _concepts(resource)) if c) or kind
        facts.append(
            ImagingFact(
                kind=kind,
                performed=performed,
                display=display,
                evidence=Evidence(reference=reference_of(resource), display=display, recorded=performed),
            )
        )
    return tuple(facts)
