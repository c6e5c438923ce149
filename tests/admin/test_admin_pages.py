"""The admin page, driven as a browser would (forms and cookies), without a browser."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cds_service.admin.auth import SESSION_COOKIE
from cds_service.admin.threshold_fields import field_specs, flatten
from rules.thresholds import DEFAULT_THRESHOLDS, RULE_IDS
from tests.admin.conftest import EDITOR, EDITOR_TOKEN, VIEWER_TOKEN, make_admin_app
from tests.support.app import client_for, make_app, sample

SELECT = "/cds-services/vertebral-augmentation-select"


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return html.unescape(match.group(1))


def login(client: TestClient, token: str = EDITOR_TOKEN, name: str = "Alice Admin") -> Any:
    form = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={"name": name, "token": token, "login_token": hidden(form.text, "login_token")},
        follow_redirects=False,
    )


def logged_in(app: FastAPI, token: str = EDITOR_TOKEN, name: str = "Alice Admin") -> TestClient:
    client = client_for(app)
    assert login(client, token, name).status_code == 303
    return client


def form_values(thresholds: Any = DEFAULT_THRESHOLDS) -> dict[str, str]:
    """The form a browser would send for these thresholds (checkboxes only when on)."""
    flat = flatten(thresholds)
    data = {}
    for spec in field_specs():
        value = flat[spec.path]
        data[spec.path] = "\n".join(value) if isinstance(value, list) else str(value)
    for rule_id in RULE_IDS:
        if flat[f"rules.{rule_id}.enabled"]:
            data[f"rules.{rule_id}.enabled"] = "on"
        data[f"rules.{rule_id}.indicator"] = flat[f"rules.{rule_id}.indicator"] or ""
    return data


def submit(client: TestClient, action: str, changes: dict[str, str], **extra: Any) -> Any:
    page = client.get("/admin")
    data = {
        **form_values(),
        "csrf": hidden(page.text, "csrf"),
        "base_version": hidden(page.text, "base_version"),
        **changes,
    }
    return client.post(action, data=data, follow_redirects=False, **extra)


def field_error(page: str, path: str) -> str:
    match = re.search(rf'<div class="error" id="e-{re.escape(path)}" role="alert">([^<]*)</div>', page)
    assert match, f"no error slot for {path}"
    return html.unescape(match.group(1))


# --------------------------------------------------------------------------- logging in


def test_the_page_sends_a_visitor_without_a_session_to_the_login_form(api: TestClient) -> None:
    response = api.get("/admin", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"


def test_logging_in_sets_a_strict_http_only_session_cookie(admin_app: FastAPI) -> None:
    client = client_for(admin_app)
    response = login(client)
    assert response.status_code == 303
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    assert "Path=/admin" in cookie
    assert EDITOR_TOKEN not in cookie
    page = client.get("/admin")
    assert page.status_code == 200
    assert "Alice Admin · editor" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_a_wrong_token_shows_a_message_and_is_audited(admin_app: FastAPI, api: TestClient) -> None:
    client = client_for(admin_app)
    response = login(client, token="not-a-valid-token-at-all", name="Mallory")
    assert response.status_code == 401
    assert "That token is not valid." in response.text
    failed = api.get("/admin/api/audit", headers=EDITOR).json()["entries"][0]
    assert (failed["action"], failed["actor"], failed["detail"]["via"]) == ("login-failed", "Mallory", "form")


def test_the_login_form_is_protected_against_forged_posts(admin_app: FastAPI) -> None:
    client = client_for(admin_app)
    response = client.post("/admin/login", data={"name": "x", "token": EDITOR_TOKEN}, follow_redirects=False)
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.cookies


def test_failed_logins_on_the_form_are_limited(admin_app: FastAPI) -> None:
    client = client_for(admin_app)
    for _ in range(5):
        assert login(client, token="wrong-wrong-wrong-wrong").status_code == 401
    blocked = login(client)
    assert blocked.status_code == 429
    assert "Too many failed logins" in blocked.text


def test_a_tampered_session_cookie_is_not_accepted(admin_app: FastAPI) -> None:
    client = logged_in(admin_app, VIEWER_TOKEN, "Val")
    cookie = client.cookies[SESSION_COOKIE]
    payload, signature = cookie.split(".")
    forged = payload.replace(payload[:4], "eyJu", 1) + "." + signature[::-1]
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, forged, path="/admin")
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_logging_out_ends_the_session(admin_app: FastAPI) -> None:
    client = logged_in(admin_app)
    page = client.get("/admin")
    response = client.post("/admin/logout", data={"csrf": hidden(page.text, "csrf")}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/admin", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_logged_out_cookie_is_refused_by_every_worker(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    """Server-side logout: the cookie's value, replayed after logout, is refused by the app that logged
    it out and by another one on the same database (another worker or replica)."""
    settings: dict[str, Any] = {"admin_session_secret": "s" * 32}
    if backend == "postgresql":
        settings["database_url"] = request.getfixturevalue("pg_url")
    one = make_admin_app(tmp_path, **settings)
    other = make_admin_app(tmp_path, **settings)
    client = logged_in(one)
    cookie = client.cookies[SESSION_COOKIE]
    with client_for(other) as second:
        second.cookies.set(SESSION_COOKIE, cookie, path="/admin")
        assert second.get("/admin", follow_redirects=False).status_code == 200  # valid on both before
        page = client.get("/admin")
        logout = client.post(
            "/admin/logout", data={"csrf": hidden(page.text, "csrf")}, follow_redirects=False
        )
        assert logout.status_code == 303
        assert second.get("/admin", follow_redirects=False).status_code == 303
    with client_for(one) as replay:
        replay.cookies.set(SESSION_COOKIE, cookie, path="/admin")
        assert replay.get("/admin", follow_redirects=False).status_code == 303


# --------------------------------------------------------------------------- the thresholds page


def test_every_threshold_is_shown_with_description_unit_bounds_and_source(admin_app: FastAPI) -> None:
    page = logged_in(admin_app).get("/admin").text
    for spec in field_specs():
        row = page[page.index(f'id="row-{spec.path}"') :]
        row = row[: row.index("</tr>")]
        assert html.escape(spec.description, quote=False) in row, spec.path
        assert html.escape(spec.unit, quote=False) in row, spec.path
        assert spec.source in row, spec.path
        if spec.ge is not None:
            assert "at least" in row, spec.path
    for rule_id in RULE_IDS:
        assert f'name="rules.{rule_id}.enabled"' in page
    assert 'id="current-version">1<' in page


def test_a_bad_value_is_refused_with_a_message_beside_the_field(admin_app: FastAPI, api: TestClient) -> None:
    client = logged_in(admin_app)
    response = submit(client, "/admin/thresholds", {"max_levels_severe_lung": "0", "reason": "try"})
    assert response.status_code == 422
    assert field_error(response.text, "max_levels_severe_lung") == "must be at least 1 levels"
    assert 'value="0"' in response.text  # the draft is shown as typed
    assert "Nothing was saved" in response.text
    cross = submit(client, "/admin/thresholds", {"inr_warning_max": "2.0", "reason": "try"})
    assert field_error(cross.text, "inr_critical_max") == "inr_critical_max must be at least inr_warning_max"
    empty = submit(client, "/admin/thresholds", {"pain_lookback_days": "", "reason": "try"})
    assert field_error(empty.text, "pain_lookback_days") == "required: enter a value"
    assert api.get("/admin/api/thresholds", headers=EDITOR).json()["version"] == 1


def test_a_reason_is_required_to_save(admin_app: FastAPI) -> None:
    response = submit(logged_in(admin_app), "/admin/thresholds", {"max_levels_severe_lung": "3"})
    assert response.status_code == 422
    assert field_error(response.text, "reason").startswith("required")


def test_saving_makes_a_version_that_decides_the_next_hook_call(admin_app: FastAPI) -> None:
    client = logged_in(admin_app)
    before = client.post(SELECT, json=sample("order-select.json")).json()
    assert "copd-multilevel" in {c["source"]["topic"]["code"] for c in before["cards"]}
    response = submit(
        client, "/admin/thresholds", {"max_levels_severe_lung": "3", "reason": "local protocol"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin?saved=2"
    page = client.get(response.headers["location"]).text
    assert "Saved as version 2" in page
    assert 'id="current-version">2<' in page
    assert 'name="max_levels_severe_lung" type="number"' in page
    after = client.post(SELECT, json=sample("order-select.json")).json()
    assert "copd-multilevel" not in {c["source"]["topic"]["code"] for c in after["cards"]}
    assert {c["extension"]["vertebral-cds"]["thresholdsVersion"] for c in after["cards"]} == {2}


def test_rules_can_be_switched_off_and_made_louder(admin_app: FastAPI, api: TestClient) -> None:
    client = logged_in(admin_app)
    changes = {"reason": "quieter", "rules.copd-multilevel.indicator": "critical"}
    data = form_values()
    del data["rules.osteoporosis-follow-up.enabled"]
    page = client.get("/admin")
    response = client.post(
        "/admin/thresholds",
        data={**data, **changes, "csrf": hidden(page.text, "csrf"), "base_version": "1"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    values = api.get("/admin/api/thresholds", headers=EDITOR).json()["values"]
    assert values["rules"]["osteoporosis-follow-up"] == {"enabled": False, "indicator": None}
    assert values["rules"]["copd-multilevel"] == {"enabled": True, "indicator": "critical"}


def test_a_form_without_its_csrf_token_is_refused(admin_app: FastAPI, api: TestClient) -> None:
    client = logged_in(admin_app)
    data = {**form_values(), "max_levels_severe_lung": "3", "reason": "x", "base_version": "1"}
    response = client.post("/admin/thresholds", data=data, follow_redirects=False)
    assert response.status_code == 403
    forged = client.post("/admin/thresholds", data={**data, "csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    assert api.get("/admin/api/thresholds", headers=EDITOR).json()["version"] == 1


def test_two_editors_on_the_page_the_second_keeps_the_draft_and_sees_the_conflict(admin_app: FastAPI) -> None:
    alice = logged_in(admin_app, name="Alice")
    bob = logged_in(admin_app, name="Bob")
    alice_page, bob_page = alice.get("/admin").text, bob.get("/admin").text

    def send(client: TestClient, page: str, changes: dict[str, str]) -> Any:
        data = {**form_values(), "csrf": hidden(page, "csrf"), "base_version": hidden(page, "base_version")}
        return client.post("/admin/thresholds", data={**data, **changes}, follow_redirects=False)

    assert send(alice, alice_page, {"max_levels_severe_lung": "3", "reason": "Alice"}).status_code == 303
    conflict = send(bob, bob_page, {"inr_warning_max": "1.4", "reason": "Bob's reason"})
    assert conflict.status_code == 409
    assert "Alice saved version 2 while you were editing version 1" in conflict.text
    assert 'name="inr_warning_max" type="number"' in conflict.text
    assert re.search(r'id="f-inr_warning_max"[^>]*value="1.4"', conflict.text, re.S)  # Bob's draft kept
    assert "Bob&#39;s reason" in conflict.text
    assert "<code>max_levels_severe_lung</code>: 2 → 3" in conflict.text  # what Alice changed
    assert hidden(conflict.text, "base_version") == "2"


def test_a_viewer_may_preview_but_not_save(admin_app: FastAPI, api: TestClient) -> None:
    client = logged_in(admin_app, VIEWER_TOKEN, "Vera")
    page = client.get("/admin").text
    assert 'id="save"' not in page
    assert 'id="preview-button"' in page
    refused = submit(client, "/admin/thresholds", {"max_levels_severe_lung": "3", "reason": "x"})
    assert refused.status_code == 403
    previewed = submit(client, "/admin/preview", {"max_levels_severe_lung": "3"})
    assert previewed.status_code == 200
    assert api.get("/admin/api/thresholds", headers=EDITOR).json()["version"] == 1


# --------------------------------------------------------------------------- what-if preview


def test_the_preview_lists_cards_that_would_vanish_and_keeps_the_draft(
    admin_app: FastAPI, api: TestClient
) -> None:
    client = logged_in(admin_app)
    response = submit(client, "/admin/preview", {"max_levels_severe_lung": "3", "reason": "draft"})
    assert response.status_code == 200
    page = response.text
    assert 'id="preview"' in page
    case = page[page.index('data-case="package/copd-three-levels-kyphoplasty"') :]
    case = case[: case.index("</article>")]
    assert 'data-rule="copd-multilevel" data-kind="vanishes"' in case
    assert re.search(r'id="f-max_levels_severe_lung"[^>]*value="3"', page, re.S)
    assert api.get("/admin/api/thresholds", headers=EDITOR).json()["version"] == 1


def test_the_preview_runs_an_uploaded_hook_request_too(admin_app: FastAPI) -> None:
    client = logged_in(admin_app)
    upload = json.dumps(sample("order-select.json")).encode()
    response = submit(
        client,
        "/admin/preview",
        {"max_levels_severe_lung": "3"},
        files=[("cases", ("my-patient.json", upload, "application/json"))],
    )
    assert response.status_code == 200
    assert 'data-case="upload/my-patient"' in response.text
    junk = submit(
        client, "/admin/preview", {}, files=[("cases", ("junk.json", b"{not json", "application/json"))]
    )
    assert "Upload refused: junk.json: not valid JSON" in junk.text


def test_a_preview_with_a_bad_value_shows_the_message_instead(admin_app: FastAPI) -> None:
    response = submit(logged_in(admin_app), "/admin/preview", {"platelets_min_10e9_per_l": "2"})
    assert response.status_code == 422
    assert field_error(response.text, "platelets_min_10e9_per_l") == "must be at least 5 10^9/L"
    assert 'id="preview"' not in response.text


# --------------------------------------------------------------------------- history, rollback, audit


def test_history_shows_each_version_with_its_diff_and_rolls_back(admin_app: FastAPI, api: TestClient) -> None:
    client = logged_in(admin_app, name="Alice")
    submit(client, "/admin/thresholds", {"max_levels_severe_lung": "3", "reason": "lung limit up"})
    page = client.get("/admin/history").text
    row = page[page.index('id="version-2"') :]
    row = row[: row.index("</tr>")]
    assert "Alice" in row
    assert "lung limit up" in row
    assert "<code>max_levels_severe_lung</code>: 2 → 3" in row
    assert "(in force)" in row
    assert "Roll back to version 1" in page

    compared = client.get("/admin/history?from=1&to=2").text
    assert 'id="comparison"' in compared
    assert "<code>max_levels_severe_lung</code></td><td>2</td><td>3</td>" in compared

    response = client.post(
        "/admin/rollback",
        data={"csrf": hidden(page, "csrf"), "version": "1", "base_version": "2", "reason": "too risky"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "Rolled back: version 3 is in force." in client.get(response.headers["location"]).text
    current = api.get("/admin/api/thresholds", headers=EDITOR).json()
    assert (current["version"], current["rollbackOf"], current["values"]) == (
        3,
        1,
        DEFAULT_THRESHOLDS.model_dump(mode="json"),
    )
    stale = client.post(
        "/admin/rollback",
        data={"csrf": hidden(page, "csrf"), "version": "2", "base_version": "2", "reason": "again"},
        follow_redirects=False,
    )
    assert stale.status_code == 409


def test_the_audit_page_lists_logins_and_changes(admin_app: FastAPI) -> None:
    client = logged_in(admin_app, name="Alice")
    submit(client, "/admin/thresholds", {"dxa_lookback_days": "365", "reason": "yearly DXA"})
    page = client.get("/admin/audit").text
    assert 'data-action="thresholds-update"' in page
    assert 'data-action="login"' in page
    assert "yearly DXA" in page
    assert "<code>dxa_lookback_days</code>: 730 → 365" in page


@pytest.mark.parametrize("path", ["/admin/history", "/admin/audit"])
def test_every_page_needs_a_session(api: TestClient, path: str) -> None:
    assert api.get(path, follow_redirects=False).status_code == 303


def test_the_admin_static_files_are_served(api: TestClient) -> None:
    assert api.get("/admin/static/admin.js").status_code == 200
    assert api.get("/admin/static/admin.css").status_code == 200


def test_the_page_is_closed_without_an_admin_token(tmp_path: Path) -> None:
    client = client_for(make_app(tmp_path))
    assert "The admin area is closed" in client.get("/admin/login").text
