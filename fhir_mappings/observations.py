"""Observation → LabResult, in the unit the rules use.

Units differ between EHRs (platelets as 10*3/uL, 10*9/L or /uL); a value whose unit we cannot
convert is skipped and reported rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from fhir_mappings.codesets import CodeSets
from fhir_mappings.json_access import JsonObject, codings, concept_text, first_date, obj, reference_of, text
from fhir_mappings.parsing import validation_problem
from rules.facts import Evidence, LabKind, LabResult, ParseIssue, Unreadable
from rules.labs import NEWEST_ONLY_KINDS

EXCLUDED_STATUSES = frozenset({"entered-in-error", "cancelled", "registered"})

# Factor to the rules' unit, keyed by UCUM code or unit text (lower-cased).
_PLATELET_UNITS = {
    "10*3/ul": 1.0,
    "k/mcl": 1.0,
    "10*3/mcl": 1.0,
    "10^3/mcl": 1.0,
    "x10^3/ul": 1.0,
    "x10*3/ul": 1.0,
    "10e3/ul": 1.0,
    "thousand/ul": 1.0,
    "/mcl": 0.001,
    "10^3/ul": 1.0,
    "k/ul": 1.0,
    "x10e3/ul": 1.0,
    "thou/ul": 1.0,
    "10*3/mm3": 1.0,
    "10*9/l": 1.0,
    "10^9/l": 1.0,
    "g/l": 1.0,
    "x10e9/l": 1.0,
    "x10^9/l": 1.0,
    "x10*9/l": 1.0,
    "/ul": 0.001,
    "1/ul": 0.001,
    "/mm3": 0.001,
    "cells/ul": 0.001,
}
_UNITLESS = {
    "",
    "1",
    "{ratio}",
    "ratio",
    "{inr}",
    "inr",
    "{score}",
    "score",
    "{t-score}",
    "t-score",
    "{sd}",
    "sd",
}
_PERCENT = {"%", "percent", "% predicted", "%{predicted}"}
_RENAL = {"ml/min", "ml/min/{1.73_m2}", "ml/min/1.73m2", "ml/min/1.73 m2", "ml/min/{1.73m2}"}

_EXPECTED_UNITS: dict[str, tuple[dict[str, float] | set[str], str]] = {
    "platelets": (_PLATELET_UNITS, "10^9/L"),
    "inr": (_UNITLESS, "INR"),
    "pain-nrs": (_UNITLESS, "/10"),
    "t-score": (_UNITLESS, "T-score"),
    "fev1-percent-predicted": (_PERCENT, "% predicted"),
    "spo2": (_PERCENT, "%"),
    "fev1-fvc-ratio": (_UNITLESS | _PERCENT, "ratio"),
    "egfr": (_RENAL, "mL/min/1.73 m²"),  # normalised to body surface: not the CrCl unit (issue 16)
    "creatinine-clearance": (_RENAL, "mL/min"),
    "height-loss-percent": (_PERCENT, "%"),
    "disability-rdq": (_UNITLESS, "RDQ"),
}
_POSITIVE_WORDS = ("positive", "detected", "pos", "reactive")
_POSITIVE_CODES = frozenset({"10828004", "POS", "260373001", "A", "H"})
# US Core pregnancy status (LOINC 82810-3): answers from LOINC answer list LL4129-4 and SNOMED CT.
_PREGNANT_CODES = frozenset({"LA15173-0", "77386006"})
_NOT_PREGNANT_CODES = frozenset({"LA26683-5", "60001007"})
_NOT_PREGNANT_WORDS = re.compile(r"\b(not|non)[- ]?pregnant\b|\bnegative\b", re.IGNORECASE)
_PREGNANT_WORDS = re.compile(r"\bpregnant\b|\bpositive\b", re.IGNORECASE)
# A number as EHRs send it in valueString: "1.9", "<1.0", ">= 500", "1,9", "250 K/uL".
_NUMERIC_STRING = re.compile(
    r"^\s*(?P<cmp><=|>=|<|>|≤|≥)?\s*(?P<num>[+-]?(?:\d{1,3}(?:,\d{3})+|\d+(?:[.,]\d+)?|[.,]\d+))\s*"
    r"(?P<unit>[^\d\s].*)?$"
)
# Abnormal flags EHRs append to a value written as text: "1.9 H", "2.1*", "45 (L)", "300 high".
_FLAG_WORDS = r"(?:HH|LL|H|L|A|AA|high|low|critical|abnormal)"
_TRAILING_FLAG = re.compile(rf"(?:\s+{_FLAG_WORDS}|\s*\({_FLAG_WORDS}\)|\s*\*+)\s*$", re.IGNORECASE)
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+$")
_COMPARATORS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "≤": "<=", "≥": ">="}


def normalised_value(kind: LabKind, value: float, unit: str) -> tuple[float, str] | None:
    expected = _EXPECTED_UNITS.get(kind)
    if expected is None:
        return value, unit
    accepted, rules_unit = expected
    key = unit.strip().lower()
    if isinstance(accepted, dict):
        factor = accepted.get(key)
        return (value * factor, rules_unit) if factor is not None else None
    if key not in accepted:
        return None
    if kind == "fev1-fvc-ratio" and key in _PERCENT:
        return value / 100, rules_unit
    if kind == "spo2" and value <= 1.0:
        return value * 100, rules_unit  # some devices send a fraction
    return value, rules_unit


def _positive(resource: JsonObject) -> bool | None:
    concept = obj(resource.get("valueCodeableConcept"))
    for _, code, _ in codings(concept):
        if code in _POSITIVE_CODES:
            return True
    words = (concept_text(concept) or text(resource.get("valueString")) or "").lower()
    for interpretation in resource.get("interpretation") or []:
        for _, code, _ in codings(interpretation):
            if code in _POSITIVE_CODES:
                return True
    if words:
        return (
            any(w in words for w in _POSITIVE_WORDS)
            and "not detected" not in words
            and "negative" not in words
        )
    return None


def _effective(resource: JsonObject) -> date | None:
    return first_date(resource, "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")


@dataclass(frozen=True)
class _Reading:
    """A numeric value as sent: the number, its comparator (a bound) and the unit spellings to try."""

    value: float
    comparator: str | None
    spellings: list[str]


# Kinds whose LOINC code fixes the unit: a number written in valueString without a unit is in that unit
# (an eGFR ">60" is mL/min/1.73 m2, an SpO2 "94" is %). Platelet counts are not among them: 250 and
# 250000 are both written, and the unit decides.
_UNIT_FIXED_BY_CODE: dict[str, str] = {
    "egfr": "mL/min/{1.73_m2}",
    "creatinine-clearance": "mL/min",
    "spo2": "%",
    "pain-nrs": "{score}",
    "inr": "{INR}",
    "t-score": "{T-score}",
}


def _numeric(resource: JsonObject, kind: LabKind) -> _Reading | None:
    """The numeric value of an Observation (or component): valueQuantity (with its comparator),
    valueInteger, or a number written in valueString."""
    quantity = obj(resource.get("valueQuantity"))
    raw_value = quantity.get("value")
    if isinstance(raw_value, int | float) and not isinstance(raw_value, bool):
        spellings = [u for u in (text(quantity.get("code")), text(quantity.get("unit"))) if u] or [""]
        comparator = _COMPARATORS.get(text(quantity.get("comparator")) or "")
        return _Reading(float(raw_value), comparator, spellings)
    integer = resource.get("valueInteger")
    if isinstance(integer, int) and not isinstance(integer, bool):
        return _Reading(float(integer), None, [""])  # scores are often sent as plain integers
    words = text(resource.get("valueString"))
    if words:
        while (trimmed := _TRAILING_FLAG.sub("", words)) != words:
            words = trimmed
    match = _NUMERIC_STRING.match(words) if words else None
    if match is None:
        return None
    number = match.group("num")
    # "150,000" is a thousands separator; "1,7" a decimal comma.
    number = number.replace(",", "") if _THOUSANDS.match(number) else number.replace(",", ".")
    unit = (match.group("unit") or "").strip().replace(" ", "")
    if kind == "pain-nrs" and unit.replace(" ", "") in ("/10", "out of 10"):
        unit = ""  # "7/10": the scale, not a unit
    if not unit:
        unit = _UNIT_FIXED_BY_CODE.get(kind, "")
    return _Reading(float(number), _COMPARATORS.get(match.group("cmp") or ""), [unit])


def _has_value(resource: JsonObject) -> bool:
    return any(key.startswith("value") for key in resource)


def _pregnancy_status(resource: JsonObject) -> bool | None:
    concept = obj(resource.get("valueCodeableConcept"))
    for _, code, _ in codings(concept):
        if code in _PREGNANT_CODES:
            return True
        if code in _NOT_PREGNANT_CODES:
            return False
    words = concept_text(concept) or text(resource.get("valueString")) or ""
    if _NOT_PREGNANT_WORDS.search(words):
        return False
    if _PREGNANT_WORDS.search(words):
        return True
    return None


def _qualitative(
    kind: LabKind, resource: JsonObject, evidence: Evidence, effective: date
) -> LabResult | None:
    positive = _pregnancy_status(resource) if kind == "pregnancy-status" else _positive(resource)
    if positive is None:
        return None
    answer = (
        ("pregnant" if positive else "not pregnant")
        if kind == "pregnancy-status"
        else ("positive" if positive else "negative")
    )
    return LabResult(
        kind=kind,
        value=1.0 if positive else 0.0,
        unit="qualitative",
        effective=effective,
        evidence=evidence.model_copy(update={"display": f"{evidence.display}: {answer}"}),
        positive=positive,
    )


def _result(
    kind: LabKind, resource: JsonObject, issues: list[ParseIssue], unreadable: list[Unreadable]
) -> LabResult | None:
    """The result, or None. A result that carries a value the service cannot read is listed in
    `unreadable` (a result with no value at all, e.g. a cancelled test, is simply not a result)."""
    effective = _effective(resource)
    reference = reference_of(resource)
    if effective is None:
        issues.append(ParseIssue(reference=reference, problem=f"{kind} result without a date"))
        return None
    display = concept_text(resource.get("code")) or kind
    evidence = Evidence(reference=reference, display=display, recorded=effective)
    reading = _numeric(resource, kind)
    if kind == "pregnancy-status" or (kind == "hcg" and reading is None):
        result = _qualitative(kind, resource, evidence, effective)
        if result is None and _has_value(resource):
            unreadable.append(
                Unreadable(kind="lab", reference=reference, what=f"{kind} result not understood")
            )
        return result
    if reading is None:
        if resource.get("dataAbsentReason") and kind in NEWEST_ONLY_KINDS:
            unreadable.append(
                Unreadable(kind="lab", reference=reference, what=f"newest {kind} result has no value")
            )
        elif _has_value(resource):
            unreadable.append(
                Unreadable(
                    kind="lab", reference=reference, what=f"{kind} value is not a number the service reads"
                )
            )
        return None
    converted = None
    for spelling in reading.spellings:  # the UCUM code first, then the human unit text
        converted = normalised_value(kind, reading.value, spelling)
        if converted is not None:
            break
    if converted is None:
        issues.append(
            ParseIssue(reference=reference, problem=f"{kind} unit {reading.spellings[0]!r} not understood")
        )
        unreadable.append(Unreadable(kind="lab", reference=reference, what=f"{kind} unit not understood"))
        return None
    value, rules_unit = converted
    shown = f"{reading.comparator or ''}{value:g}"
    return LabResult(
        kind=kind,
        value=value,
        unit=rules_unit,
        effective=effective,
        evidence=evidence.model_copy(update={"display": f"{display}: {shown} {rules_unit}"}),
        positive=(value > 5) if kind == "hcg" else None,  # quantitative hCG above 5 mIU/mL is positive
        comparator=reading.comparator,
    )


def _kinds_of(resource: JsonObject, codesets: CodeSets) -> list[tuple[LabKind, JsonObject]]:
    """The (kind, observation-or-component) pairs this Observation carries; blood pressure-style
    panels put spirometry values in components."""
    found: list[tuple[LabKind, JsonObject]] = []
    for system, code, _ in codings(resource.get("code")):
        kind = codesets.lab_kind(system, code)
        if kind is not None:
            found.append((kind, resource))
            break
    for component in resource.get("component") or []:
        if not isinstance(component, dict):
            continue
        for system, code, _ in codings(component.get("code")):
            kind = codesets.lab_kind(system, code)
            if kind is not None:
                merged = {**resource, **component, "code": component.get("code")}
                found.append((kind, merged))
                break
    return found


def map_observations(
    resources: Iterable[JsonObject],
    codesets: CodeSets,
    issues: list[ParseIssue],
    unreadable: list[Unreadable] | None = None,
) -> tuple[LabResult, ...]:
    """Lab results, newest first (ties keep their order).

    Raw JSON is filtered by code and status first; then, newest first, each candidate is validated
    (once per resource) and converted. For kinds in `NEWEST_ONLY_KINDS` the first usable result is
    the only one kept, and older ones are neither validated nor reported: rules never read them, and a
    long record holds hundreds of pain scores and eGFRs whose validation would cost more than the rest
    of the call. A malformed newest result is reported and the next one is used; a newest result whose
    *value* cannot be read settles the kind with no result at all and goes to `unreadable`: using the
    older value instead would present it as the current one.
    """
    unread: list[Unreadable] = unreadable if unreadable is not None else []
    candidates: list[tuple[date, LabKind, JsonObject, JsonObject]] = []
    for resource in resources:
        kinds = _kinds_of(resource, codesets)
        if not kinds or text(resource.get("status")) in EXCLUDED_STATUSES:
            continue
        for kind, source in kinds:
            candidates.append((_effective(source) or date.min, kind, source, resource))
    candidates.sort(key=lambda c: c[0], reverse=True)  # stable: ties keep the record's order

    results: list[LabResult] = []
    settled: set[LabKind] = set()
    problems: dict[int, ParseIssue | None] = {}
    for _, kind, source, resource in candidates:
        if kind in settled:
            continue
        if id(resource) not in problems:
            problem = problems[id(resource)] = validation_problem(resource)
            if problem is not None:
                issues.append(problem)
        if problems[id(resource)] is not None:
            continue
        before = len(unread)
        result = _result(kind, source, issues, unread)
        if result is not None:
            results.append(result)
        if kind in NEWEST_ONLY_KINDS and (result is not None or len(unread) > before):
            settled.add(kind)
    return tuple(results)
