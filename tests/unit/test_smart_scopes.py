"""SMART v1 and v2 scope strings → which reads and searches the service may send."""

from __future__ import annotations

import pytest

from cds_service.hooks.smart_scopes import allows, fetch_allowed


@pytest.mark.parametrize(
    ("scope", "resource", "interaction", "expected"),
    [
        ("patient/Observation.read", "Observation", "s", True),
        ("patient/Observation.read", "Observation", "r", True),
        ("patient/Observation.rs", "Observation", "s", True),
        ("patient/Observation.r", "Observation", "s", False),
        ("patient/Observation.s", "Observation", "r", False),
        ("patient/Observation.cruds", "Observation", "s", True),
        ("patient/Observation.rs?category=laboratory", "Observation", "s", True),
        ("patient/*.rs", "Condition", "s", True),
        ("patient/*.read", "Condition", "r", True),
        ("user/*.*", "Condition", "s", True),
        ("system/Condition.rs", "Condition", "s", True),
        ("patient/Observation.write", "Observation", "s", False),
        ("patient/Observation.cud", "Observation", "r", False),
        ("patient/Observation.sr", "Observation", "s", False),  # v2 letters come in order c r u d s
        ("patient/Condition.rs", "Observation", "s", False),
        ("openid fhirUser launch/patient", "Patient", "r", False),
        ("", "Patient", "r", False),
        ("patient/Patient.r patient/Condition.s", "Condition", "s", True),
    ],
)
def test_scope_grants(scope: str, resource: str, interaction: str, expected: bool) -> None:
    assert allows(scope, resource, interaction) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("template", "query", "scope", "expected"),
    [
        ("Patient/{{context.patientId}}", "Patient/p1", "patient/Patient.r", True),
        ("Patient/{{context.patientId}}", "Patient/p1", "patient/Patient.s", False),
        ("Condition?patient={{context.patientId}}", "Condition?patient=p1", "patient/Condition.s", True),
        ("Condition?patient={{context.patientId}}", "Condition?patient=p1", "patient/Condition.r", False),
        (
            "Observation?patient=x",
            "https://fhir.example.org/r4?_getpages=abc",
            "patient/Observation.rs",
            True,
        ),
        ("Observation?patient=x", "https://fhir.example.org/r4?_getpages=abc", "patient/Condition.rs", False),
    ],
)
def test_a_fetch_is_a_read_or_a_search_of_its_keys_type(
    template: str, query: str, scope: str, expected: bool
) -> None:
    assert fetch_allowed(scope, template, query) is expected
