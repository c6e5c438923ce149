"""No request and no token reach a canary, from any `next` link or `fhirServer` form, in every profile.

Two servers on 127.0.0.1 besides the real FHIR server (SEKMET):
- the *gateway* is the allowed FHIR base: `/fhir/...` is passed on to SEKMET (and, when a test asks,
  its Bundles get a crafted `next` link, as a hostile or broken FHIR server would send); any other
  path on it is a canary path (reaching it escaped the allowed base on the same host and port);
- the *canary* is another port: any request at all reaching it escaped the allowed host.

Each form is tried as a prefetch paging link, as a paging link in the FHIR server's answer, and as
`fhirServer` itself, in dev (with and without an allow-list), sandbox and production.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.hooks.discovery import prefetch_keys
from fhir_mappings.codesets import default_codesets
from testing.fhir_server import FhirServer
from tests.support.app import client_for, make_app
from tests.support.hook_requests import augmentation_order, order_select
from tests.support.jwt_keys import jwks, new_key, sign

TOKEN = "canary-secret-access-token-5e1d"
PATIENT = "canary-patient"
SELECT = "/cds-services/vertebral-augmentation-select"
PUBLIC = "https://cds.example.org"
ISS = "https://ehr.example.org"
KEYS = [k.key for k in prefetch_keys(default_codesets())]


@dataclass
class Recorder:
    """What reached a place it must never reach: (path, Authorization header)."""

    hits: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, authorization: str | None) -> None:
        with self.lock:
            self.hits.append((path, authorization))


class _Servers:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.canary = Recorder()
        self.escaped = Recorder()  # gateway paths outside /fhir
        self.fhir = Recorder()  # gateway paths under /fhir (allowed)
        self.inject_next: str | None = None
        self._servers: list[ThreadingHTTPServer] = []

    def _gateway_handler(self) -> type[BaseHTTPRequestHandler]:
        servers = self

        class Gateway(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not (self.path == "/fhir" or self.path.startswith(("/fhir/", "/fhir?"))):
                    servers.escaped.add(self.path, self.headers.get("Authorization"))
                    return self._send(200, {"resourceType": "Bundle", "type": "searchset", "entry": []})
                servers.fhir.add(self.path, self.headers.get("Authorization"))
                with urllib.request.urlopen(servers.upstream + self.path[len("/fhir") :], timeout=10) as up:
                    body = json.loads(up.read())
                if servers.inject_next is not None and body.get("resourceType") == "Bundle":
                    body["link"] = [{"relation": "next", "url": servers.inject_next}]
                self._send(200, body)

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Gateway

    def _canary_handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self.canary

        class Canary(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.add(self.path, self.headers.get("Authorization"))
                data = b'{"resourceType": "Bundle", "type": "searchset", "entry": []}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Canary

    def __enter__(self) -> _Servers:
        for handler in (self._gateway_handler(), self._canary_handler()):
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)
        return self

    def __exit__(self, *_: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    @property
    def gateway_port(self) -> int:
        return int(self._servers[0].server_address[1])

    @property
    def canary_port(self) -> int:
        return int(self._servers[1].server_address[1])


@pytest.fixture(scope="module")
def servers(fhir_server: FhirServer) -> Iterator[_Servers]:
    with _Servers(fhir_server.base_url) as running:
        yield running


def escaping_links(s: _Servers, scheme: str) -> list[str]:
    """Paging links that must never be followed: each points outside the allowed base."""
    g, c = s.gateway_port, s.canary_port
    return [
        f"//127.0.0.1:{c}/fhir/Condition",
        f"HTTP://127.0.0.1:{c}/fhir/Condition",
        f"HTTPS://127.0.0.1:{c}/fhir/Condition",
        f"hTTp://127.0.0.1:{c}/fhir/Condition",
        f" http://127.0.0.1:{c}/fhir/Condition",
        f"\thttp://127.0.0.1:{c}/fhir/Condition",
        f"\n http://127.0.0.1:{c}/fhir/Condition",
        f"http://127.0.0.1:{c}/fhir/Condition",
        f"http://localhost:{c}/fhir/Condition",
        f"http://2130706433:{c}/fhir/Condition",
        f"http://127.0.0.1:{g}@127.0.0.1:{c}/fhir/Condition",
        "../../canary/Condition",
        "../canary/Condition",
        "/canary/Condition",
        f"//127.0.0.1:{g}/canary/Condition",
        f"{scheme}://127.0.0.1:{g}/canary/Condition",
        f"{scheme}://127.0.0.1:{g}/fhir/../canary/Condition",
        f"{scheme}://127.0.0.1:{g}/fhir/%2e%2e/canary/Condition",
        f"{scheme}://127.0.0.1:{g}/fhir%2f..%2fcanary/Condition",
        f"{scheme}://127.0.0.1:{g}/fhirx/Condition",
    ]


def escaping_bases(s: _Servers, scheme: str) -> list[str]:
    """`fhirServer` forms outside the allow-list (the gateway's /fhir only)."""
    g, c = s.gateway_port, s.canary_port
    return [
        f"http://127.0.0.1:{c}/fhir",
        f"HTTP://127.0.0.1:{c}/fhir",
        f"//127.0.0.1:{c}/fhir",
        f" http://127.0.0.1:{c}/fhir",
        f"http://127.0.0.1:{g}@127.0.0.1:{c}/fhir",
        f"{scheme}://127.0.0.1:{g}/canary",
        f"{scheme}://127.0.0.1:{g}/fhir/../canary",
        f"{scheme}://127.0.0.1:{g}/fhir/%2e%2e/canary",
        f"{scheme}://127.0.0.1:{g}/fhir?/../../canary",
        f"{scheme}://127.0.0.1:{g}/fhir#/../canary",
        f"{scheme}://127.0.0.1:{g}/fhirx",
    ]


@dataclass
class Profile:
    name: str
    scheme: str  # of the allowed base
    client: TestClient
    jwt: Any  # () -> headers


def _paged_prefetch(link: str) -> dict[str, Any]:
    page = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [],
        "link": [{"relation": "next", "url": link}],
    }
    return {key: page for key in KEYS if key not in ("patient", "encounter")}


@pytest.fixture(params=["dev-open", "dev", "sandbox", "production"])
def profile(request: pytest.FixtureRequest, servers: _Servers, tmp_path: Path) -> Iterator[Profile]:
    name = request.param
    scheme = "https" if name == "production" else "http"
    allowed = [] if name == "dev-open" else [f"{scheme}://127.0.0.1:{servers.gateway_port}/fhir"]
    settings: dict[str, Any] = {"profile": name.split("-")[0], "allowed_fhir_servers": allowed}
    key = new_key("ES384")
    if name in ("sandbox", "production"):
        key_file = tmp_path / "jwks.json"
        key_file.write_text(json.dumps(jwks(key)), encoding="utf-8")
        settings["trusted_issuers"] = [{"iss": ISS, "jku": [f"{ISS}/jwks.json"], "jwks_file": str(key_file)}]
        settings["public_base_url"] = PUBLIC
    if name == "production":
        settings.update(patient_hash_key="k" * 32, admin_token="a" * 32, trusted_proxies=["10.0.0.5"])

    def headers() -> dict[str, str]:
        if name.startswith("dev"):
            return {}
        return {"Authorization": f"Bearer {sign(key, iss=ISS, aud=PUBLIC + SELECT)}"}

    with client_for(make_app(tmp_path, **settings)) as client:
        yield Profile(name, scheme, client, headers)


def _call(p: Profile, body: dict[str, Any]) -> int:
    response = p.client.post(SELECT, json=body, headers=p.jwt())
    assert response.status_code < 500, response.text
    assert TOKEN not in response.text
    return response.status_code


def _assert_untouched(s: _Servers, form: str) -> None:
    assert s.canary.hits == [], f"{form!r} reached the canary: {s.canary.hits}"
    assert s.escaped.hits == [], f"{form!r} escaped the allowed path: {s.escaped.hits}"


def _reset(s: _Servers) -> None:
    s.canary.hits.clear()
    s.escaped.hits.clear()
    s.inject_next = None


def test_no_next_link_in_prefetch_reaches_the_canary(profile: Profile, servers: _Servers) -> None:
    base = f"{profile.scheme}://127.0.0.1:{servers.gateway_port}/fhir"
    for link in escaping_links(servers, profile.scheme):
        _reset(servers)
        order = augmentation_order("o1", PATIENT)
        body = order_select(
            PATIENT, order, fhir_server=base, access_token=TOKEN, prefetch=_paged_prefetch(link)
        )
        _call(profile, body)
        _assert_untouched(servers, link)


def test_no_next_link_from_the_fhir_server_reaches_the_canary(profile: Profile, servers: _Servers) -> None:
    base = f"{profile.scheme}://127.0.0.1:{servers.gateway_port}/fhir"
    try:
        for link in escaping_links(servers, profile.scheme):
            _reset(servers)
            servers.inject_next = link
            body = order_select(
                PATIENT, augmentation_order("o1", PATIENT), fhir_server=base, access_token=TOKEN
            )
            _call(profile, body)
            _assert_untouched(servers, link)
    finally:
        _reset(servers)


def test_no_fhir_server_form_reaches_the_canary(profile: Profile, servers: _Servers) -> None:
    for base in escaping_bases(servers, profile.scheme):
        if profile.name == "dev-open" and "?" not in base and "#" not in base:
            continue  # an empty allow-list (dev) allows any base URL: that is its meaning
        _reset(servers)
        body = order_select(PATIENT, augmentation_order("o1", PATIENT), fhir_server=base, access_token=TOKEN)
        assert _call(profile, body) in (400, 412)
        _assert_untouched(servers, base)


def test_the_allowed_base_is_fetched_from_with_the_token(servers: _Servers, tmp_path: Path) -> None:
    """The control: the same set-up does reach the gateway's /fhir, with the token, and follows a
    paging link under it."""
    _reset(servers)
    servers.fhir.hits.clear()
    base = f"http://127.0.0.1:{servers.gateway_port}/fhir"
    servers.inject_next = f"{base}/Condition?patient={PATIENT}&page=2"
    try:
        with client_for(make_app(tmp_path, allowed_fhir_servers=[base])) as client:
            body = order_select(
                PATIENT, augmentation_order("o1", PATIENT), fhir_server=base, access_token=TOKEN
            )
            assert client.post(SELECT, json=body).status_code < 500
    finally:
        _reset(servers)
    paths = [path for path, _ in servers.fhir.hits]
    assert any("page=2" in path for path in paths)
    assert {auth for _, auth in servers.fhir.hits} == {f"Bearer {TOKEN}"}
