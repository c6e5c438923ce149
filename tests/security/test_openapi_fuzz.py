"""Schemathesis against the service's own OpenAPI document: no generated request gets a 5xx.

The document declares the hook and feedback request bodies (`openapi_bodies`), so schemathesis sends
bodies shaped like CDS Hooks calls (positive mode) and bodies that break that shape (negative mode)
to discovery, both hook services, feedback and health. The one allowed FHIR server is a closed port
on 127.0.0.1, so a generated `fhirServer` is never fetched from.

(Schemathesis's own pytest loader does not run on pytest 9, so each operation's hypothesis strategy is
driven here directly.)
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from testing.fhir_server import free_port
from tests.support.app import make_app

EXAMPLES = 50  # per operation and mode
SELECT_ID, SIGN_ID = "vertebral-augmentation-select", "vertebral-augmentation-sign"
OPERATIONS: list[tuple[str, str, dict[str, str] | None]] = [
    ("GET", "/cds-services", None),
    ("POST", "/cds-services/{service_id}", {"service_id": SELECT_ID}),
    ("POST", "/cds-services/{service_id}", {"service_id": SIGN_ID}),
    ("POST", "/cds-services/{service_id}", None),  # any service id, mostly unknown ones
    ("POST", "/cds-services/{service_id}/feedback", {"service_id": SELECT_ID}),
    ("POST", "/cds-services/{service_id}/feedback", None),
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    app = make_app(
        tmp_path_factory.mktemp("openapi"),
        allowed_fhir_servers=[f"http://127.0.0.1:{free_port()}/fhir"],
        fetch_deadline_seconds=1.0,
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operation(schema: Any, method: str, path: str) -> Any:
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == method and operation.path == path:
            return operation
    raise LookupError(f"{method} {path} is not in the OpenAPI document")


# Negative mode breaks parameters and bodies: the GETs have neither.
CASES = [
    (*operation, mode)
    for operation in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or operation[0] == "POST"
]


@pytest.mark.parametrize(
    ("method", "path", "path_parameters", "mode"),
    CASES,
    ids=[f"{m} {p} {(pp or {}).get('service_id', '*')} {mode.value}" for m, p, pp, mode in CASES],
)
def test_no_generated_request_gets_a_server_error(
    api_schema: Any, method: str, path: str, path_parameters: dict[str, str] | None, mode: GenerationMode
) -> None:
    operation = _operation(api_schema, method, path)
    statuses: list[int] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case: Any) -> None:
        response = case.call()
        statuses.append(response.status_code)
        assert response.status_code < 500, (
            f"{case.as_curl_command()} -> {response.status_code} {response.text}"
        )

    run()
    assert statuses, "no request was generated"


def test_the_hook_bodies_get_past_the_first_checks(api_schema: Any) -> None:
    """Positive cases must reach the hook flow (a 200), or the fuzzing would only knock at the door."""
    operation = _operation(api_schema, "POST", "/cds-services/{service_id}")
    statuses: list[int] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(path_parameters={"service_id": SELECT_ID}))
    def run(case: Any) -> None:
        statuses.append(case.call().status_code)

    run()
    assert 200 in statuses


def test_every_cds_hooks_and_health_operation_is_fuzzed(api_schema: Any) -> None:
    published = {
        (r.ok().method.upper(), r.ok().path)
        for r in api_schema.get_all_operations()
        if r.ok().path.startswith(("/cds-services", "/healthz", "/readyz"))
    }
    assert published == {(m, p) for m, p, _ in OPERATIONS}
