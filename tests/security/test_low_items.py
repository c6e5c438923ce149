"""The low items of the second attack run: JWT header shapes, JWKS refresh that never blocks known keys,
CSV cells, production refusals (placeholder secrets, /docs), CORS closed on the admin area."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from cds_service.admin.analytics import RuleStatistics, as_csv
from cds_service.settings import SettingsError, load_settings
from cds_service.trust.jwks import RemoteKeySets
from tests.security.test_trust_setup import PRODUCTION
from tests.support.app import client_for, make_app, sample
from tests.support.jwt_keys import jwks, new_key, sign, unsigned

ISS = "https://ehr.example.org"
SELECT = "/cds-services/vertebral-augmentation-select"

# --- JWT header shapes: every JSON type where a string belongs is a bare 401, never a 500 ----------------

SHAPES: list[Any] = [["ES384"], {"alg": "ES384"}, 384, 3.84, True, None, ""]


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Any]:
    key = new_key("ES384")
    key_file = tmp_path / "jwks.json"
    key_file.write_text(json.dumps(jwks(key)), encoding="utf-8")
    app = make_app(tmp_path, jwt_required=True, trusted_issuers=[{"iss": ISS, "jwks_file": str(key_file)}])
    with client_for(app) as client:
        yield client, key


@pytest.mark.parametrize("member", ["alg", "kid", "typ", "jku"])
@pytest.mark.parametrize("value", SHAPES, ids=[type(v).__name__ + repr(v)[:8] for v in SHAPES])
def test_a_jwt_header_member_of_any_json_type_is_a_bare_401(secured: Any, member: str, value: Any) -> None:
    client, key = secured
    header = {"alg": "ES384", "typ": "JWT", "kid": key.kid, member: value}
    claims = {"iss": ISS, "aud": f"http://testserver{SELECT}", "exp": 9_999_999_999, "iat": 1, "jti": "j"}
    token = unsigned(header, claims, secret=b"x")
    response = client.post(
        SELECT, json=sample("order-select.json"), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert response.content == b""


def test_a_header_that_is_not_an_object_is_a_bare_401(secured: Any) -> None:
    client, _ = secured
    for header in ("W10", "MQ", "bnVsbA", "InN0ciI"):  # [] 1 null "str", base64url
        response = client.get("/cds-services", headers={"Authorization": f"Bearer {header}.e30.c2ln"})
        assert response.status_code == 401


def test_a_good_jwt_still_passes(secured: Any) -> None:
    client, key = secured
    token = sign(key, iss=ISS, aud=f"http://testserver{SELECT}")
    response = client.post(
        SELECT, json=sample("order-select.json"), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


# --- JWKS: a slow refresh for an unknown kid never holds up known keys -----------------------------------


def test_a_slow_jwks_refresh_does_not_hold_up_verification_with_known_keys() -> None:
    release = threading.Event()
    calls: list[str] = []

    def fetch(url: str, timeout: float) -> dict[str, Any]:
        calls.append(url)
        if len(calls) > 1:
            release.wait(timeout)  # the issuer's endpoint is slow now
        return {"known": {"kid": "known"}}

    sets = RemoteKeySets(cache_seconds=0.2, cooldown_seconds=0, timeout_seconds=3, fetch=fetch)
    assert sets.key("u", "known") == {"kid": "known"}
    unknown = threading.Thread(target=sets.key, args=("u", "made-up-kid"))
    unknown.start()  # waits on the slow endpoint
    time.sleep(0.3)  # and the cached set is stale too
    durations = []
    for _ in range(20):
        started = time.monotonic()
        assert sets.key("u", "known") == {"kid": "known"}
        durations.append(time.monotonic() - started)
    release.set()
    unknown.join(5)
    assert max(durations) < 0.1
    assert len(calls) == 2  # one refresh in flight at a time, shared


def test_an_unknown_kid_waits_for_the_refresh_in_flight_and_finds_a_rotated_key() -> None:
    served = {"a": {"kid": "a"}}

    def fetch(url: str, timeout: float) -> dict[str, Any]:
        time.sleep(0.2)
        return dict(served)

    sets = RemoteKeySets(cache_seconds=600, cooldown_seconds=0, timeout_seconds=3, fetch=fetch)
    assert sets.key("u", "a") == {"kid": "a"}
    served["b"] = {"kid": "b"}
    found: list[Any] = []
    threads = [threading.Thread(target=lambda: found.append(sets.key("u", "b"))) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert found == [{"kid": "b"}] * 5
    assert sets.fetches <= 3  # the waiting calls shared refreshes rather than one each


class _SlowJwks(BaseHTTPRequestHandler):
    delay = 0.0
    document: ClassVar[dict[str, Any]] = {}

    def do_GET(self) -> None:
        time.sleep(type(self).delay)
        data = json.dumps(type(self).document).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_through_the_service_an_unknown_kid_does_not_slow_the_issuers_other_calls(tmp_path: Path) -> None:
    key = new_key("ES384")
    _SlowJwks.document = jwks(key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowJwks)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    try:
        app = make_app(
            tmp_path,
            jwt_required=True,
            jwks_refresh_cooldown_seconds=0,
            trusted_issuers=[{"iss": ISS, "jku": [url]}],
        )
        aud = "http://testserver/cds-services"
        with client_for(app) as client:
            assert (
                client.get(
                    "/cds-services", headers={"Authorization": f"Bearer {sign(key, iss=ISS, aud=aud)}"}
                ).status_code
                == 200
            )
            _SlowJwks.delay = 2.0
            stranger = new_key("ES384")
            slow = threading.Thread(
                target=client.get,
                args=("/cds-services",),
                kwargs={"headers": {"Authorization": f"Bearer {sign(stranger, iss=ISS, aud=aud)}"}},
            )
            slow.start()
            time.sleep(0.2)
            started = time.monotonic()
            status = client.get(
                "/cds-services", headers={"Authorization": f"Bearer {sign(key, iss=ISS, aud=aud)}"}
            ).status_code
            elapsed = time.monotonic() - started
            slow.join(10)
        assert status == 200
        assert elapsed < 1.0
    finally:
        server.shutdown()
        server.server_close()


# --- CSV cells -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_csv_cell_that_starts_like_a_formula_is_neutralised(start: str) -> None:
    row = RuleStatistics(rule="inr-high")
    row.override_reasons[f'{start}HYPERLINK("http://evil")'] += 2
    cells = list(csv.reader(io.StringIO(as_csv([row]))))[1]
    assert cells[-1].startswith("'")
    assert cells[0] == "inr-high"


# --- production refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"patient_hash_key": "CHANGE-ME-to-64-random-hex-characters"},
        {"admin_token": "CHANGE-ME-to-a-long-random-token"},
        {"admin_session_secret": "change_me_long_random_secret"},
        {"database_url": "postgresql+psycopg://vcds:CHANGE-ME@postgres:5432/vcds"},
        {"redis_url": "redis://:CHANGE-ME@redis:6379/0"},
    ],
)
def test_production_refuses_placeholder_secrets(change: dict[str, Any]) -> None:
    with pytest.raises(SettingsError, match="placeholder"):
        load_settings(**{**PRODUCTION, **change})


def test_production_serves_no_api_docs_unless_enabled(tmp_path: Path) -> None:
    with client_for(make_app(tmp_path / "a", **PRODUCTION)) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 404
    with client_for(make_app(tmp_path / "b", **PRODUCTION, api_docs_enabled=True)) as client:
        assert client.get("/openapi.json").status_code == 200
    with client_for(make_app(tmp_path / "c")) as client:  # dev: on by default
        assert client.get("/openapi.json").status_code == 200


# --- CORS ---------------------------------------------------------------------------------------------


def test_cors_is_configurable_and_closed_on_the_admin_area(tmp_path: Path) -> None:
    origin = "https://sandbox.cds-hooks.org"
    app = make_app(tmp_path, cors_origins=[origin], admin_token="a" * 32)
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    with client_for(app) as client:
        hooks = client.options(SELECT, headers=preflight)
        assert hooks.headers.get("access-control-allow-origin") == origin
        other = client.options(SELECT, headers={**preflight, "Origin": "https://evil.example.net"})
        assert other.headers.get("access-control-allow-origin") is None
        for path in ("/admin/api/thresholds", "/admin", "/admin/login"):
            admin_preflight = client.options(path, headers=preflight)
            assert admin_preflight.status_code >= 400
            assert "access-control-allow-origin" not in admin_preflight.headers
            admin_get = client.get(path, headers={"Origin": origin, "Authorization": "Bearer " + "a" * 32})
            assert "access-control-allow-origin" not in admin_get.headers
