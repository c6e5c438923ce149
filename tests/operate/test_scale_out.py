"""Scale-out: two servers, each with two uvicorn workers, behind one PostgreSQL database and one Redis.

Hook calls, feedback, a thresholds change and a replayed JWT are handled the same whichever process
takes them. The servers share a public base URL, as replicas behind a load balancer do, so a JWT's
`aud` is the same for both. PostgreSQL and Redis: the servers VCDS_TEST_POSTGRES_DSN /
VCDS_TEST_REDIS_URL name, or private ones the session starts (tests/support/postgres.py, redis_server.py).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from testing.service_process import ServiceProcess
from tests.support.app import sample
from tests.support.jwt_keys import SigningKey, jwks, new_key, sign

pytestmark = pytest.mark.integration

PUBLIC = "https://cds.example.test"
ISSUER = "https://ehr.example.test"
ADMIN = "scale-out-admin-token-0123456789"
SELECT = "/cds-services/vertebral-augmentation-select"


@pytest.fixture
def key() -> SigningKey:
    return new_key("ES384")


@pytest.fixture
def servers(pg_url: str, redis_url: str, key: SigningKey, tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    jwks_file = tmp_path / "ehr-jwks.json"
    jwks_file.write_text(json.dumps(jwks(key)), encoding="utf-8")
    env = {
        "VCDS_DATABASE_URL": pg_url,
        "VCDS_REDIS_URL": redis_url,
        "VCDS_PUBLIC_BASE_URL": PUBLIC,
        "VCDS_JWT_REQUIRED": "true",
        "VCDS_TRUSTED_ISSUERS": json.dumps([{"iss": ISSUER, "jwks_file": str(jwks_file)}]),
        "VCDS_ADMIN_TOKEN": ADMIN,
        "VCDS_PATIENT_HASH_KEY": "scale-out-hash-key",
        "VCDS_THRESHOLDS_REFRESH_SECONDS": "1",
        "VCDS_LOG_LEVEL": "WARNING",
    }
    first = ServiceProcess(env, workers=2, log_path=tmp_path / "a.log").start()
    try:
        second = ServiceProcess(env, workers=2, log_path=tmp_path / "b.log").start()
        try:
            yield [first, second]
        finally:
            second.stop()
    finally:
        first.stop()


def token(key: SigningKey, path: str, jti: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign(key, iss=ISSUER, aud=PUBLIC + path, jti=jti)}"}


def call(server: ServiceProcess, key: SigningKey, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(
        server.base_url + SELECT,
        json=body or sample("order-select.json"),
        headers=token(key, SELECT),
        timeout=15,
    )


def test_hook_calls_answer_the_same_from_every_server(servers: list[ServiceProcess], key: SigningKey) -> None:
    answers = [call(server, key) for server in servers for _ in range(4)]  # spread over both workers each
    assert {a.status_code for a in answers} == {200}
    rule_sets = {tuple(c["source"]["topic"]["code"] for c in a.json()["cards"]) for a in answers}
    assert len(rule_sets) == 1
    assert "copd-multilevel" in next(iter(rule_sets))


def test_feedback_through_one_server_links_to_a_card_another_server_issued(
    servers: list[ServiceProcess], key: SigningKey, pg_url: str
) -> None:
    card = next(
        c for c in call(servers[0], key).json()["cards"] if c["source"]["topic"]["code"] == "copd-multilevel"
    )
    feedback_path = f"{SELECT}/feedback"
    body = {
        "feedback": [
            {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}
        ]
    }
    first = httpx.post(
        servers[1].base_url + feedback_path, json=body, headers=token(key, feedback_path), timeout=10
    )
    again = httpx.post(
        servers[0].base_url + feedback_path, json=body, headers=token(key, feedback_path), timeout=10
    )
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["duplicates"] == 1  # the same item through the other server is not stored twice
    # The card's row is written by server 0's writer thread just after its answer; feedback that reaches
    # server 1 first is stored at once and linked to its evaluation when that row lands.
    engine = create_engine(pg_url)
    deadline = time.monotonic() + 5
    while True:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT f.rule, e.hook_instance FROM feedback f "
                    "JOIN evaluations e ON e.id = f.evaluation_id"
                )
            ).all()
        if rows or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    engine.dispose()
    assert rows == [("copd-multilevel", sample("order-select.json")["hookInstance"])]


def test_a_thresholds_change_through_one_server_decides_the_calls_of_the_other(
    servers: list[ServiceProcess], key: SigningKey
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    current = httpx.get(servers[0].base_url + "/admin/api/thresholds", headers=admin, timeout=10)
    values = current.json()["values"]
    values["max_levels_severe_lung"] = 3
    saved = httpx.put(
        servers[0].base_url + "/admin/api/thresholds",
        json={"values": values, "reason": "scale-out test"},
        headers={**admin, "If-Match": current.headers["ETag"]},
        timeout=10,
    )
    assert saved.status_code == 200, saved.text
    deadline = time.monotonic() + 10
    seen: set[int] = set()
    while time.monotonic() < deadline:
        cards = [call(servers[1], key).json()["cards"] for _ in range(4)]  # both of its workers
        versions = {c["extension"]["vertebral-cds"]["thresholdsVersion"] for cs in cards for c in cs}
        seen |= versions
        if versions == {2}:
            assert all("copd-multilevel" not in {c["source"]["topic"]["code"] for c in cs} for cs in cards)
            return
        time.sleep(0.3)
    pytest.fail(f"the other server still answered with versions {seen} after 10 s")


def test_a_jwt_used_on_one_server_is_refused_as_a_replay_on_the_other(
    servers: list[ServiceProcess], key: SigningKey
) -> None:
    jti = uuid.uuid4().hex
    headers = token(key, SELECT, jti=jti)
    body = sample("order-select.json")
    first = httpx.post(servers[0].base_url + SELECT, json=body, headers=headers, timeout=15)
    assert first.status_code == 200
    for server in (servers[1], servers[0], servers[1]):  # whichever process takes it
        replay = httpx.post(server.base_url + SELECT, json=body, headers=headers, timeout=15)
        assert replay.status_code == 401
        assert replay.content == b""
