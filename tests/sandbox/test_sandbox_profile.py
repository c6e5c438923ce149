"""The `sandbox` profile as the public CDS Hooks sandbox meets it (checklist §9).

Tokens are made the way the sandbox's `jwt-generator.js` makes them: ES384, header kid
44823f3d-0b01-4a6c-a80e-b9d3e8a7226f and jku https://sandbox.cds-hooks.org/.well-known/jwks.json,
claims iss / aud (the exact URL called) / exp (+300 s) / iat / jti (a uuid). The sandbox's private key
is not in the repository, so each test makes an EC P-384 key under the sandbox's kid and trusts the
sandbox issuer through a JWKS file holding it (`VCDS_TRUSTED_ISSUERS`, which replaces the shipped key
for that issuer). Bodies follow the sandbox's screens: PAMA Imaging (`pama.jsx`: a ServiceRequest
`example-request-id`, intent plan, a draftOrders Bundle without `type`, an imaging CPT code; an empty
study coding on the first call) and Rx View / Rx Sign (`rx-view.jsx`: a MedicationRequest
`request-123`, or a DSTU2 MedicationOrder). Nothing here touches the network: every prefetch key the
sandbox would resolve is sent, and the FHIR server list admits only an unused local address.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds_service.hooks.discovery import prefetch_keys
from cds_service.playground import demo
from cds_service.trust.profiles import SANDBOX_ISSUER, SANDBOX_JKU, SANDBOX_JWKS_FILE, trusted_issuers
from fhir_mappings.codesets import default_codesets
from tests.support.app import FIXED_NOW, client_for, make_app
from tests.support.jwt_keys import SigningKey, jwks, new_key, sign

SANDBOX_KID = "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f"
SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"
BASE = "http://testserver"
SELECT = "/cds-services/vertebral-augmentation-select"
SIGN = "/cds-services/vertebral-augmentation-sign"
R4_SERVER = "https://launch.smarthealthit.org/v/r4/fhir"
DSTU2_SERVER = "https://launch.smarthealthit.org/v/r2/fhir"
UNUSED_FHIR_SERVER = "http://127.0.0.1:9/fhir"  # any fetch attempt is refused, never sent
CPT = "http://www.ama-assn.org/go/cpt"


@pytest.fixture
def sandbox_key() -> SigningKey:
    """Stands in for the sandbox's key: same algorithm, curve and kid, a private half we hold."""
    return new_key("ES384", kid=SANDBOX_KID)


def sandbox_app(tmp_path: Path, key: SigningKey | None, **settings: Any) -> TestClient:
    values: dict[str, Any] = {
        "profile": "sandbox",
        "allowed_fhir_servers": [UNUSED_FHIR_SERVER],
    }
    if key is not None:
        key_file = tmp_path / "sandbox-test-jwks.json"
        key_file.write_text(json.dumps(jwks(key)), encoding="utf-8")
        values["trusted_issuers"] = [
            {"iss": SANDBOX_ISSUER, "jku": [SANDBOX_JKU], "jwks_file": str(key_file)}
        ]
    values.update(settings)
    return client_for(make_app(tmp_path, **values))


@pytest.fixture
def sandbox(tmp_path: Path, sandbox_key: SigningKey) -> Iterator[TestClient]:
    with sandbox_app(tmp_path, sandbox_key) as client:
        yield client


@pytest.fixture
def sandbox_demo(tmp_path: Path, sandbox_key: SigningKey) -> Iterator[TestClient]:
    """The sandbox profile with the opt-in demo mapping (VCDS_DEMO_IMAGING_STAND_IN=true)."""
    with sandbox_app(tmp_path, sandbox_key, demo_imaging_stand_in=True) as client:
        yield client


def sandbox_jwt(key: SigningKey, path: str) -> str:
    """Header {alg ES384, typ JWT, kid, jku}; claims {iss, aud exact URL, exp +300 s, iat, jti uuid}."""
    return sign(key, iss=SANDBOX_ISSUER, aud=f"{BASE}{path}", jku=SANDBOX_JKU, jti=str(uuid.uuid4()))


def post(client: TestClient, path: str, body: dict[str, Any], token: str | None) -> Any:
    headers = {"Content-Type": "application/json", "Origin": SANDBOX_ORIGIN}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post(path, content=json.dumps(body), headers=headers)


# --------------------------------------------------------------------------- the bodies the sandbox sends


def sandbox_prefetch() -> dict[str, Any]:
    """Every key the sandbox resolves (all but `encounter`: it sends no encounterId) from an R4 record."""
    codesets = default_codesets()
    patient = demo.demo_patient("eligible-l1")
    return demo.prefetch(demo.read_bundle(patient.bundle(FIXED_NOW.date())), prefetch_keys(codesets))


def pama_body(study_coding: dict[str, Any]) -> dict[str, Any]:
    """PAMA Imaging order-select (`pama.jsx` generateContext), with the sandbox's prefetch."""
    prefetch = sandbox_prefetch()
    patient_id = prefetch["patient"]["id"]
    code: dict[str, Any] = {"coding": [study_coding]}
    if "display" in study_coding:
        code["text"] = study_coding["display"]
    return {
        "hookInstance": str(uuid.uuid4()),
        "hook": "order-select",
        "fhirServer": R4_SERVER,
        "context": {
            "userId": "Practitioner/COREPRACTITIONER1",
            "patientId": patient_id,
            "selections": ["ServiceRequest/example-request-id"],
            "draftOrders": {
                "resourceType": "Bundle",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "ServiceRequest",
                            "id": "example-request-id",
                            "status": "draft",
                            "intent": "plan",
                            "code": code,
                            "subject": {"reference": f"Patient/{patient_id}"},
                            "reasonCode": [],
                        }
                    }
                ],
            },
        },
        "prefetch": prefetch,
    }


MRI_LUMBAR = {"system": CPT, "code": "72148", "display": "MRI lumbar spine without contrast"}
CT_CARDIAC = {"system": CPT, "code": "75571", "display": "CT heart without contrast for calcium scoring"}


def rx_body(hook: str, *, dstu2: bool = False) -> dict[str, Any]:
    """Rx View (order-select) or Rx Sign (order-sign): one medication order (`rx-view.jsx`)."""
    if dstu2:  # the sandbox's default server is DSTU2: a MedicationOrder
        order: dict[str, Any] = {
            "resourceType": "MedicationOrder",
            "id": "order-123",
            "status": "draft",
            "patient": {"reference": "Patient/smart-1288992"},
            "dateWritten": date.today().isoformat(),
        }
    else:
        order = {
            "resourceType": "MedicationRequest",
            "id": "request-123",
            "status": "draft",
            "intent": "proposal",
            "subject": {"reference": "Patient/smart-1288992"},
            "authoredOn": date.today().isoformat(),
            "medicationCodeableConcept": {
                "text": "Acetaminophen 325 MG Oral Tablet",
                "coding": [
                    {
                        "display": "Acetaminophen 325 MG Oral Tablet",
                        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                        "code": "313782",
                    }
                ],
            },
            "dosageInstruction": [
                {
                    "doseQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "{pill}"},
                    "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                }
            ],
        }
    context: dict[str, Any] = {
        "userId": "Practitioner/COREPRACTITIONER1",
        "patientId": "smart-1288992",
        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": order}]},
    }
    if hook == "order-select":
        context["selections"] = [f"{order['resourceType']}/{order['id']}"]
    return {
        "hookInstance": str(uuid.uuid4()),
        "hook": hook,
        "fhirServer": DSTU2_SERVER if dstu2 else R4_SERVER,
        "context": context,
    }


# --------------------------------------------------------------------------- the profile's trust


def test_the_sandbox_profile_trusts_the_sandbox_issuer_through_the_shipped_jwks(tmp_path: Path) -> None:
    with sandbox_app(tmp_path, None) as client:
        settings = client.app.state.settings  # type: ignore[attr-defined]
        issuers = trusted_issuers(settings)
        assert [(i.iss, i.jku, i.jwks_file) for i in issuers] == [
            (SANDBOX_ISSUER, [SANDBOX_JKU], str(SANDBOX_JWKS_FILE))
        ]
        shipped = json.loads(SANDBOX_JWKS_FILE.read_text(encoding="utf-8"))["keys"]
        assert [(k["kid"], k["kty"], k["crv"], k["alg"]) for k in shipped] == [
            (SANDBOX_KID, "EC", "P-384", "ES384")
        ]
        # a JWT under the sandbox's kid but signed with another key does not verify against the shipped key
        impostor = new_key("ES384", kid=SANDBOX_KID)
        response = post(client, SELECT, pama_body(MRI_LUMBAR), sandbox_jwt(impostor, SELECT))
        assert response.status_code == 401


def test_discovery_with_a_sandbox_jwt_lists_both_services(
    sandbox: TestClient, sandbox_key: SigningKey
) -> None:
    response = sandbox.get(
        "/cds-services",
        headers={
            "Authorization": f"Bearer {sandbox_jwt(sandbox_key, '/cds-services')}",
            "Origin": SANDBOX_ORIGIN,
        },
    )
    assert response.status_code == 200
    assert [s["hook"] for s in response.json()["services"]] == ["order-select", "order-sign"]


def test_the_sandbox_profile_requires_the_jwt(sandbox: TestClient) -> None:
    assert post(sandbox, SELECT, pama_body(MRI_LUMBAR), None).status_code == 401
    assert sandbox.get("/cds-services").status_code == 401


def test_a_bad_signature_is_a_bare_401(sandbox: TestClient, sandbox_key: SigningKey) -> None:
    token = sandbox_jwt(sandbox_key, SELECT)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    response = post(sandbox, SELECT, pama_body(MRI_LUMBAR), forged)
    assert response.status_code == 401
    assert response.content == b""


def test_the_aud_must_be_the_exact_url_called(sandbox: TestClient, sandbox_key: SigningKey) -> None:
    wrong = sandbox_jwt(sandbox_key, SIGN)  # a token for the other service
    assert post(sandbox, SELECT, pama_body(MRI_LUMBAR), wrong).status_code == 401


# --------------------------------------------------------------------------- PAMA Imaging


def test_pama_spine_imaging_with_the_demo_mapping_gives_cards_that_say_so(
    sandbox_demo: TestClient, sandbox_key: SigningKey
) -> None:
    response = post(sandbox_demo, SELECT, pama_body(MRI_LUMBAR), sandbox_jwt(sandbox_key, SELECT))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert cards
    assert "eligibility" in [c["source"]["topic"]["code"] for c in cards]
    for card in cards:
        assert "Demo mapping" in card["detail"], card["summary"]
        assert "stand-in" in card["detail"]


def test_pama_spine_imaging_without_the_demo_mapping_gives_no_cards(
    sandbox: TestClient, sandbox_key: SigningKey
) -> None:
    response = post(sandbox, SELECT, pama_body(MRI_LUMBAR), sandbox_jwt(sandbox_key, SELECT))
    assert response.status_code == 200
    assert response.json() == {"cards": []}


def test_pama_imaging_that_is_not_spine_gives_no_cards_even_with_the_demo_mapping(
    sandbox_demo: TestClient, sandbox_key: SigningKey
) -> None:
    response = post(sandbox_demo, SELECT, pama_body(CT_CARDIAC), sandbox_jwt(sandbox_key, SELECT))
    assert response.status_code == 200
    assert response.json() == {"cards": []}


@pytest.mark.parametrize("demo_mapping", [False, True], ids=["demo-off", "demo-on"])
def test_the_empty_first_pama_order_gives_no_cards(
    tmp_path: Path, sandbox_key: SigningKey, demo_mapping: bool
) -> None:
    """The first call fires before a study is chosen: `code.coding` holds one empty object."""
    with sandbox_app(tmp_path, sandbox_key, demo_imaging_stand_in=demo_mapping) as client:
        response = post(client, SELECT, pama_body({}), sandbox_jwt(sandbox_key, SELECT))
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}


# --------------------------------------------------------------------------- Rx View and Rx Sign


@pytest.mark.parametrize(
    ("hook", "path", "dstu2"),
    [
        ("order-select", SELECT, False),
        ("order-sign", SIGN, False),
        ("order-select", SELECT, True),
        ("order-sign", SIGN, True),
    ],
    ids=["rx-view-r4", "rx-sign-r4", "rx-view-dstu2", "rx-sign-dstu2"],
)
def test_medication_orders_from_the_rx_screens_give_no_cards(
    sandbox_demo: TestClient, sandbox_key: SigningKey, hook: str, path: str, dstu2: bool
) -> None:
    response = post(sandbox_demo, path, rx_body(hook, dstu2=dstu2), sandbox_jwt(sandbox_key, path))
    assert response.status_code == 200, response.text
    assert response.json() == {"cards": []}


# --------------------------------------------------------------------------- feedback and CORS


def test_sandbox_feedback_with_its_jwt_is_stored(sandbox_demo: TestClient, sandbox_key: SigningKey) -> None:
    answer = post(sandbox_demo, SELECT, pama_body(MRI_LUMBAR), sandbox_jwt(sandbox_key, SELECT)).json()
    card = answer["cards"][0]
    reason = card["overrideReasons"][0]
    feedback = {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": {"code": reason["code"], "system": reason["system"]}},
                "outcomeTimestamp": "2026-11-21T09:05:31Z",
            }
        ]
    }
    path = f"{SELECT}/feedback"
    response = post(sandbox_demo, path, feedback, sandbox_jwt(sandbox_key, path))
    assert response.status_code == 200
    assert response.json()["stored"] == 1


@pytest.mark.parametrize("path", ["/cds-services", SELECT, f"{SELECT}/feedback"])
def test_the_preflight_from_the_sandbox_origin_is_allowed_without_a_jwt(
    sandbox: TestClient, path: str
) -> None:
    response = sandbox.options(
        path,
        headers={
            "Origin": SANDBOX_ORIGIN,
            "Access-Control-Request-Method": "POST" if path != "/cds-services" else "GET",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", SANDBOX_ORIGIN)
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers
    assert "content-type" in allowed_headers
    assert "POST" in response.headers["access-control-allow-methods"]


def test_a_hook_response_carries_the_cors_header_for_the_sandbox(
    sandbox: TestClient, sandbox_key: SigningKey
) -> None:
    response = post(sandbox, SELECT, pama_body(MRI_LUMBAR), sandbox_jwt(sandbox_key, SELECT))
    assert response.headers["access-control-allow-origin"] in ("*", SANDBOX_ORIGIN)
