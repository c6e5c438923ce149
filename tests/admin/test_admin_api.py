"""The admin API: every route needs a token; changes need If-Match; bad values get 422 per field; a stale
ETag gets 412 and changes nothing; rollback makes a new version; every change and failed login is audited.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from cds_service.admin.threshold_fields import field_specs
from rules.thresholds import DEFAULT_THRESHOLDS, ORDERED_PAIRS, RULE_IDS
from tests.admin.conftest import EDITOR, EDITOR_TOKEN, VIEWER, VIEWER_TOKEN, make_admin_app
from tests.support.app import client_for, make_app, sample

SELECT = "/cds-services/vertebral-augmentation-select"
ROUTES = [
    ("GET", "/admin/api/whoami"),
    ("GET", "/admin/api/thresholds"),
    ("GET", "/admin/api/thresholds/schema"),
    ("PUT", "/admin/api/thresholds"),
    ("POST", "/admin/api/thresholds/validate"),
    ("GET", "/admin/api/thresholds/history"),
    ("GET", "/admin/api/thresholds/versions/1"),
    ("GET", "/admin/api/thresholds/diff?from=1"),
    ("POST", "/admin/api/thresholds/rollback"),
    ("POST", "/admin/api/thresholds/what-if"),
    ("GET", "/admin/api/audit"),
]


def current(api: TestClient) -> tuple[dict[str, Any], str]:
    response = api.get("/admin/api/thresholds", headers=EDITOR)
    assert response.status_code == 200
    return response.json()["values"], response.headers["etag"]


def put(api: TestClient, values: dict[str, Any], etag: str, reason: str = "test change", **extra: Any) -> Any:
    return api.put(
        "/admin/api/thresholds",
        headers={**EDITOR, "If-Match": etag},
        json={"values": values, "reason": reason, **extra},
    )


def audit(api: TestClient) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = api.get("/admin/api/audit", headers=EDITOR).json()["entries"]
    return entries


def cards_by_rule(api: TestClient) -> dict[str, dict[str, Any]]:
    response = api.post(SELECT, json=sample("order-select.json"))
    assert response.status_code == 200
    return {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}


# --------------------------------------------------------------------------- who may do what


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_admin_route_refuses_a_call_without_a_token(api: TestClient, method: str, path: str) -> None:
    response = api.request(method, path, json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_admin_route_refuses_a_wrong_token(api: TestClient, method: str, path: str) -> None:
    response = api.request(method, path, json={}, headers={"Authorization": "Bearer not-the-token-at-all"})
    assert response.status_code == 401


def test_a_failed_login_is_audited_without_the_token(api: TestClient) -> None:
    api.get("/admin/api/thresholds", headers={"Authorization": "Bearer wrong-token-1234567890"})
    failed = [e for e in audit(api) if e["action"] == "login-failed"]
    assert len(failed) == 1
    assert failed[0]["detail"] == {"via": "bearer", "client": "testclient"}
    assert "wrong-token-1234567890" not in str(audit(api))


def test_failed_logins_are_limited_per_client(api: TestClient) -> None:
    for _ in range(5):
        assert api.get("/admin/api/thresholds", headers={"Authorization": "Bearer wrong"}).status_code == 401
    blocked = api.get("/admin/api/thresholds", headers=EDITOR)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0


def test_a_viewer_reads_but_cannot_change(api: TestClient) -> None:
    assert api.get("/admin/api/whoami", headers=VIEWER).json() == {"name": "api-viewer", "role": "viewer"}
    response = api.get("/admin/api/thresholds", headers=VIEWER)
    assert response.status_code == 200
    values, etag = response.json()["values"], response.headers["etag"]
    changed = api.put(
        "/admin/api/thresholds",
        headers={**VIEWER, "If-Match": etag},
        json={"values": {**values, "max_levels_severe_lung": 3}, "reason": "viewer tries"},
    )
    assert changed.status_code == 403
    rolled = api.post(
        "/admin/api/thresholds/rollback",
        headers={**VIEWER, "If-Match": etag},
        json={"version": 1, "reason": "x"},
    )
    assert rolled.status_code == 403
    assert current(api)[1] == '"thresholds-v1"'


def test_the_admin_area_is_closed_without_an_admin_token(tmp_path: Path) -> None:
    with client_for(make_app(tmp_path)) as client:
        response = client.get("/admin/api/thresholds", headers=EDITOR)
    assert response.status_code == 503
    assert "VCDS_ADMIN_TOKEN" in response.json()["detail"]


def test_tokens_never_reach_the_logs_or_the_database(tmp_path: Path, service_log: list[str]) -> None:
    admin_app = make_admin_app(tmp_path)
    api = client_for(admin_app)
    values, etag = current(api)
    put(api, {**values, "max_levels_severe_lung": 3}, etag)
    api.get("/admin/api/thresholds", headers={"Authorization": "Bearer wrong-token-abcdefghijkl"})
    logged = "\n".join(service_log)
    assert "thresholds-v" in logged or "/admin/api/thresholds" in logged  # the log did record the calls
    with admin_app.state.database.engine.connect() as connection:
        stored = str(connection.execute(text("SELECT * FROM audit_log")).all())
        stored += str(connection.execute(text("SELECT * FROM threshold_versions")).all())
    for secret in (EDITOR_TOKEN, VIEWER_TOKEN, "wrong-token-abcdefghijkl"):
        assert secret not in logged
        assert secret not in stored


# --------------------------------------------------------------------------- reading


def test_get_returns_the_values_in_force_with_version_and_etag(api: TestClient) -> None:
    response = api.get("/admin/api/thresholds", headers=VIEWER)
    body = response.json()
    assert response.headers["etag"] == '"thresholds-v1"'
    assert response.headers["cache-control"] == "no-store"
    assert body["version"] == 1
    assert body["action"] == "seed"
    assert body["author"] == "system"
    assert body["values"] == DEFAULT_THRESHOLDS.model_dump(mode="json")


def test_the_schema_describes_every_field_with_unit_bounds_and_source(api: TestClient) -> None:
    schema = api.get("/admin/api/thresholds/schema", headers=VIEWER).json()
    by_path = {f["path"]: f for f in schema["fields"]}
    assert set(by_path) == {spec.path for spec in field_specs()}
    assert "hold_intervals.warfarin_hold_days" in by_path
    lung = by_path["max_levels_severe_lung"]
    assert (lung["unit"], lung["minimum"], lung["maximum"], lung["default"]) == ("levels", 1, 10, 2)
    assert lung["source"]["id"] == "INSTITUTIONAL"
    assert lung["description"]
    assert schema["rules"]["ids"] == list(RULE_IDS)


# --------------------------------------------------------------------------- changing


def test_a_saved_version_decides_the_next_hook_call_and_cards_name_it(api: TestClient) -> None:
    before = cards_by_rule(api)
    assert "copd-multilevel" in before
    assert {c["extension"]["vertebral-cds"]["thresholdsVersion"] for c in before.values()} == {1}

    values, etag = current(api)
    response = put(api, {**values, "max_levels_severe_lung": 3}, etag, "three levels are fine with COPD here")
    assert response.status_code == 200
    assert response.headers["etag"] == '"thresholds-v2"'
    assert response.json()["version"] == 2
    assert response.json()["changed"] is True

    after = cards_by_rule(api)
    assert "copd-multilevel" not in after
    assert {c["extension"]["vertebral-cds"]["thresholdsVersion"] for c in after.values()} == {2}


def test_a_change_without_if_match_is_refused(api: TestClient) -> None:
    values, _ = current(api)
    response = api.put("/admin/api/thresholds", headers=EDITOR, json={"values": values, "reason": "no etag"})
    assert response.status_code == 428
    assert current(api)[1] == '"thresholds-v1"'


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"max_levels_per_session": 0}, "max_levels_per_session", "must be at least 1 levels"),
        ({"max_levels_severe_lung": 11}, "max_levels_severe_lung", "must be at most 10 levels"),
        ({"inr_warning_max": "high"}, "inr_warning_max", "enter a number"),
        ({"inr_lookback_days": 2.5}, "inr_lookback_days", "enter a whole number"),
        (
            {"inr_warning_max": 2.0, "inr_critical_max": 1.8},
            "inr_critical_max",
            "must be at least inr_warning_max",
        ),
        ({"max_levels_severe_lung": 4}, "max_levels_severe_lung", "must not exceed max_levels_per_session"),
        ({"procedure_snomed_codes": ["abc"]}, "procedure_snomed_codes", "is not a SNOMED CT concept id"),
        ({"rules": {"no-such-rule": {"enabled": False}}}, "rules", "unknown rule ids"),
        ({"rules": {"inr-high": {"indicator": "loud"}}}, "rules.inr-high.indicator", "choose one of"),
        ({"no_such_threshold": 1}, "no_such_threshold", "unknown setting"),
    ],
)
def test_invalid_values_get_422_with_a_message_per_field_and_change_nothing(
    api: TestClient, change: dict[str, Any], field: str, message: str
) -> None:
    values, etag = current(api)
    response = put(api, {**values, **change}, etag)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any(e["field"] == field and message in e["message"] for e in errors), errors
    assert current(api)[1] == '"thresholds-v1"'


def _with(values: dict[str, Any], path: str, value: float) -> dict[str, Any]:
    changed = copy.deepcopy(values)
    node = changed
    *parents, last = path.split(".")
    for name in parents:
        node = node[name]
    node[last] = int(value) if isinstance(node[last], int) else value
    return changed


def _get(values: dict[str, Any], path: str) -> float:
    node: Any = values
    for name in path.split("."):
        node = node[name]
    return float(node)


@pytest.mark.parametrize(("low", "high"), [(low, high) for low, high, _ in ORDERED_PAIRS])
def test_an_inverted_pair_is_refused_with_both_fields_named(api: TestClient, low: str, high: str) -> None:
    values, etag = current(api)
    inversions = [_with(values, low, _get(values, high) + 1), _with(values, high, _get(values, low) - 1)]
    named: list[set[str]] = []
    for inverted in inversions:
        response = put(api, inverted, etag)
        assert response.status_code == 422
        named.append({e["field"] for e in response.json()["errors"]})
    assert {low, high} in named  # one inversion within each field's own range names exactly the two
    assert all({low, high} <= fields or len(fields) == 1 for fields in named)
    assert current(api)[1] == '"thresholds-v1"'


def test_a_negative_hold_interval_is_refused(api: TestClient) -> None:
    values, etag = current(api)
    holds = {**values["hold_intervals"], "warfarin_hold_days": -1}
    response = put(api, {**values, "hold_intervals": holds}, etag)
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "hold_intervals.warfarin_hold_days", "message": "must be at least 0 days"}
    ]


def test_a_replacement_must_give_every_value(api: TestClient) -> None:
    _, etag = current(api)
    response = put(api, {"max_levels_severe_lung": 3}, etag)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"max_levels_per_session", "hold_intervals", "inr_warning_max"} <= fields


def test_a_reason_is_required(api: TestClient) -> None:
    values, etag = current(api)
    response = put(api, {**values, "max_levels_severe_lung": 3}, etag, reason="  ")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "reason"


def test_two_editors_one_wins_the_other_gets_a_conflict_and_nothing_is_lost(api: TestClient) -> None:
    alice_values, alice_etag = current(api)
    bob_values, bob_etag = current(api)

    alice = put(
        api, {**alice_values, "max_levels_severe_lung": 3}, alice_etag, "alice: lung limit", author="Alice"
    )
    assert alice.status_code == 200

    bob = put(api, {**bob_values, "inr_warning_max": 1.4}, bob_etag, "bob: INR", author="Bob")
    assert bob.status_code == 412
    assert bob.json()["currentVersion"] == 2
    assert bob.headers["etag"] == '"thresholds-v2"'
    values, etag = current(api)
    assert (values["max_levels_severe_lung"], values["inr_warning_max"]) == (3, 1.5)  # Alice's change kept

    merged = put(api, {**values, "inr_warning_max": 1.4}, etag, "bob: INR, again", author="Bob")
    assert merged.status_code == 200
    values, _ = current(api)
    assert (values["max_levels_severe_lung"], values["inr_warning_max"]) == (3, 1.4)
    assert [e["actor"] for e in audit(api) if e["action"] == "thresholds-update"] == ["api-editor"] * 2


def test_editors_racing_on_one_etag_make_exactly_one_version(api: TestClient) -> None:
    values, etag = current(api)
    statuses: list[int] = []
    start = threading.Barrier(6)

    def editor(lung: int) -> None:
        start.wait()
        statuses.append(
            put(api, {**values, "pain_lookback_days": 20 + lung}, etag, f"racer {lung}").status_code
        )

    threads = [threading.Thread(target=editor, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 412, 412, 412, 412, 412]
    history = api.get("/admin/api/thresholds/history", headers=VIEWER).json()
    assert [v["version"] for v in history["versions"]] == [2, 1]


def test_saving_the_values_in_force_makes_no_new_version(api: TestClient) -> None:
    values, etag = current(api)
    response = put(api, values, etag)
    assert response.status_code == 200
    assert response.json()["changed"] is False
    assert response.json()["version"] == 1


def test_the_validate_route_checks_without_saving(api: TestClient) -> None:
    values, _ = current(api)
    good = api.post("/admin/api/thresholds/validate", headers=VIEWER, json={"values": values})
    assert good.json() == {"valid": True, "errors": []}
    bad = api.post(
        "/admin/api/thresholds/validate",
        headers=VIEWER,
        json={"values": {**values, "spo2_severe_percent": 30}},
    )
    assert bad.json() == {
        "valid": False,
        "errors": [{"field": "spo2_severe_percent", "message": "must be at least 50 %"}],
    }


# --------------------------------------------------------------------------- history, diff, rollback


def _three_versions(api: TestClient) -> None:
    values, etag = current(api)
    put(api, {**values, "max_levels_severe_lung": 3}, etag, "second")
    values, etag = current(api)
    put(api, {**values, "inr_warning_max": 1.4, "inr_critical_max": 2.0}, etag, "third")


def test_history_lists_versions_newest_first_with_author_time_and_reason(api: TestClient) -> None:
    _three_versions(api)
    history = api.get("/admin/api/thresholds/history", headers=VIEWER).json()
    assert history["current"] == 3
    assert [(v["version"], v["reason"], v["current"]) for v in history["versions"]] == [
        (3, "third", True),
        (2, "second", False),
        (1, "initial thresholds (defaults)", False),
    ]
    assert all(v["author"] and v["createdAt"] for v in history["versions"])
    page = api.get("/admin/api/thresholds/history?limit=1&before=3", headers=VIEWER).json()
    assert [v["version"] for v in page["versions"]] == [2]


def test_each_version_keeps_its_full_values(api: TestClient) -> None:
    _three_versions(api)
    first = api.get("/admin/api/thresholds/versions/1", headers=VIEWER).json()
    assert first["values"] == DEFAULT_THRESHOLDS.model_dump(mode="json")
    second = api.get("/admin/api/thresholds/versions/2", headers=VIEWER).json()
    assert second["values"]["max_levels_severe_lung"] == 3
    assert second["values"]["inr_warning_max"] == 1.5
    assert api.get("/admin/api/thresholds/versions/99", headers=VIEWER).status_code == 404


def test_diff_between_two_versions(api: TestClient) -> None:
    _three_versions(api)
    body = api.get("/admin/api/thresholds/diff?from=1&to=3", headers=VIEWER).json()
    assert body == {
        "from": 1,
        "to": 3,
        "changes": [
            {"field": "max_levels_severe_lung", "from": 2, "to": 3},
            {"field": "inr_warning_max", "from": 1.5, "to": 1.4},
            {"field": "inr_critical_max", "from": 1.8, "to": 2.0},
        ],
    }
    to_current = api.get("/admin/api/thresholds/diff?from=2", headers=VIEWER).json()
    assert to_current["to"] == 3
    assert len(to_current["changes"]) == 2


def test_rollback_makes_a_new_version_equal_to_an_old_one(api: TestClient) -> None:
    _three_versions(api)
    _, etag = current(api)
    response = api.post(
        "/admin/api/thresholds/rollback",
        headers={**EDITOR, "If-Match": etag},
        json={"version": 1, "reason": "back to the defaults", "author": "Carol"},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["version"], body["action"], body["rollbackOf"]) == (4, "rollback", 1)
    assert body["values"] == DEFAULT_THRESHOLDS.model_dump(mode="json")
    assert "copd-multilevel" in cards_by_rule(api)
    entry = audit(api)[0]
    assert (entry["action"], entry["actor"], entry["detail"]["rollbackOf"]) == (
        "thresholds-rollback",
        "api-editor",
        1,
    )
    assert len(entry["detail"]["changes"]) == 3


def test_rollback_needs_a_fresh_etag_a_known_version_and_a_reason(api: TestClient) -> None:
    _three_versions(api)
    stale = api.post(
        "/admin/api/thresholds/rollback",
        headers={**EDITOR, "If-Match": '"thresholds-v2"'},
        json={"version": 1, "reason": "x"},
    )
    assert stale.status_code == 412
    fresh = {**EDITOR, "If-Match": '"thresholds-v3"'}
    missing = api.post("/admin/api/thresholds/rollback", headers=fresh, json={"version": 42, "reason": "x"})
    assert missing.status_code == 404
    no_reason = api.post("/admin/api/thresholds/rollback", headers=fresh, json={"version": 1})
    assert no_reason.status_code == 422
    assert api.get("/admin/api/thresholds/history", headers=VIEWER).json()["current"] == 3


# --------------------------------------------------------------------------- audit


def test_a_body_author_never_reaches_the_audit_log_or_the_history(api: TestClient) -> None:
    values, etag = current(api)
    saved = put(api, {**values, "conservative_care_min_weeks": 6}, etag, "r", author="Somebody Else")
    assert saved.status_code == 200
    _, etag = current(api)
    rolled = api.post(
        "/admin/api/thresholds/rollback",
        headers={**EDITOR, "If-Match": etag},
        json={"version": 1, "reason": "back", "author": "Somebody Else"},
    )
    assert rolled.status_code == 200
    history = api.get("/admin/api/thresholds/history", headers=VIEWER).json()["versions"]
    everything = str(audit(api)) + str(history)
    assert "Somebody Else" not in everything
    assert [v["author"] for v in history[:2]] == ["api-editor", "api-editor"]


def test_every_change_is_audited_with_actor_reason_and_what_changed(api: TestClient) -> None:
    values, etag = current(api)
    put(api, {**values, "conservative_care_min_weeks": 6}, etag, "payer asks for 6 weeks", author="Dr. Diaz")
    entry = audit(api)[0]
    assert entry["action"] == "thresholds-update"
    assert (entry["actor"], entry["role"]) == ("api-editor", "editor")
    assert entry["detail"] == {
        "version": 2,
        "basedOn": 1,
        "reason": "payer asks for 6 weeks",
        "changes": [{"field": "conservative_care_min_weeks", "from": 4, "to": 6}],
    }
    assert audit(api)[-1]["action"] == "thresholds-seed"


# --------------------------------------------------------------------------- what-if


def test_what_if_shows_cards_that_would_vanish_without_saving(api: TestClient, admin_app: Any) -> None:
    values, _ = current(api)
    uploaded = sample("order-select.json")
    uploaded["fhirServer"] = "https://ehr.example.org/fhir"
    uploaded["fhirAuthorization"] = {
        "access_token": "secret-access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds",
    }
    response = api.post(
        "/admin/api/thresholds/what-if",
        headers=VIEWER,
        json={"values": {**values, "max_levels_severe_lung": 3}, "cases": [uploaded]},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["baseVersion"] == 1
    results = {r["case"]: r for r in body["results"]}
    assert "package/copd-three-levels-kyphoplasty" in results
    for case in ("package/copd-three-levels-kyphoplasty", "upload/case-1"):
        assert [(c["kind"], c["rule"]) for c in results[case]["changes"]] == [("vanishes", "copd-multilevel")]
    assert results["package/inr-1-6-on-warfarin"]["changes"] == []
    assert body["summary"]["vanishes"] >= 2
    assert current(api)[1] == '"thresholds-v1"'
    with admin_app.state.database.engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM evaluations")).scalar_one() == 0


def test_what_if_shows_cards_that_would_appear_or_change(api: TestClient) -> None:
    values, _ = current(api)
    draft = {**values, "inr_warning_max": 1.7, "rules": {"eligibility": {"enabled": False}}}
    body = api.post("/admin/api/thresholds/what-if", headers=VIEWER, json={"values": draft}).json()
    changes = {(r["case"], c["kind"], c["rule"]) for r in body["results"] for c in r["changes"]}
    assert ("package/inr-1-6-on-warfarin", "vanishes", "inr-high") in changes
    assert ("package/pain-4-outpatient", "vanishes", "eligibility") in changes
    louder = {**values, "rules": {"copd-multilevel": {"enabled": True, "indicator": "critical"}}}
    body = api.post("/admin/api/thresholds/what-if", headers=VIEWER, json={"values": louder}).json()
    copd = next(r for r in body["results"] if r["case"] == "package/copd-three-levels-kyphoplasty")
    [change] = copd["changes"]
    assert (change["kind"], change["before"]["indicator"], change["after"]["indicator"]) == (
        "changes",
        "warning",
        "critical",
    )


def test_what_if_refuses_invalid_drafts_and_cases(api: TestClient) -> None:
    values, _ = current(api)
    bad_values = api.post(
        "/admin/api/thresholds/what-if",
        headers=VIEWER,
        json={"values": {**values, "max_levels_per_session": 0}},
    )
    assert bad_values.status_code == 422
    bad_case = api.post(
        "/admin/api/thresholds/what-if", headers=VIEWER, json={"cases": [{"hook": "patient-view"}]}
    )
    assert bad_case.status_code == 422
    assert bad_case.json()["errors"][0]["field"] == "cases[0]"


def test_a_saved_version_is_seen_by_another_app_on_the_same_database(tmp_path: Path) -> None:
    """Two app instances on one SQLite file stand in for two workers (the PostgreSQL test uses processes)."""
    first = make_admin_app(tmp_path)
    second = make_admin_app(tmp_path, thresholds_refresh_seconds=0)
    with client_for(first) as one, client_for(second) as two:
        assert "copd-multilevel" in cards_by_rule(two)
        values, etag = current(one)
        assert put(one, {**values, "max_levels_severe_lung": 3}, etag).status_code == 200
        after = cards_by_rule(two)
        assert "copd-multilevel" not in after
        assert {c["extension"]["vertebral-cds"]["thresholdsVersion"] for c in after.values()} == {2}


def test_a_partial_what_if_draft_is_completed_from_the_version_in_force(api: TestClient) -> None:
    values, etag = current(api)
    put(api, {**values, "max_levels_severe_lung": 3}, etag)
    body = api.post(
        "/admin/api/thresholds/what-if", headers=VIEWER, json={"values": {"inr_warning_max": 1.7}}
    ).json()
    changed = {(r["case"], c["rule"]) for r in body["results"] for c in r["changes"]}
    assert ("package/inr-1-6-on-warfarin", "inr-high") in changed
    assert not any(rule == "copd-multilevel" for _, rule in changed)  # the lung limit in force is kept
    partial = api.post(
        "/admin/api/thresholds/validate", headers=VIEWER, json={"values": {"inr_critical_max": 1.0}}
    )
    assert partial.json()["errors"][0]["field"] == "inr_critical_max"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/api/thresholds/versions/99999999999999999999",
        "/admin/api/thresholds/diff?from=99999999999999999999",
        "/admin/api/thresholds/history?before=99999999999999999999",
    ],
)
def test_absurd_version_numbers_are_refused_cleanly(api: TestClient, path: str) -> None:
    assert api.get(path, headers=VIEWER).status_code in (400, 422)
