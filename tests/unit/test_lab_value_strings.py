"""Lab values as EHRs send them: numbers in valueString, comparators, flags, separators; and a newest
result that cannot be read is never replaced by an older one."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings.codesets import default_codesets
from fhir_mappings.observations import map_observations
from rules.facts import ParseIssue, Unreadable

INR = {"system": "http://loinc.org", "code": "6301-6"}
PLATELETS = {"system": "http://loinc.org", "code": "777-3"}
EGFR = {"system": "http://loinc.org", "code": "33914-3"}


def _obs(code: dict[str, str], oid: str = "o1", when: str = "2026-11-19", **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [code]},
        "subject": {"reference": "Patient/pat-1"},
        "effectiveDateTime": when,
        **value,
    }


@pytest.mark.parametrize(
    ("code", "value", "expected", "comparator"),
    [
        (INR, {"valueString": "1.9"}, 1.9, None),
        (INR, {"valueString": "<1.0"}, 1.0, "<"),
        (INR, {"valueString": "≤ 1.1"}, 1.1, "<="),
        (INR, {"valueString": "1,7"}, 1.7, None),
        (INR, {"valueString": "1.9 H"}, 1.9, None),
        (INR, {"valueString": "2.1*"}, 2.1, None),
        (INR, {"valueQuantity": {"value": 8, "comparator": ">", "code": "{INR}"}}, 8.0, ">"),
        (PLATELETS, {"valueString": ">500 K/uL"}, 500.0, ">"),
        (PLATELETS, {"valueString": "45,000/uL"}, 45.0, None),
        (PLATELETS, {"valueString": "245,000 /uL"}, 245.0, None),
        (PLATELETS, {"valueString": "<10 x10^9/L"}, 10.0, "<"),
        (PLATELETS, {"valueString": "250 x 10^3/uL"}, 250.0, None),
        (EGFR, {"valueString": ">60"}, 60.0, ">"),
    ],
)
def test_numbers_written_as_text_are_read_with_their_comparator(
    code: dict[str, str], value: dict[str, Any], expected: float, comparator: str | None
) -> None:
    issues: list[ParseIssue] = []
    unreadable: list[Unreadable] = []
    results = map_observations([_obs(code, **value)], default_codesets(), issues, unreadable)
    assert [(r.value, r.comparator) for r in results] == [(pytest.approx(expected), comparator)]
    assert unreadable == []


@pytest.mark.parametrize(
    "value",
    [
        {"valueString": "hemolyzed, redraw"},
        {"valueString": "see comment"},
        {"valueCodeableConcept": {"text": "QNS"}},
        {"dataAbsentReason": {"text": "specimen clotted"}},
        {"valueString": "250"},  # a platelet count needs its unit: 250 and 250000 are both written
    ],
)
def test_an_unreadable_newest_result_is_listed_and_the_older_one_is_not_used(value: dict[str, Any]) -> None:
    code = PLATELETS if value.get("valueString") == "250" else INR
    older = _obs(code, "old", "2026-11-10", valueQuantity={"value": 1.0, "code": "{INR}"})
    if code is PLATELETS:
        older["valueQuantity"] = {"value": 240, "code": "10*3/uL"}
    newest = _obs(code, "new", "2026-11-19", **value)
    unreadable: list[Unreadable] = []
    results = map_observations([older, newest], default_codesets(), [], unreadable)
    assert results == ()
    assert [u.reference for u in unreadable] == ["Observation/new"]
