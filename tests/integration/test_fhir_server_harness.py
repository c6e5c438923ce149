"""The FHIR server harness works: SEKMET starts, keeps Synthea ids, pages, searches, checks auth, stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from testing.fhir_server import (
    FhirServer,
    ensure_sekmet_venv,
    load_synthea,
    next_link,
    port_is_open,
    put_transaction,
)

pytestmark = [pytest.mark.integration]

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
WARFARIN_5MG = "855332"  # Warfarin Sodium 5 MG Oral Tablet
REPO_ROOT = Path(__file__).resolve().parents[2]


def _resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


@pytest.fixture(scope="module")
def hallie(synthea_dir: Path) -> dict[str, Any]:
    return load_synthea("Hallie_Hoeger")


@pytest.fixture(scope="module")
def hallie_id(fhir_server: FhirServer, hallie: dict[str, Any]) -> str:
    return fhir_server.load_patient(hallie)


@pytest.mark.fixtures
def test_put_transaction_keeps_ids_and_resolves_every_urn(hallie: dict[str, Any]) -> None:
    rewritten, ids = put_transaction(hallie)

    assert {e["request"]["method"] for e in rewritten["entry"]} == {"PUT"}
    first = rewritten["entry"][0]
    assert first["request"]["url"] == f"{first['resource']['resourceType']}/{first['resource']['id']}"
    assert "urn:uuid:" not in json.dumps([e["resource"] for e in rewritten["entry"]])
    assert ids["Patient"] == [_resources(hallie, "Patient")[0]["id"]]
    assert sum(len(v) for v in ids.values()) == len(hallie["entry"])
    assert hallie["entry"][0]["request"]["method"] == "POST"  # input left alone


@pytest.mark.fixtures
def test_loaded_patient_is_readable_at_its_own_id(
    fhir_server: FhirServer, hallie: dict[str, Any], hallie_id: str
) -> None:
    assert hallie_id == _resources(hallie, "Patient")[0]["id"]

    response = fhir_server.request("GET", f"Patient/{hallie_id}")

    assert response.status_code == 200
    assert response.json()["id"] == hallie_id
    order = fhir_server.read("MedicationRequest", _resources(hallie, "MedicationRequest")[0]["id"])
    assert order["subject"] == {"reference": f"Patient/{hallie_id}"}


@pytest.mark.fixtures
def test_loading_again_updates_in_place(
    fhir_server: FhirServer, hallie: dict[str, Any], hallie_id: str
) -> None:
    before = fhir_server.count("Observation", hallie_id)

    assert fhir_server.load_patient(hallie) == hallie_id

    assert fhir_server.count("Observation", hallie_id) == before
    assert int(fhir_server.read("Patient", hallie_id)["meta"]["versionId"]) >= 2


@pytest.mark.fixtures
def test_observation_search_pages_with_next_links(
    fhir_server: FhirServer, hallie: dict[str, Any], hallie_id: str
) -> None:
    expected = {o["id"] for o in _resources(hallie, "Observation")}

    page = fhir_server.request("GET", "Observation", params={"patient": hallie_id, "_count": "50"}).json()
    assert page["resourceType"] == "Bundle"
    assert page["type"] == "searchset"
    assert len(page["entry"]) == 50
    assert next_link(page) is not None

    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        url = next_link(page)
        if url is None:
            break
        response = fhir_server.request("GET", url)
        assert response.status_code == 200
        page = response.json()

    assert len(seen) == len(expected) == 297
    assert set(seen) == expected
    assert pages == -(-len(expected) // 50)
    assert fhir_server.count("Observation", hallie_id) == len(expected)
    assert {o["id"] for o in fhir_server.search_all("Observation", {"patient": hallie_id})} == expected


@pytest.mark.fixtures
def test_token_search_finds_the_active_warfarin_order(fhir_server: FhirServer, hallie_id: str) -> None:
    response = fhir_server.request(
        "GET", "MedicationRequest", params={"patient": hallie_id, "status": "active"}
    )

    assert response.status_code == 200
    orders = [e["resource"] for e in response.json().get("entry", [])]
    assert orders
    assert {o["status"] for o in orders} == {"active"}
    warfarin = [
        o
        for o in orders
        if {"system": RXNORM, "code": WARFARIN_5MG}.items()
        <= o["medicationCodeableConcept"]["coding"][0].items()
    ]
    assert len(warfarin) == 1
    assert warfarin[0]["subject"]["reference"] == f"Patient/{hallie_id}"

    by_code = fhir_server.search(
        "MedicationRequest",
        {"patient": hallie_id, "code": f"{RXNORM}|{WARFARIN_5MG},{RXNORM}|0000000", "status": "active"},
    )
    assert [e["resource"]["id"] for e in by_code["entry"]] == [warfarin[0]["id"]]


def test_bearer_token_is_required(fhir_server_with_token: FhirServer) -> None:
    server = fhir_server_with_token
    url = f"{server.base_url}/Patient"

    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {server.token}"}).status_code == 200
    assert server.request("GET", "Patient").status_code == 200  # the harness sends the token itself
    assert httpx.get(f"{server.base_url}/metadata").status_code == 200  # SEKMET leaves metadata open


def test_harness_writes_through_the_token(fhir_server_with_token: FhirServer) -> None:
    server = fhir_server_with_token
    stored = server.put({"resourceType": "Patient", "id": "harness-token-check", "gender": "female"})

    assert stored["id"] == "harness-token-check"
    assert server.read("Patient", "harness-token-check")["gender"] == "female"


def test_port_is_closed_after_the_context_manager_exits() -> None:
    with FhirServer() as server:
        assert server.running
        assert port_is_open(server.port)
        assert server.request("GET", "metadata").status_code == 200
        port, workdir = server.port, server.workdir
        assert workdir is not None
        assert workdir.is_dir()

    assert not server.running
    assert not port_is_open(port)
    assert not workdir.exists()


_ORPHAN = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from testing.fhir_server import FhirServer
server = FhirServer().__enter__()
print(server.port, server.pid, server.workdir, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_server_stops_when_the_test_process_dies() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _ORPHAN, str(REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    port_text, pgid_text, workdir_text = done.stdout.split()
    port, pgid, workdir = int(port_text), int(pgid_text), Path(workdir_text)

    deadline = time.monotonic() + 20
    while (_group_alive(pgid) or workdir.exists()) and time.monotonic() < deadline:
        time.sleep(0.1)

    assert not _group_alive(pgid)
    assert not port_is_open(port)
    assert not workdir.exists()


def test_ensure_sekmet_venv_is_idempotent_and_fast() -> None:
    first = ensure_sekmet_venv()
    started = time.monotonic()

    assert ensure_sekmet_venv() == first
    assert time.monotonic() - started < 0.5
    assert first.is_file()
    assert first.name == "sekmet"


def test_a_server_with_several_workers_serves_the_loaded_patient_from_every_worker(synthea_dir: Path) -> None:
    with FhirServer(workers=2) as server:
        patient_id = server.load_patient(load_synthea("Hallie_Hoeger"))
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: server.read("Patient", patient_id)["id"], range(8)))
    assert answers == [patient_id] * 8
