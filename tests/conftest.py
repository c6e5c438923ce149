"""Shared pytest fixtures: a real FHIR server (SEKMET) on 127.0.0.1 and the shared Synthea fixtures."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[1]
if str(_REPO_ROOT) not in sys.path:  # `tests.support` importable with plain `pytest` too
    sys.path.insert(0, str(_REPO_ROOT))

from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from testing.fhir_server import FhirServer, synthea_fixture_dir  # noqa: E402
from tests.support.app import client_for, make_app  # noqa: E402
from tests.support.postgres import pg_schema, pg_url, postgres_dsn  # noqa: E402, F401 — fixtures for every module
from tests.support.redis_server import redis_url  # noqa: E402, F401

INTEGRATION_TOKEN = "integration-test-token"
_SERVER_FIXTURES = frozenset({"fhir_server", "fhir_server_with_token"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use a FHIR server fixture carry the `integration` marker (`-m "not integration"`)."""
    for item in items:
        if _SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[FhirServer]:
    """A SEKMET FHIR R4 server without authentication, shared by the whole session."""
    with FhirServer() as server:
        yield server


@pytest.fixture(scope="session")
def fhir_server_with_token() -> Iterator[FhirServer]:
    """A SEKMET FHIR R4 server that requires `Authorization: Bearer integration-test-token`."""
    with FhirServer(bearer_token=INTEGRATION_TOKEN) as server:
        yield server


@pytest.fixture(scope="session")
def synthea_dir() -> Path:
    """../shared/fixtures/synthea-r4; skips when absent, except under CI=true where absence is an error."""
    folder = synthea_fixture_dir()
    if folder is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "shared fixtures absent: ../shared/fixtures/synthea-r4 (CI=true: missing fixtures are an "
                "error; provide the shared fixtures folder beside the repository)",
                pytrace=False,
            )
        pytest.skip("shared fixtures absent: ../shared/fixtures/synthea-r4")
    return folder


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    """The service on a temporary SQLite store with the clock fixed at 2026-11-21T09:00Z."""
    return make_app(tmp_path)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with client_for(app) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def _restore_vcds_environment() -> Iterator[None]:
    """The CLI writes VCDS_ variables for its workers (serve, demo); put the environment back after
    every test so no setting leaks into the next one."""
    prefixes = ("VCDS_", "VERTEBRAL_CDS_")  # VERTEBRAL_CDS_STARTUP_WARNINGS_LOGGED: set by `serve`
    saved = {key: value for key, value in os.environ.items() if key.startswith(prefixes)}
    yield
    for key in [k for k in os.environ if k.startswith(prefixes)]:
        if key not in saved:
            del os.environ[key]
    os.environ.update(saved)
