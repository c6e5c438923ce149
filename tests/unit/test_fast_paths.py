"""The shortcuts that keep a hook call cheap change no decision: which lab results are validated and kept,
when a call must fetch (and so runs off the event loop), how the service pages its own searches, and the
level-by-level JSON limits walk (in slices for wide levels)."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.hooks.discovery import prefetch_keys
from cds_service.hooks.json_limits import JsonLimits, check_json_limits
from cds_service.hooks.models import HookRequest
from cds_service.hooks.patient_data import FETCH_PAGE_SIZE, fetch_query, needs_fetch
from cds_service.web.errors import ServiceError
from fhir_mappings.codesets import default_codesets
from fhir_mappings.observations import map_observations
from rules.facts import ParseIssue
from rules.labs import NEWEST_ONLY_KINDS
from tests.support.hook_requests import augmentation_order, order_select, searchset

LOINC = "http://loinc.org"
KEYS = prefetch_keys(default_codesets())
FHIR_SERVER = "https://ehr.example.org/fhir"


def observation(
    oid: str, code: str, when: str, value: Any = 1.2, unit: str = "{INR}", **extra: Any
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": when,
        **extra,
    }
    if value is not None:
        resource["valueQuantity"] = {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        }
    return resource


def mapped(*resources: dict[str, Any]) -> tuple[list[tuple[str, str]], list[ParseIssue]]:
    issues: list[ParseIssue] = []
    labs = map_observations(resources, default_codesets(), issues)
    return [(lab.kind, lab.evidence.reference) for lab in labs], issues


# --------------------------------------------------------------------------- lab results


def test_only_the_newest_result_of_a_newest_only_kind_is_kept_and_older_ones_are_not_validated() -> None:
    assert "inr" in NEWEST_ONLY_KINDS
    older_malformed = observation("inr-old", "6301-6", "2026-01-01", status=["not", "a", "code"])
    labs, issues = mapped(
        observation("inr-mid", "6301-6", "2026-06-01"),
        older_malformed,
        observation("inr-new", "6301-6", "2026-11-01"),
    )
    assert labs == [("inr", "Observation/inr-new")]
    assert issues == []  # the older, malformed one is never read by a rule, so never validated


def test_a_malformed_newest_result_is_reported_and_the_next_newest_is_used() -> None:
    labs, issues = mapped(
        observation("inr-old", "6301-6", "2026-06-01"),
        observation("inr-new", "6301-6", "2026-11-01", status=["not", "a", "code"]),
    )
    assert labs == [("inr", "Observation/inr-old")]
    assert [issue.reference for issue in issues] == ["Observation/inr-new"]


def test_a_newest_result_without_a_value_does_not_give_way_to_an_older_one() -> None:
    # Issue 15: the older count must not pass for the current one; the empty newest result is listed
    # in the data-unavailable card instead (tests/unit/test_lab_value_strings.py).
    labs, _ = mapped(
        observation("plt-old", "777-3", "2026-06-01", value=240, unit="10*3/uL"),
        observation("plt-new", "777-3", "2026-11-01", value=None, dataAbsentReason={"text": "clotted"}),
    )
    assert labs == []


def test_every_result_of_a_kind_read_over_a_window_is_kept() -> None:
    assert "hcg" not in NEWEST_ONLY_KINDS
    positive = {"valueCodeableConcept": {"text": "Positive"}}
    labs, _ = mapped(
        observation("hcg-new", "2106-3", "2026-11-01", value=None, valueCodeableConcept={"text": "Negative"}),
        observation("hcg-old", "2106-3", "2026-10-20", value=None, **positive),
    )
    assert labs == [("hcg", "Observation/hcg-new"), ("hcg", "Observation/hcg-old")]


def test_results_come_newest_first_with_ties_in_record_order() -> None:
    labs, _ = mapped(
        observation("egfr-a", "33914-3", "2026-11-01", value=55, unit="mL/min/{1.73_m2}"),
        observation("inr-a", "6301-6", "2026-11-01"),
        observation("pain-old", "72514-3", "2025-01-01", value=4, unit="{score}"),
        observation("t-new", "38267-1", "2026-10-01", value=-2.7, unit="{T-score}"),
    )
    assert [ref for _, ref in labs] == [
        "Observation/egfr-a",
        "Observation/inr-a",
        "Observation/t-new",
        "Observation/pain-old",
    ]


# --------------------------------------------------------------------------- fetching


def request(prefetch: dict[str, Any] | None, fhir_server: str | None = FHIR_SERVER) -> HookRequest:
    body = order_select("p1", augmentation_order("o1", "p1"), fhir_server=fhir_server, prefetch=prefetch)
    return HookRequest.model_validate(body)


def everything(**changes: Any) -> dict[str, Any]:
    prefetch: dict[str, Any] = {k.key: searchset([]) for k in KEYS if not k.needs_encounter}
    prefetch["patient"] = {"resourceType": "Patient", "id": "p1"}
    prefetch.update(changes)
    return prefetch


@pytest.mark.parametrize(
    ("prefetch", "fhir_server", "expected"),
    [
        (everything(), FHIR_SERVER, False),
        (everything(conditions=None), FHIR_SERVER, False),  # null: no data, nothing to fetch
        ({k: v for k, v in everything().items() if k != "allergies"}, FHIR_SERVER, True),
        (everything(allergies={"resourceType": "OperationOutcome", "issue": []}), FHIR_SERVER, True),
        (
            everything(
                observations={**searchset([]), "link": [{"relation": "next", "url": f"{FHIR_SERVER}/x"}]}
            ),
            FHIR_SERVER,
            True,
        ),
        (None, None, False),  # nothing to fetch from: gaps, not I/O
        (None, FHIR_SERVER, True),
    ],
    ids=[
        "all-prefetched",
        "null-key",
        "absent-key",
        "operation-outcome",
        "next-page",
        "no-fhir-server",
        "none",
    ],
)
def test_a_call_needs_fetching_exactly_when_gather_would_fetch(
    prefetch: dict[str, Any] | None, fhir_server: str | None, expected: bool
) -> None:
    assert needs_fetch(request(prefetch, fhir_server), KEYS) is expected


def test_the_service_asks_for_large_pages_on_its_own_searches_only() -> None:
    call = request(None)
    queries = {k.key: fetch_query(k, call) for k in KEYS if not k.needs_encounter}
    assert queries["patient"] == "Patient/p1"
    assert queries["observations"].startswith("Observation?patient=p1&code=")
    assert queries["observations"].endswith(f"&_count={FETCH_PAGE_SIZE}")
    assert all(q.endswith(f"&_count={FETCH_PAGE_SIZE}") for k, q in queries.items() if k != "patient")


# --------------------------------------------------------------------------- JSON limits


def test_json_limits_accept_a_scalar_body_and_count_values_across_levels() -> None:
    limits = JsonLimits(max_depth=3, max_values=5, max_bundle_entries=2)
    check_json_limits(7, limits)
    check_json_limits({"a": [1, 2], "b": {"c": 3}}, limits)  # 2 + 2 + 1 values, 3 levels
    with pytest.raises(ServiceError) as raised:
        check_json_limits({"a": [1, 2, 3], "b": {"c": 3}}, limits)
    assert raised.value.status_code == 413
    with pytest.raises(ServiceError) as raised:
        check_json_limits({"a": [{"b": {}}]}, limits)
    assert raised.value.status_code == 400


def _reference_counts(node: Any, depth: int = 1) -> tuple[int, int, int]:
    """(values, Bundle entries, depth) of a body, counted the obvious, recursive way."""
    if isinstance(node, dict):
        children: list[Any] = list(node.values())
        entry = node.get("entry")
        entries = len(entry) if node.get("resourceType") == "Bundle" and isinstance(entry, list) else 0
    elif isinstance(node, list):
        children, entries = node, 0
    else:
        return 0, 0, depth - 1
    values, deepest = len(children), depth
    for child in children:
        child_values, child_entries, child_depth = _reference_counts(child, depth + 1)
        values += child_values
        entries += child_entries
        deepest = max(deepest, child_depth)
    return values, entries, deepest


def _wide_body(entries: int, deep_at: int | None = None, deep_levels: int = 0) -> dict[str, Any]:
    """A Bundle with many entries (levels far wider than one slice of the walk), one of them made
    `deep_levels` deeper than the rest."""
    resources: list[dict[str, Any]] = [
        {"resource": {"resourceType": "Observation", "code": {"coding": [{"code": str(i)}]}, "n": [i, {}]}}
        for i in range(entries)
    ]
    if deep_at is not None:
        nested: Any = {}
        for _ in range(deep_levels):
            nested = {"x": nested}
        resources[deep_at]["resource"]["deep"] = nested
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": resources}
    return {"hook": "order-select", "prefetch": {"observations": bundle, "other": dict(bundle)}}


def test_json_limits_walk_wide_levels_in_slices_and_count_exactly() -> None:
    body = _wide_body(5_000, deep_at=4_321, deep_levels=4)
    values, entries, depth = _reference_counts(body)
    assert entries == 10_000
    assert values > 100_000  # each level holds thousands of containers

    check_json_limits(body, JsonLimits(max_depth=depth, max_values=values, max_bundle_entries=entries))
    for too_tight, status in (
        (JsonLimits(max_depth=depth - 1, max_values=values, max_bundle_entries=entries), 400),
        (JsonLimits(max_depth=depth, max_values=values - 1, max_bundle_entries=entries), 413),
        (JsonLimits(max_depth=depth, max_values=values, max_bundle_entries=entries - 1), 413),
    ):
        with pytest.raises(ServiceError) as raised:
            check_json_limits(body, too_tight)
        assert raised.value.status_code == status, too_tight
