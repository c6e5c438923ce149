"""The EHR's JWT (CDS Hooks 2.0 §"Trusting CDS Clients"), case by case, against JWKS on 127.0.0.1.

Good ES384 / RS384 (and ES256 / RS256) JWTs are accepted on discovery, hook and feedback calls;
everything else gets a bare 401 with no body: wrong issuer, a `jku` off the allow-list, a wrong or
another endpoint's `aud`, expired, not yet valid, a replayed `jti`, `alg: none`, HS256 signed with
the public key, a tampered payload, missing claims. An unknown `kid` makes the service fetch the
issuer's JWKS again (key rotation), at most once per cool-down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from cds_service.trust.issuers import TrustedIssuer
from tests.support.app import client_for, make_app, sample
from tests.support.jwt_keys import JwksServer, SigningKey, jwks, new_key, sign, tamper, unsigned

ISS = "https://ehr.example.org"
OTHER_ISS = "https://other-ehr.example.org"
BASE = "http://testserver"
SELECT = "/cds-services/vertebral-augmentation-select"
SIGN = "/cds-services/vertebral-augmentation-sign"
FEEDBACK = f"{SELECT}/feedback"
COOLDOWN_S = 0.3


@dataclass(frozen=True)
class Keys:
    es384: SigningKey
    rs384: SigningKey
    es256: SigningKey
    rs256: SigningKey
    other: SigningKey  # the other trusted issuer's key
    attacker: SigningKey  # published on 127.0.0.1, but at a URL nobody allow-listed


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(*(new_key(alg) for alg in ("ES384", "RS384", "ES256", "RS256", "ES384", "ES384")))


@pytest.fixture
def jwks_server(keys: Keys) -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.publish("ehr", jwks(keys.es384, keys.rs384, keys.es256, keys.rs256))
        server.publish("other", jwks(keys.other))
        server.publish("attacker", jwks(keys.attacker))
        yield server


@pytest.fixture
def secured(tmp_path: Path, jwks_server: JwksServer) -> Iterator[TestClient]:
    app = make_app(
        tmp_path,
        jwt_required=True,
        jwks_refresh_cooldown_seconds=COOLDOWN_S,
        trusted_issuers=[
            {"iss": ISS, "jku": [jwks_server.url("ehr")]},
            {"iss": OTHER_ISS, "jku": [jwks_server.url("other")]},
        ],
    )
    with client_for(app) as client:
        yield client


def call(client: TestClient, path: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    if path == "/cds-services":
        return client.get(path, headers=headers)
    if path.endswith("/feedback"):
        body = {
            "feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}]
        }
        return client.post(path, json=body, headers=headers)
    return client.post(
        path, json=sample("order-sign.json" if path == SIGN else "order-select.json"), headers=headers
    )


def assert_bare_401(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.content == b""
    assert response.headers["www-authenticate"] == "Bearer"


TokenMaker = Callable[[Keys, JwksServer], str]


def good(key_name: str, path: str = SELECT, aud: str | None = None, **options: Any) -> TokenMaker:
    def make(keys: Keys, server: JwksServer) -> str:
        return sign(
            getattr(keys, key_name), iss=ISS, aud=aud or BASE + path, jku=server.url("ehr"), **options
        )

    return make


ACCEPTED: dict[str, tuple[TokenMaker, str]] = {
    "good ES384 on a hook call": (good("es384"), SELECT),
    "good RS384 on a hook call": (good("rs384"), SELECT),
    "good ES256": (good("es256"), SELECT),
    "good RS256": (good("rs256"), SELECT),
    "good ES384 on order-sign": (good("es384", SIGN), SIGN),
    "good ES384 on discovery": (good("es384", "/cds-services"), "/cds-services"),
    "good RS384 on feedback": (good("rs384", FEEDBACK), FEEDBACK),
    "aud as an array holding the endpoint": (
        lambda k, s: sign(k.es384, iss=ISS, aud=["https://x.example", BASE + SELECT], jku=s.url("ehr")),
        SELECT,
    ),
    "aud with a trailing slash": (good("es384", SELECT + "/"), SELECT),
    "no jku: the issuer's configured JWKS": (lambda k, s: sign(k.es384, iss=ISS, aud=BASE + SELECT), SELECT),
    "expired, but within the 60 s leeway": (good("es384", issued_offset_seconds=-330), SELECT),
    "no sub, no tenant (2.0 has no sub)": (good("es384", drop=("sub", "tenant")), SELECT),
    "a tenant, when the issuer does not restrict tenants": (good("es384", extra={"tenant": "t1"}), SELECT),
}

REFUSED: dict[str, tuple[TokenMaker, str]] = {
    "wrong issuer (not on the allow-list)": (
        lambda k, s: sign(k.es384, iss="https://evil.example", aud=BASE + SELECT, jku=s.url("ehr")),
        SELECT,
    ),
    "unknown jku (another URL serving a key the attacker holds)": (
        lambda k, s: sign(k.attacker, iss=ISS, aud=BASE + SELECT, jku=s.url("attacker")),
        SELECT,
    ),
    "jku of another trusted issuer, not on this issuer's list": (
        lambda k, s: sign(k.other, iss=ISS, aud=BASE + SELECT, jku=s.url("other")),
        SELECT,
    ),
    "wrong aud (another host)": (
        lambda k, s: sign(k.es384, iss=ISS, aud="https://evil.example" + SELECT, jku=s.url("ehr")),
        SELECT,
    ),
    "aud of another endpoint (order-sign's, on order-select)": (good("es384", SIGN), SELECT),
    "aud of the hook, on its feedback endpoint": (good("es384", SELECT), FEEDBACK),
    "aud of discovery, on a hook call": (good("es384", "/cds-services"), SELECT),
    "expired (past the leeway)": (good("es384", issued_offset_seconds=-400), SELECT),
    "not yet valid (iat in the future)": (good("es384", issued_offset_seconds=600), SELECT),
    # nbf read from the clock when the token is made, not when the module is imported (a long suite
    # reached this case after the 600 s had passed).
    "not yet valid (nbf in the future)": (
        lambda k, s: good("es384", extra={"nbf": int(time.time()) + 600})(k, s),  # noqa: PLW0108 - late clock
        SELECT,
    ),
    "lifetime longer than allowed": (good("es384", lifetime_seconds=7200), SELECT),
    "alg none": (
        lambda k, s: unsigned(
            {"alg": "none", "typ": "JWT", "kid": k.es384.kid},
            {
                "iss": ISS,
                "aud": BASE + SELECT,
                "exp": int(time.time()) + 300,
                "iat": int(time.time()),
                "jti": "n1",
            },
        ),
        SELECT,
    ),
    "HS256 signed with the issuer's public key": (
        lambda k, s: unsigned(
            {"alg": "HS256", "typ": "JWT", "kid": k.rs384.kid, "jku": s.url("ehr")},
            {
                "iss": ISS,
                "aud": BASE + SELECT,
                "exp": int(time.time()) + 300,
                "iat": int(time.time()),
                "jti": "h1",
            },
            secret=k.rs384.public_pem(),
        ),
        SELECT,
    ),
    "RS384 header on an EC key's kid (algorithm confusion)": (
        lambda k, s: sign(k.rs384, iss=ISS, aud=BASE + SELECT, jku=s.url("ehr"), header={"kid": k.es384.kid}),
        SELECT,
    ),
    "signed by a key the issuer does not publish, under its kid": (
        lambda k, s: sign(
            k.attacker, iss=ISS, aud=BASE + SELECT, jku=s.url("ehr"), header={"kid": k.es384.kid}
        ),
        SELECT,
    ),
    "tampered payload (aud rewritten after signing)": (
        lambda k, s: tamper(sign(k.es384, iss=ISS, aud=BASE + SIGN, jku=s.url("ehr")), aud=BASE + SELECT),
        SELECT,
    ),
    "tampered payload (exp extended after signing)": (
        lambda k, s: tamper(
            sign(k.es384, iss=ISS, aud=BASE + SELECT, jku=s.url("ehr"), issued_offset_seconds=-400),
            exp=int(time.time()) + 300,
        ),
        SELECT,
    ),
    "missing iss": (good("es384", drop=("iss",)), SELECT),
    "missing aud": (good("es384", drop=("aud",)), SELECT),
    "missing exp": (good("es384", drop=("exp",)), SELECT),
    "missing iat": (good("es384", drop=("iat",)), SELECT),
    "missing jti": (good("es384", drop=("jti",)), SELECT),
    "missing kid": (good("es384", header={"kid": None}), SELECT),
    "typ other than JWT": (good("es384", header={"typ": "at+jwt"}), SELECT),
    "not a JWT at all": (lambda k, s: "not-a-jwt", SELECT),
}


@pytest.mark.parametrize("case", list(ACCEPTED), ids=list(ACCEPTED))
def test_a_good_jwt_is_accepted(secured: TestClient, keys: Keys, jwks_server: JwksServer, case: str) -> None:
    make, path = ACCEPTED[case]
    response = call(secured, path, make(keys, jwks_server))
    assert response.status_code == 200, response.text


# The reason each refusal is logged with (the caller sees none): each case fails where it is meant to.
REASONS = {
    "wrong issuer (not on the allow-list)": "issuer",
    "unknown jku (another URL serving a key the attacker holds)": "jku",
    "jku of another trusted issuer, not on this issuer's list": "jku",
    "wrong aud (another host)": "audience",
    "aud of another endpoint (order-sign's, on order-select)": "audience",
    "aud of the hook, on its feedback endpoint": "audience",
    "aud of discovery, on a hook call": "audience",
    "expired (past the leeway)": "expired",
    "not yet valid (iat in the future)": "not-yet-valid",
    "not yet valid (nbf in the future)": "not-yet-valid",
    "lifetime longer than allowed": "lifetime",
    "alg none": "algorithm",
    "HS256 signed with the issuer's public key": "algorithm",
    "RS384 header on an EC key's kid (algorithm confusion)": "key-algorithm",
    "signed by a key the issuer does not publish, under its kid": "signature",
    "tampered payload (aud rewritten after signing)": "signature",
    "tampered payload (exp extended after signing)": "signature",
    "missing iss": "issuer",
    "missing aud": "missing-claim",
    "missing exp": "missing-claim",
    "missing iat": "missing-claim",
    "missing jti": "missing-claim",
    "missing kid": "kid",
    "typ other than JWT": "typ",
    "not a JWT at all": "malformed",
}


@pytest.fixture
def refusal_reasons() -> Iterator[list[str]]:
    reasons: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "client JWT refused":
                reasons.append(getattr(record, "error_code", "?"))

    handler = Collect()
    logger = logging.getLogger("vertebral_cds.trust")
    logger.addHandler(handler)
    yield reasons
    logger.removeHandler(handler)


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_a_bad_jwt_gets_a_bare_401(
    secured: TestClient, keys: Keys, jwks_server: JwksServer, refusal_reasons: list[str], case: str
) -> None:
    make, path = REFUSED[case]
    assert_bare_401(call(secured, path, make(keys, jwks_server)))
    assert refusal_reasons == [REASONS[case]]


@pytest.mark.parametrize("path", ["/cds-services", SELECT, FEEDBACK])
def test_no_jwt_gets_401_where_one_is_required(secured: TestClient, path: str) -> None:
    assert_bare_401(call(secured, path, None))


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer  ", "eyJhbGciOi"])
def test_an_authorization_header_that_is_no_bearer_jwt_gets_401(secured: TestClient, header: str) -> None:
    assert_bare_401(secured.post(SELECT, json=sample("order-select.json"), headers={"Authorization": header}))


def test_a_replayed_jti_is_refused(secured: TestClient, keys: Keys, jwks_server: JwksServer) -> None:
    token = good("es384")(keys, jwks_server)
    assert call(secured, SELECT, token).status_code == 200
    assert_bare_401(call(secured, SELECT, token))


def test_the_jti_is_spent_only_by_a_valid_jwt(
    secured: TestClient, keys: Keys, jwks_server: JwksServer
) -> None:
    # a forged JWT reusing a jti must not burn it for the genuine client
    forged = sign(
        keys.attacker,
        iss=ISS,
        aud=BASE + SELECT,
        jku=jwks_server.url("ehr"),
        jti="shared-jti",
        header={"kid": keys.es384.kid},
    )
    assert_bare_401(call(secured, SELECT, forged))
    assert call(secured, SELECT, good("es384", jti="shared-jti")(keys, jwks_server)).status_code == 200


def test_keys_are_fetched_only_from_allow_listed_urls(
    secured: TestClient, keys: Keys, jwks_server: JwksServer
) -> None:
    assert_bare_401(
        call(
            secured,
            SELECT,
            REFUSED["unknown jku (another URL serving a key the attacker holds)"][0](keys, jwks_server),
        )
    )
    assert jwks_server.requests["/attacker.json"] == 0


def test_the_jwks_is_cached_between_calls(secured: TestClient, keys: Keys, jwks_server: JwksServer) -> None:
    for _ in range(5):
        assert call(secured, SELECT, good("es384")(keys, jwks_server)).status_code == 200
    assert jwks_server.requests["/ehr.json"] == 1


def test_an_unknown_kid_refreshes_the_jwks_once_per_cooldown_then_a_rotated_key_works(
    secured: TestClient, keys: Keys, jwks_server: JwksServer
) -> None:
    assert call(secured, SELECT, good("es384")(keys, jwks_server)).status_code == 200
    assert jwks_server.requests["/ehr.json"] == 1
    rotated = new_key("ES384")
    # the issuer rotates: a JWT with the new kid arrives before the cache knows it
    jwks_server.publish("ehr", jwks(rotated, keys.rs384))
    time.sleep(COOLDOWN_S + 0.05)
    fresh = sign(rotated, iss=ISS, aud=BASE + SELECT, jku=jwks_server.url("ehr"))
    assert call(secured, SELECT, fresh).status_code == 200
    assert jwks_server.requests["/ehr.json"] == 2
    # made-up kids within the cool-down: refused, and no fetch storm
    for n in range(5):
        stray = sign(
            new_key("ES384", kid=f"made-up-{n}"), iss=ISS, aud=BASE + SELECT, jku=jwks_server.url("ehr")
        )
        assert_bare_401(call(secured, SELECT, stray))
    assert jwks_server.requests["/ehr.json"] <= 3
    # the retired key is gone after the refresh
    assert_bare_401(call(secured, SELECT, good("es384")(keys, jwks_server)))


def test_an_unreachable_jwks_gives_a_prompt_401(tmp_path: Path, keys: Keys) -> None:
    with JwksServer() as server:
        url = server.url("gone")
    app = make_app(tmp_path, jwt_required=True, trusted_issuers=[{"iss": ISS, "jku": [url]}])
    with client_for(app) as client:
        started = time.monotonic()
        assert_bare_401(call(client, SELECT, sign(keys.es384, iss=ISS, aud=BASE + SELECT, jku=url)))
        assert time.monotonic() - started < 3.5


def test_a_restricted_tenant_must_match(tmp_path: Path, keys: Keys, jwks_server: JwksServer) -> None:
    app = make_app(
        tmp_path,
        jwt_required=True,
        trusted_issuers=[{"iss": ISS, "jku": [jwks_server.url("ehr")], "tenants": ["hospital-a"]}],
    )
    with client_for(app) as client:
        assert (
            call(client, SELECT, good("es384", extra={"tenant": "hospital-a"})(keys, jwks_server)).status_code
            == 200
        )
        assert_bare_401(
            call(client, SELECT, good("es384", extra={"tenant": "hospital-b"})(keys, jwks_server))
        )
        assert_bare_401(call(client, SELECT, good("es384")(keys, jwks_server)))


def test_a_static_jwks_file_needs_no_fetch(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "ehr-jwks.json"
    path.write_text(__import__("json").dumps(jwks(keys.es384)), encoding="utf-8")
    app = make_app(tmp_path, jwt_required=True, trusted_issuers=[{"iss": ISS, "jwks_file": str(path)}])
    with client_for(app) as client:
        assert call(client, SELECT, sign(keys.es384, iss=ISS, aud=BASE + SELECT)).status_code == 200
        assert_bare_401(call(client, SELECT, sign(keys.rs384, iss=ISS, aud=BASE + SELECT)))


def test_aud_is_the_public_base_url_behind_a_proxy(
    tmp_path: Path, keys: Keys, jwks_server: JwksServer
) -> None:
    public = "https://cds.example.org/vcds"
    app = make_app(
        tmp_path,
        jwt_required=True,
        public_base_url=public,
        trusted_issuers=[{"iss": ISS, "jku": [jwks_server.url("ehr")]}],
    )
    with client_for(app) as client:
        as_seen_by_the_ehr = sign(keys.es384, iss=ISS, aud=public + SELECT, jku=jwks_server.url("ehr"))
        assert call(client, SELECT, as_seen_by_the_ehr).status_code == 200
        internal = sign(keys.es384, iss=ISS, aud=BASE + SELECT, jku=jwks_server.url("ehr"))
        assert_bare_401(call(client, SELECT, internal))


@pytest.mark.parametrize("path", ["/cds-services", SELECT, FEEDBACK])
def test_the_preflight_needs_no_jwt(secured: TestClient, path: str) -> None:
    response = secured.options(
        path,
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200


def test_health_needs_no_jwt(secured: TestClient) -> None:
    assert secured.get("/healthz").status_code == 200


def test_the_matrix_has_at_least_15_refusals_and_both_recommended_algorithms() -> None:
    assert len(REFUSED) >= 15
    assert {"good ES384 on a hook call", "good RS384 on a hook call"} <= set(ACCEPTED)


# --------------------------------------------------------------------------- per-issuer settings
# Epic's `aud` is typed by an analyst (fhir.epic.com CDS Hooks tutorial: "This must be manually configured by
# the health system"); the Da Vinci CRD request generator signs JWTs valid for a day (src/util/auth.js,
# `now + 1day`). Both are settings of one issuer, and change nothing for the others.
EPIC_AUD = "https://cds.example.org/vcds"  # what the analyst typed: the base URL, not the endpoint's


@pytest.fixture
def per_issuer(tmp_path: Path, jwks_server: JwksServer) -> Iterator[TestClient]:
    app = make_app(
        tmp_path,
        jwt_required=True,
        trusted_issuers=[
            {"iss": ISS, "jku": [jwks_server.url("ehr")], "audiences": [EPIC_AUD]},
            {"iss": OTHER_ISS, "jku": [jwks_server.url("other")], "max_lifetime_seconds": 86_400},
        ],
    )
    with client_for(app) as client:
        yield client


PER_ISSUER: dict[str, tuple[TokenMaker, str, int, str | None]] = {
    "an extra audience of the issuer, on a hook call": (good("es384", aud=EPIC_AUD), SELECT, 200, None),
    "an extra audience of the issuer, on feedback": (
        good("rs384", FEEDBACK, aud=EPIC_AUD),
        FEEDBACK,
        200,
        None,
    ),
    "the exact endpoint still accepted beside the extra audience": (good("es384"), SELECT, 200, None),
    "an audience the issuer was not given": (
        good("es384", aud="https://cds.example.org/other"),
        SELECT,
        401,
        "audience",
    ),
    "another issuer's extra audience": (
        lambda k, s: sign(k.other, iss=OTHER_ISS, aud=EPIC_AUD, jku=s.url("other")),
        SELECT,
        401,
        "audience",
    ),
    "a 1-day JWT from the issuer allowed a day": (
        lambda k, s: sign(
            k.other, iss=OTHER_ISS, aud=BASE + SELECT, jku=s.url("other"), lifetime_seconds=86_400
        ),
        SELECT,
        200,
        None,
    ),
    "a 2-day JWT from the issuer allowed a day": (
        lambda k, s: sign(
            k.other, iss=OTHER_ISS, aud=BASE + SELECT, jku=s.url("other"), lifetime_seconds=2 * 86_400
        ),
        SELECT,
        401,
        "lifetime",
    ),
    "a 1-day JWT from an issuer on the global limit": (
        good("es384", lifetime_seconds=86_400),
        SELECT,
        401,
        "lifetime",
    ),
}


@pytest.mark.parametrize("case", list(PER_ISSUER), ids=list(PER_ISSUER))
def test_per_issuer_audiences_and_lifetime(
    per_issuer: TestClient, keys: Keys, jwks_server: JwksServer, refusal_reasons: list[str], case: str
) -> None:
    make, path, status, reason = PER_ISSUER[case]
    response = call(per_issuer, path, make(keys, jwks_server))
    if status == 401:
        assert_bare_401(response)
        assert refusal_reasons == [reason]
    else:
        assert response.status_code == status, response.text


@pytest.mark.parametrize(
    "issuer",
    [
        {"iss": ISS, "jku": ["https://ehr.example.org/jwks"], "audiences": ["*"]},
        {"iss": ISS, "jku": ["https://ehr.example.org/jwks"], "audiences": ["cds.example.org"]},
        {"iss": ISS, "jku": ["https://ehr.example.org/jwks"], "max_lifetime_seconds": 0},
        {"iss": ISS, "jku": ["https://ehr.example.org/jwks"], "max_lifetime_seconds": 30 * 86_400},
    ],
    ids=["wildcard audience", "audience not a URL", "zero lifetime", "a month's lifetime"],
)
def test_unsafe_issuer_settings_are_refused(issuer: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TrustedIssuer.model_validate(issuer)
