"""Profiles and the pieces of JWT trust: sandbox key, production refusals, replay caches, key sets."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from cds_service.cli.command import main
from cds_service.settings import Settings, SettingsError, load_settings
from cds_service.trust.issuers import TrustedIssuer
from cds_service.trust.jwks import KeySetError, RemoteKeySets, load_jwks_file, public_keys, verification_key
from cds_service.trust.jwt_verifier import JwtVerifier, Untrusted
from cds_service.trust.profiles import (
    SANDBOX_ISSUER,
    SANDBOX_JWKS_FILE,
    ProfileError,
    jwt_required,
    trusted_issuers,
)
from cds_service.trust.replay import MemoryReplayCache, RedisReplayCache, ReplayStoreUnavailable
from testing.fhir_server import free_port
from tests.support.app import client_for, make_app, sample
from tests.support.jwt_keys import JwksServer, jwks, new_key, sign

SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
# A JWT the public CDS Hooks sandbox issued on 2020-07-08 (found in a public repository): a known
# answer for the shipped key. aud http://127.0.0.1:8000/cds-services; long expired.
RECORDED_SANDBOX_JWT = (
    "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCIsImtpZCI6IjQ0ODIzZjNkLTBiMDEtNGE2Yy1hODBlLWI5ZDNlOGE3MjI2ZiIsImprdSI6Imh0"
    "dHBzOi8vc2FuZGJveC5jZHMtaG9va3Mub3JnLy53ZWxsLWtub3duL2p3a3MuanNvbiJ9.eyJpc3MiOiJodHRwczovL3NhbmRib3guY2RzLWhv"
    "b2tzLm9yZyIsImF1ZCI6Imh0dHA6Ly8xMjcuMC4wLjE6ODAwMC9jZHMtc2VydmljZXMiLCJleHAiOjE1OTQyMzA5MDAsImlhdCI6MTU5NDIz"
    "MDYwMCwianRpIjoiZWZiMzc3M2QtM2EyOC00M2UyLTlmYmMtYjkzNmE5YWUzODhiIn0.Cbey3n5NkDRoCLHZ2WMFc1z_RY8Rlq5oGxdAYfbrBP"
    "MiJXLCwjbYoU0av2CQj-Olhbnpe7Vs8vzJ5oHP5gc2-0ooc5J49t4Uz9iYKpiM9KLUrqaJe0umc_klM2-ynHAI"
)
PRODUCTION: dict[str, Any] = {
    "profile": "production",
    "public_base_url": "https://cds.example.org",
    "patient_hash_key": "k" * 32,
    "allowed_fhir_servers": ["https://fhir.example.org/r4"],
    "trusted_issuers": [{"iss": "https://ehr.example.org", "jku": ["https://ehr.example.org/jwks.json"]}],
    "admin_token": "a" * 32,
    "trusted_proxies": ["10.0.0.5"],
}


@pytest.fixture
def trust_log() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect()
    logger = logging.getLogger("vertebral_cds.trust")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


# --- the sandbox -----------------------------------------------------------------------------------


def test_the_shipped_sandbox_jwks_is_the_p384_key_the_sandbox_signs_with() -> None:
    keys = load_jwks_file(SANDBOX_JWKS_FILE)
    assert set(keys) == {SANDBOX_KID}
    assert keys[SANDBOX_KID]["crv"] == "P-384"
    assert "d" not in keys[SANDBOX_KID]


def test_the_shipped_key_verifies_a_jwt_the_public_sandbox_issued() -> None:
    key = verification_key(load_jwks_file(SANDBOX_JWKS_FILE)[SANDBOX_KID], "ES384")
    assert key is not None
    claims = jwt.decode(
        RECORDED_SANDBOX_JWT,
        key,
        algorithms=["ES384"],
        audience="http://127.0.0.1:8000/cds-services",
        options={"verify_exp": False},
    )
    assert claims["iss"] == SANDBOX_ISSUER


def test_the_sandbox_profile_requires_a_jwt_and_checks_the_sandbox_signature(
    tmp_path: Path, trust_log: list[logging.LogRecord]
) -> None:
    app = make_app(tmp_path, profile="sandbox", public_base_url="http://127.0.0.1:8000")
    with client_for(app) as client:
        assert client.get("/cds-services").status_code == 401
        # the recorded JWT's signature verifies; it is refused only because it expired in 2020
        response = client.get("/cds-services", headers={"Authorization": f"Bearer {RECORDED_SANDBOX_JWT}"})
        assert response.status_code == 401
        # a JWT that claims to be the sandbox but is signed with another key
        impostor = sign(
            new_key("ES384", kid=SANDBOX_KID), iss=SANDBOX_ISSUER, aud="http://127.0.0.1:8000/cds-services"
        )
        assert client.get("/cds-services", headers={"Authorization": f"Bearer {impostor}"}).status_code == 401
    reasons = [getattr(r, "error_code", None) for r in trust_log if r.getMessage() == "client JWT refused"]
    assert reasons == ["expired", "signature"]
    warnings = " ".join(r.getMessage() for r in trust_log if r.levelno == logging.WARNING)
    assert "private key is public" in warnings


def test_the_sandbox_profile_will_not_start_without_the_sandbox_key(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="missing"):
        trusted_issuers(Settings(profile="sandbox"), jwks_file=tmp_path / "absent.json")


def test_dev_trusts_the_sandbox_when_its_key_ships_and_production_never_does() -> None:
    assert SANDBOX_ISSUER in [i.iss for i in trusted_issuers(Settings(profile="dev"))]
    assert SANDBOX_ISSUER not in [i.iss for i in trusted_issuers(Settings(**PRODUCTION))]


# --- dev: JWT optional, loudly ---------------------------------------------------------------------


def test_dev_accepts_calls_without_a_jwt_but_refuses_a_bad_one(
    tmp_path: Path, trust_log: list[logging.LogRecord]
) -> None:
    with client_for(make_app(tmp_path)) as client:
        assert (
            client.post(
                "/cds-services/vertebral-augmentation-select", json=sample("order-select.json")
            ).status_code
            == 200
        )
        refused = client.post(
            "/cds-services/vertebral-augmentation-select",
            json=sample("order-select.json"),
            headers={"Authorization": "Bearer not.a.jwt"},
        )
        assert refused.status_code == 401
    assert any("JWT NOT REQUIRED" in r.getMessage() for r in trust_log if r.levelno == logging.WARNING)


def test_jwt_required_follows_the_profile_unless_set() -> None:
    assert jwt_required(Settings(profile="dev")) is False
    assert jwt_required(Settings(profile="sandbox")) is True
    assert jwt_required(Settings(**PRODUCTION)) is True
    assert jwt_required(Settings(profile="dev", jwt_required=True)) is True


# --- production refuses to start unsafe ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trusted_issuers": []}, "VCDS_TRUSTED_ISSUERS"),
        ({"admin_token": None}, "VCDS_ADMIN_TOKEN"),
        ({"trusted_proxies": []}, "VCDS_TLS_CERTFILE and VCDS_TLS_KEYFILE, or VCDS_TRUSTED_PROXIES"),
        ({"public_base_url": None}, "VCDS_PUBLIC_BASE_URL"),
        ({"jwt_required": False}, "requires JWTs"),
        (
            {"trusted_issuers": [{"iss": SANDBOX_ISSUER, "jwks_file": str(SANDBOX_JWKS_FILE)}]},
            "must not trust the public sandbox",
        ),
        ({"public_base_url": "http://cds.example.org"}, "requires https URLs"),
        ({"allowed_fhir_servers": ["http://fhir.example.org/r4"]}, "requires https URLs"),
        (
            {"trusted_issuers": [{"iss": "https://ehr.example.org", "jku": ["http://ehr.example.org/jwks"]}]},
            "requires https URLs",
        ),
        ({"tls_certfile": "/etc/cert.pem"}, "go together"),
    ],
)
def test_production_refuses_unsafe_settings(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        load_settings(**{**PRODUCTION, **change})


def test_production_starts_with_tls_instead_of_a_proxy(tmp_path: Path) -> None:
    settings = {**PRODUCTION, "trusted_proxies": [], "tls_certfile": "c.pem", "tls_keyfile": "k.pem"}
    assert load_settings(**settings).tls_certfile == "c.pem"


def test_production_requires_a_jwt_on_every_call(tmp_path: Path) -> None:
    with client_for(make_app(tmp_path, **PRODUCTION)) as client:
        assert client.get("/cds-services").status_code == 401
        assert client.get("/healthz").status_code == 200


def test_a_trusted_issuer_needs_a_key_source_and_clean_urls() -> None:
    with pytest.raises(ValueError, match="needs `jku` URLs or a `jwks_file`"):
        TrustedIssuer(iss="https://ehr.example.org")
    with pytest.raises(ValueError, match="credentials"):
        TrustedIssuer(iss="https://ehr.example.org", jku=["https://user:pw@ehr.example.org/jwks"])


def test_an_unreadable_jwks_file_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "jwks.json"
    bad.write_text('{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]}', encoding="utf-8")
    with pytest.raises(SettingsError, match="no EC or RSA signature key"):
        make_app(tmp_path, trusted_issuers=[{"iss": "https://ehr.example.org", "jwks_file": str(bad)}])


# --- key sets --------------------------------------------------------------------------------------


def test_a_key_set_keeps_public_signature_keys_only() -> None:
    ec_key = new_key("ES384", kid="ec").public_jwk()
    document = {
        "keys": [
            {**ec_key, "d": "private-part"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {**new_key("ES256", kid="enc").public_jwk(), "use": "enc"},
            {**new_key("ES256", kid="sign-only").public_jwk(), "key_ops": ["sign"]},
            "not a key",
        ]
    }
    keys = public_keys(document)
    assert set(keys) == {"ec"}
    assert "d" not in keys["ec"]
    with pytest.raises(KeySetError):
        public_keys({"no": "keys"})


def test_a_key_fits_only_its_algorithm() -> None:
    p384 = new_key("ES384").public_jwk()
    assert verification_key(p384, "ES384") is not None
    assert verification_key(p384, "ES256") is None  # wrong curve
    assert verification_key(p384, "RS384") is None  # wrong key type
    assert verification_key({**p384, "alg": None}, "HS256") is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_remote_key_sets_refresh_on_unknown_kid_after_the_cooldown_and_survive_a_failed_refresh() -> None:
    clock = FakeClock()
    served: dict[str, Any] = {"a": {"kid": "a"}}
    failing = False

    def fetch(url: str, timeout: float) -> dict[str, Any]:
        if failing:
            raise KeySetError("down")
        return dict(served)

    sets = RemoteKeySets(cache_seconds=600, cooldown_seconds=30, timeout_seconds=1, fetch=fetch, clock=clock)
    assert sets.key("u", "a") == {"kid": "a"}
    served["b"] = {"kid": "b"}
    assert sets.key("u", "b") is None  # within the cool-down: no fetch
    assert sets.fetches == 1
    clock.now += 31
    assert sets.key("u", "b") == {"kid": "b"}
    assert sets.fetches == 2
    failing = True
    clock.now += 700  # stale; the refresh fails; the known keys stay usable
    assert sets.key("u", "a") == {"kid": "a"}
    assert sets.fetches == 3


# --- replay caches --------------------------------------------------------------------------------------


def test_the_memory_replay_cache_forgets_after_the_ttl_and_fails_closed_when_full() -> None:
    clock = FakeClock()
    cache = MemoryReplayCache(max_entries=2, clock=clock)
    assert cache.first_use("iss", "j1", 60)
    assert not cache.first_use("iss", "j1", 60)
    assert cache.first_use("other-iss", "j1", 60)
    with pytest.raises(ReplayStoreUnavailable):
        cache.first_use("iss", "j2", 60)
    clock.now += 61
    assert cache.first_use("iss", "j1", 60)
    assert len(cache) == 1


def test_with_redis_a_jwt_is_accepted_once_across_workers(tmp_path: Path, redis_url: str) -> None:
    key = new_key("ES384")
    with JwksServer() as server:
        issuers = [{"iss": "https://ehr.example.org", "jku": [server.publish("ehr", jwks(key))]}]
        worker_a = make_app(tmp_path / "a", jwt_required=True, trusted_issuers=issuers, redis_url=redis_url)
        worker_b = make_app(tmp_path / "b", jwt_required=True, trusted_issuers=issuers, redis_url=redis_url)
        token = sign(key, iss="https://ehr.example.org", aud="http://testserver/cds-services")
        with client_for(worker_a) as a, client_for(worker_b) as b:
            assert a.get("/cds-services", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            assert b.get("/cds-services", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_an_unreachable_redis_refuses_rather_than_risks_a_replay() -> None:
    cache = RedisReplayCache.from_url(f"redis://127.0.0.1:{free_port()}/0")
    verifier_key = new_key("ES384")
    with JwksServer() as server:
        url = server.publish("ehr", jwks(verifier_key))
        verifier = JwtVerifier(
            [TrustedIssuer(iss="https://ehr.example.org", jku=[url])],
            RemoteKeySets(cache_seconds=60, cooldown_seconds=1, timeout_seconds=1),
            cache,
            leeway_seconds=60,
            max_lifetime_seconds=3600,
        )
        token = sign(verifier_key, iss="https://ehr.example.org", aud="https://cds.example.org/cds-services")
        with pytest.raises(Untrusted, match="replay-store"):
            verifier.verify(token, ["https://cds.example.org/cds-services"])


def test_the_settings_document_every_security_setting() -> None:
    fields = Settings.model_fields
    for name in ("trusted_issuers", "jwt_required", "jwt_leeway_seconds", "redis_url", "trusted_proxies"):
        assert fields[name].description
    assert json.loads(SANDBOX_JWKS_FILE.read_text(encoding="utf-8"))["keys"][0]["alg"] == "ES384"


def test_serve_refuses_several_production_workers_without_a_shared_replay_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if not k.startswith("VCDS_")})
    environment = {f"VCDS_{name.upper()}": value for name, value in PRODUCTION.items()}
    environment["VCDS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    for name, value in environment.items():
        monkeypatch.setenv(name, value if isinstance(value, str) else json.dumps(value))
    assert main(["serve", "--workers", "2", "--port", "9999"]) == 2
    assert "VCDS_REDIS_URL" in capsys.readouterr().err
