"""No access token, JWT or patient id in any log line or stored row, after a full hook flow.

A planted patient id lives on the real FHIR server (which requires a planted bearer token); the EHR's
JWT is real and verified. The flow: a hook call whose data is fetched with the token, a refused JWT,
a 412, a 400, and feedback whose free-text comment repeats the patient id. Every log record the
service emits (at DEBUG) and every row and byte of the database are then searched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from cds_service.web.logging_setup import JsonFormatter
from testing.fhir_server import FhirServer
from tests.conftest import INTEGRATION_TOKEN
from tests.support.app import client_for, make_app
from tests.support.hook_requests import active_condition, augmentation_order, order_select
from tests.support.jwt_keys import JwksServer, jwks, new_key, sign, tamper

PATIENT = "planted-pt-7c41e9"
ISS = "https://ehr.example.org"
SELECT = "/cds-services/vertebral-augmentation-select"
HASH_KEY = "privacy-test-hash-key"


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))

    def attach(self) -> None:
        logging.getLogger("vertebral_cds").addHandler(self)
        root = logging.getLogger()
        root.setLevel(logging.WARNING)  # the service configures only its own loggers; others stay at WARNING
        root.addHandler(self)


@pytest.fixture
def captured() -> Iterator[Capture]:
    """Every record the service's loggers emit at DEBUG, and whatever else reaches the root logger.

    Attached by `capture.attach()` once the app exists: `create_app` replaces the service's handlers.
    """
    capture = Capture()
    root = logging.getLogger()
    root_level = root.level
    yield capture
    logging.getLogger("vertebral_cds").removeHandler(capture)
    root.removeHandler(capture)
    root.setLevel(root_level)


def _everything_stored(database_url: str, engine: Any) -> str:
    dumped: list[str] = []
    with engine.connect() as connection:
        for table in inspect(engine).get_table_names():
            for row in connection.execute(
                text(f'SELECT * FROM "{table}"')
            ):  # table names come from the schema
                dumped.append(f"{table}: {tuple(row)!r}")
    raw = b""
    database_file = Path(database_url.split("///", 1)[1])
    for path in database_file.parent.glob(database_file.name + "*"):
        raw += path.read_bytes()
    return "\n".join(dumped) + "\n" + raw.decode("latin-1")


def test_a_full_hook_flow_leaves_no_token_jwt_or_patient_id_in_logs_or_storage(
    tmp_path: Path, fhir_server_with_token: FhirServer, captured: Capture
) -> None:
    fhir_server_with_token.put({"resourceType": "Patient", "id": PATIENT, "birthDate": "1950-05-05"})
    fhir_server_with_token.put(active_condition("planted-copd", PATIENT, "J44.9"))
    key = new_key("ES384")
    with JwksServer() as jwks_server:
        app = make_app(
            tmp_path,
            log_level="DEBUG",
            patient_hash_key=HASH_KEY,
            jwt_required=True,
            trusted_issuers=[{"iss": ISS, "jku": [jwks_server.publish("ehr", jwks(key))]}],
            allowed_fhir_servers=[fhir_server_with_token.base_url],
        )
        captured.attach()
        jwts: list[str] = []

        def bearer(path: str) -> dict[str, str]:
            jwts.append(sign(key, iss=ISS, aud=f"http://testserver{path}", jku=jwks_server.url("ehr")))
            return {"Authorization": f"Bearer {jwts[-1]}"}

        order = augmentation_order("planted-order", PATIENT)
        body = order_select(
            PATIENT, order, fhir_server=fhir_server_with_token.base_url, access_token=INTEGRATION_TOKEN
        )
        with client_for(app) as client:
            # 1. the full flow: every key fetched from the FHIR server with the planted token
            response = client.post(SELECT, json=body, headers=bearer(SELECT))
            assert response.status_code == 200, response.text
            cards = response.json()["cards"]
            assert "copd-multilevel" in [c["source"]["topic"]["code"] for c in cards]  # the token worked
            # 2. a refused JWT
            forged = tamper(bearer(SELECT)["Authorization"].removeprefix("Bearer "), aud="x")
            jwts.append(forged)
            refused = client.post(SELECT, json=body, headers={"Authorization": f"Bearer {forged}"})
            assert refused.status_code == 401
            # 3. a 412: the FHIR server refuses a wrong token (the planted one travels in the body again)
            wrong = order_select(
                PATIENT, order, fhir_server=fhir_server_with_token.base_url, access_token="wrong-tok"
            )
            assert client.post(SELECT, json=wrong, headers=bearer(SELECT)).status_code == 412
            # 4. a 400 with the patient id in the offending field
            bad = json.loads(json.dumps(body))
            bad["context"]["userId"] = f"Patient {PATIENT}"
            assert client.post(SELECT, json=bad, headers=bearer(SELECT)).status_code == 400
            # 5. feedback whose comment names the patient
            feedback = {
                "feedback": [
                    {
                        "card": cards[0]["uuid"],
                        "outcome": "overridden",
                        "overrideReason": {"userComment": f"spoke to {PATIENT}; token {INTEGRATION_TOKEN}"},
                        "outcomeTimestamp": "2026-11-21T10:00:00Z",
                    }
                ]
            }
            assert (
                client.post(
                    f"{SELECT}/feedback", json=feedback, headers=bearer(f"{SELECT}/feedback")
                ).status_code
                == 200
            )
        stored = _everything_stored(app.state.settings.database_url, app.state.database.engine)

    secrets = {
        "patient id": PATIENT,
        "access token": INTEGRATION_TOKEN,
        **{f"JWT {n}": token for n, token in enumerate(jwts)},
        **{f"JWT {n} signature": token.rsplit(".", 1)[1] for n, token in enumerate(jwts)},
    }
    emitted = "\n".join(captured.lines)
    raw_records = "\n".join(repr(vars(record)) for record in captured.records)
    assert emitted, "the flow logged nothing: the capture is broken"
    for name, secret in secrets.items():
        assert secret not in emitted, f"{name} in a log line"
        assert secret not in raw_records, f"{name} in a log record's attributes"
        assert secret not in stored, f"{name} in the database"

    # what is stored instead: the keyed hash of the patient id
    expected_hash = hmac.new(HASH_KEY.encode(), PATIENT.encode(), hashlib.sha256).hexdigest()
    assert expected_hash in stored
    # and the log lines of the hook call are correlated by its hookInstance
    correlated = [json.loads(line) for line in captured.lines if body["hookInstance"] in line]
    assert {entry["message"] for entry in correlated} >= {"hook evaluated", "request"}
