"""The mapping cache: a record with the same content maps to the same facts, from memory; anything else
is mapped afresh; the draft order, the clock and the thresholds are never cached."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from cds_service.hooks.mapping_cache import MappingCache, prefetch_digest, record_digest
from cds_service.hooks.models import HookRequest
from cds_service.hooks.patient_data import DataStats
from cds_service.web.errors import PreconditionFailed
from fhir_mappings.codesets import default_codesets
from fhir_mappings.draft_orders import read_draft_order
from fhir_mappings.record import PatientRecord, build_facts, facts_from, map_record
from rules.facts import DataGap
from tests.scenarios.test_clinical_scenarios import all_scenarios, build_prefetch, hook_request
from tests.support.app import FIXED_NOW, client_for, make_app

CODESETS = default_codesets()
SELECT = "/cds-services/vertebral-augmentation-select"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record_of(resources: list[dict[str, Any]]) -> PatientRecord:
    record = PatientRecord()
    record.add(copy.deepcopy(resources))
    return record


def inr(value: float, when: str, rid: str = "inr-1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "6301-6", "display": "INR"}]},
        "subject": {"reference": "Patient/pat-1"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "{INR}"},
    }


def cache_count(result: str) -> float:
    value = REGISTRY.get_sample_value("vcds_mapping_cache_total", {"result": result})
    return value or 0.0


SCENARIOS = all_scenarios()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_scenario_maps_to_the_same_facts_from_the_cache_as_without_it(scenario: Any) -> None:
    body = hook_request(scenario)
    resources = [
        entry["resource"]
        for value in build_prefetch(scenario).values()
        if isinstance(value, dict)
        for entry in (value.get("entry") or [{"resource": value}])
    ]
    reading = read_draft_order(
        body["context"]["draftOrders"], body["context"].get("selections"), CODESETS, frozenset()
    )
    cache = MappingCache(CODESETS, max_entries=8, ttl_seconds=60)
    uncached = build_facts(record_of(resources), reading, FIXED_NOW, CODESETS)
    first = facts_from(cache.map(record_of(resources)), reading, FIXED_NOW, CODESETS)
    again = facts_from(cache.map(record_of(resources)), reading, FIXED_NOW, CODESETS)
    assert cache.size == 1  # the second record had the same content: one entry, reused
    assert first == uncached
    assert again == uncached


def test_the_same_content_is_a_hit_and_a_changed_resource_is_a_miss() -> None:
    cache = MappingCache(CODESETS, max_entries=8, ttl_seconds=60)
    hits, misses = cache_count("hit"), cache_count("miss")
    first = cache.map(record_of([inr(1.6, "2026-11-20")]))
    assert cache.map(record_of([inr(1.6, "2026-11-20")])) is first
    changed = cache.map(record_of([inr(2.4, "2026-11-20")]))
    assert changed is not first
    assert [lab.value for lab in changed.labs] == [2.4]
    assert (cache_count("hit") - hits, cache_count("miss") - misses) == (1, 2)


def test_gaps_and_issues_are_part_of_the_key() -> None:
    cache = MappingCache(CODESETS, max_entries=8, ttl_seconds=60)
    plain = record_of([inr(1.6, "2026-11-20")])
    with_gap = record_of([inr(1.6, "2026-11-20")])
    with_gap.gaps.append(DataGap(category="medications", reason="medicationRequests: timed out"))
    assert record_digest(plain) != record_digest(with_gap)
    assert cache.map(with_gap).gaps == (
        DataGap(category="medications", reason="medicationRequests: timed out"),
    )
    assert cache.map(plain).gaps == ()


def test_an_entry_expires_after_its_ttl() -> None:
    clock = FakeClock()
    cache = MappingCache(CODESETS, max_entries=8, ttl_seconds=30, clock=clock)
    first = cache.map(record_of([inr(1.6, "2026-11-20")]))
    clock.now += 29
    assert cache.map(record_of([inr(1.6, "2026-11-20")])) is first
    clock.now += 2
    assert cache.map(record_of([inr(1.6, "2026-11-20")])) is not first
    assert cache.size == 1


def test_the_oldest_entries_go_first_when_the_cache_is_full() -> None:
    cache = MappingCache(CODESETS, max_entries=3, ttl_seconds=60)
    mapped = [cache.map(record_of([inr(1.0 + i / 10, "2026-11-20")])) for i in range(4)]
    assert cache.size == 3
    assert cache.map(record_of([inr(1.3, "2026-11-20")])) is mapped[3]
    assert cache.map(record_of([inr(1.0, "2026-11-20")])) is not mapped[0]  # evicted, mapped again


@pytest.mark.parametrize(("entries", "seconds"), [(0, 60.0), (8, 0.0)])
def test_zero_entries_or_zero_seconds_turn_the_cache_off(entries: int, seconds: float) -> None:
    cache = MappingCache(CODESETS, max_entries=entries, ttl_seconds=seconds)
    first = cache.map(record_of([inr(1.6, "2026-11-20")]))
    assert cache.map(record_of([inr(1.6, "2026-11-20")])) is not first
    assert cache.size == 0


def test_a_record_that_cannot_be_encoded_is_mapped_without_the_cache() -> None:
    cache = MappingCache(CODESETS, max_entries=8, ttl_seconds=60)
    observation = inr(1.6, "2026-11-20")
    observation["valueQuantity"]["value"] = 2**70  # beyond 64 bits: orjson cannot encode it
    record = record_of([observation])
    assert record_digest(record) is None
    before = cache_count("uncacheable")
    assert cache.map(record) == map_record(record, CODESETS)
    assert cache_count("uncacheable") - before == 1
    assert cache.size == 0


def _without_ids(response: dict[str, Any]) -> str:
    return re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", repr(response))


def test_repeated_calls_while_the_order_changes_decide_on_the_new_order(tmp_path: Path) -> None:
    """order-select as the EHR fires it: the same prefetch each time, the order edited in between. The
    second and third calls reuse the mapping, and each answer is the one the order in hand calls for."""
    scenario = next(s for s in SCENARIOS if s.name == "copd-j44-9-three-levels")
    client = client_for(make_app(tmp_path))
    three_levels = hook_request(scenario)
    two_levels = copy.deepcopy(three_levels)
    order = two_levels["context"]["draftOrders"]["entry"][0]["resource"]
    order["bodySite"] = order["bodySite"][:2]
    hits = cache_count("hit")
    repeats = REGISTRY.get_sample_value("vcds_answer_cache_total", {"result": "hit"}) or 0.0
    answers = [client.post(SELECT, json=body).json() for body in (three_levels, two_levels, three_levels)]
    assert cache_count("hit") - hits == 1  # the edited order: same data, mapping reused
    # the third call repeats the first exactly: answered as it was, with new card ids
    assert (REGISTRY.get_sample_value("vcds_answer_cache_total", {"result": "hit"}) or 0.0) - repeats == 1
    rules = [{c["source"]["topic"]["code"] for c in a["cards"]} for a in answers]
    assert "copd-multilevel" in rules[0]
    assert "copd-multilevel" not in rules[1]
    assert _without_ids(answers[2]) == _without_ids(answers[0])
    assert {c["uuid"] for c in answers[2]["cards"]}.isdisjoint(c["uuid"] for c in answers[0]["cards"])


def test_the_cache_setting_reaches_the_app(tmp_path: Path) -> None:
    app = make_app(tmp_path, mapping_cache_entries=0)
    assert app.state.flow.mapping_cache is not None
    assert not app.state.flow.mapping_cache.enabled


def _request(prefetch: dict[str, Any], encounter: str | None = None) -> HookRequest:
    body = {
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "hook": "order-select",
        "context": {
            "userId": "Practitioner/prac-1",
            "patientId": "pat-1",
            "selections": ["ServiceRequest/va1"],
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": []},
            **({"encounterId": encounter} if encounter else {}),
        },
        "prefetch": prefetch,
    }
    return HookRequest.model_validate(body)


class CountingGather:
    def __init__(self, resources: list[dict[str, Any]]) -> None:
        self.resources = resources
        self.calls = 0

    def __call__(self) -> tuple[PatientRecord, DataStats]:
        self.calls += 1
        return record_of(self.resources), DataStats(prefetched=["observations"])


def test_a_repeated_prefetch_skips_gathering_and_mapping_and_still_counts_the_prefetch() -> None:
    cache = MappingCache(CODESETS, max_entries=8, ttl_seconds=60)
    prefetch = {"observations": {"resourceType": "Bundle", "type": "searchset", "entry": []}}
    gather = CountingGather([inr(1.6, "2026-11-20")])
    hits = REGISTRY.get_sample_value("vcds_prefetch_keys_total", {"outcome": "hit"}) or 0.0
    first, first_stats = cache.map_prefetched(prefetch_digest(_request(prefetch)), gather)
    again, again_stats = cache.map_prefetched(prefetch_digest(_request(copy.deepcopy(prefetch))), gather)
    assert gather.calls == 1
    assert again is first
    assert again_stats is first_stats
    # the second call's prefetch hit is counted although `gather` did not run for it
    assert (REGISTRY.get_sample_value("vcds_prefetch_keys_total", {"outcome": "hit"}) or 0.0) - hits == 1


def test_a_changed_prefetch_or_an_encounter_is_gathered_again() -> None:
    cache = MappingCache(CODESETS, max_entries=8, ttl_seconds=60)
    gather = CountingGather([inr(1.6, "2026-11-20")])
    prefetch = {"observations": {"resourceType": "Bundle", "type": "searchset", "entry": []}}
    cache.map_prefetched(prefetch_digest(_request(prefetch)), gather)
    cache.map_prefetched(prefetch_digest(_request(prefetch, encounter="enc-1")), gather)
    changed = copy.deepcopy(prefetch)
    changed["observations"]["entry"].append({"resource": inr(2.4, "2026-11-20")})
    cache.map_prefetched(prefetch_digest(_request(changed)), gather)
    assert gather.calls == 3


def test_a_call_without_clinical_data_is_not_remembered() -> None:
    cache = MappingCache(CODESETS, max_entries=8, ttl_seconds=60)
    calls = 0

    def failing() -> tuple[PatientRecord, DataStats]:
        nonlocal calls
        calls += 1
        raise PreconditionFailed("nothing clinical")

    for _ in range(2):
        with pytest.raises(PreconditionFailed):
            cache.map_prefetched(prefetch_digest(_request({})), failing)
    assert calls == 2
    assert cache.size == 0
