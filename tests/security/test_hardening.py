"""SSRF refusals at the edge (the policy table is test_url_policy.py), JSON shape limits, security
headers, the rate limiter, the published request schemas."""

from __future__ import annotations

import copy
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.admin.rate_limit import RateLimiter
from cds_service.hooks.json_limits import JsonLimits, check_json_limits
from cds_service.web.errors import ServiceError
from cds_service.web.security_headers import HSTS, PAGE_CSP
from tests.support.app import client_for, make_app, sample

SELECT = "/cds-services/vertebral-augmentation-select"


def _without_prefetch(fhir_server: str) -> dict[str, Any]:
    body = sample("order-select.json")
    body.pop("prefetch")
    body["fhirServer"] = fhir_server
    return body


@pytest.mark.parametrize(
    "fhir_server",
    [
        "https://fhir.example.org.evil.net/r4",
        "https://user:secret@fhir.example.org/r4",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_a_refused_fhir_server_gets_an_operation_outcome(tmp_path: Path, fhir_server: str) -> None:
    allowed = ["https://fhir.example.org/r4"] if "169.254" not in fhir_server else []
    with client_for(make_app(tmp_path, allowed_fhir_servers=allowed)) as client:
        response = client.post(SELECT, json=_without_prefetch(fhir_server))
    assert response.status_code == 400
    assert response.json()["issue"][0]["code"] == "security"
    assert "secret" not in response.text


# --- JSON limits ----------------------------------------------------------------------------------------

LIMITS = JsonLimits(max_depth=10, max_values=100, max_bundle_entries=5)


def _nested(depth: int) -> Any:
    node: Any = {}
    for _ in range(depth - 1):
        node = {"a": node}
    return node


def test_json_within_the_limits_passes() -> None:
    check_json_limits(_nested(10), LIMITS)
    check_json_limits({"resourceType": "Bundle", "entry": [{}] * 5}, LIMITS)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (_nested(11), 400),
        ([[[[[[[[[[[1]]]]]]]]]]], 400),
        ({"resourceType": "Bundle", "entry": [{}] * 6}, 413),
        (
            {
                "a": {"resourceType": "Bundle", "entry": [{}] * 3},
                "b": {"resourceType": "Bundle", "entry": [{}] * 3},
            },
            413,
        ),
        (list(range(101)), 413),
    ],
    ids=["deep-object", "deep-array", "entries", "entries-summed", "values"],
)
def test_json_beyond_the_limits_is_refused(body: Any, status: int) -> None:
    with pytest.raises(ServiceError) as raised:
        check_json_limits(body, LIMITS)
    assert raised.value.status_code == status


def test_the_service_refuses_deep_or_entry_heavy_hook_bodies(client: TestClient) -> None:
    deep = sample("order-select.json")
    deep["extension"] = _nested(200)
    response = client.post(SELECT, json=deep)
    assert response.status_code == 400
    assert "nested deeper" in response.json()["issue"][0]["diagnostics"]

    heavy = sample("order-select.json")
    filler = copy.deepcopy(heavy["prefetch"]["conditions"]["entry"][0])
    heavy["prefetch"]["conditions"]["entry"] = [filler] * 10_001
    response = client.post(SELECT, json=heavy)
    assert response.status_code == 413
    assert response.json()["resourceType"] == "OperationOutcome"


def test_json_nested_past_the_parser_limit_is_a_400(client: TestClient) -> None:
    response = client.post(
        SELECT, content=b"[" * 5000 + b"]" * 5000, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400


# --- security headers ---------------------------------------------------------------------------------


def test_html_pages_get_the_page_security_headers(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in response.headers


@pytest.mark.parametrize("path", ["/admin/login", "/playground"])
def test_every_page_gets_the_one_page_policy(tmp_path: Path, path: str) -> None:
    app = make_app(tmp_path, admin_token="admin-token-0123456789abcdef", playground_enabled=True)
    with client_for(app) as client:
        response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == PAGE_CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_json_responses_get_nosniff_only(client: TestClient) -> None:
    response = client.get("/cds-services")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers


def test_hsts_is_sent_when_the_service_is_public_over_https(tmp_path: Path) -> None:
    with client_for(make_app(tmp_path, public_base_url="https://cds.example.org")) as client:
        assert client.get("/healthz").headers["strict-transport-security"] == HSTS


# --- rate limiter ---------------------------------------------------------------------------------------


def test_the_rate_limiter_allows_n_per_window_then_says_when_to_retry() -> None:
    limiter = RateLimiter(max_events=3, per_seconds=1)
    assert [limiter.hit("login:1.2.3.4") for _ in range(4)] == [True, True, True, False]
    assert limiter.hit("login:5.6.7.8")
    assert not limiter.allowed("login:1.2.3.4")
    assert limiter.retry_after("login:1.2.3.4") == 1
    time.sleep(1.05)  # the window has passed
    assert limiter.allowed("login:1.2.3.4")
    assert limiter.hit("login:1.2.3.4")
    limiter.reset("login:1.2.3.4")
    assert limiter.retry_after("login:1.2.3.4") == 0
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(max_events=0, per_seconds=1)


def test_workers_sharing_a_redis_count_failed_logins_together(redis_url: str) -> None:
    url = redis_url  # a real Redis (tests/support/redis_server.py)
    key = f"login:test-{uuid.uuid4()}"
    first, second = (RateLimiter(max_events=2, per_seconds=60, storage_uri=url) for _ in range(2))
    assert first.hit(key)
    assert second.hit(key)
    assert not first.hit(key)  # the other worker's event counted here too
    assert 0 < second.retry_after(key) <= 60
    first.reset(key)
    assert second.allowed(key)


# --- the published OpenAPI document --------------------------------------------------------------------


def test_the_openapi_document_describes_the_hook_and_feedback_bodies(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    hook = paths["/cds-services/{service_id}"]["post"]["requestBody"]
    assert hook["required"] is True
    assert hook["content"]["application/json"]["schema"]["required"] == ["hook", "hookInstance", "context"]
    feedback = paths["/cds-services/{service_id}/feedback"]["post"]["requestBody"]
    assert "feedback" in feedback["content"]["application/json"]["schema"]["properties"]
