"""The one way a route answers with JSON: orjson-encoded bytes, and FHIR OperationOutcomes for errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi.responses import Response

from cds_service.web.errors import operation_outcome

FHIR_JSON = "application/fhir+json"


def json_response(
    body: Any,
    status_code: int = 200,
    *,
    media_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """`body` as JSON (orjson: faster than FastAPI's `jsonable_encoder` path, and the same bytes)."""
    return Response(orjson.dumps(body), status_code=status_code, media_type=media_type, headers=headers)


def outcome_response(status_code: int, code: str, message: str) -> Response:
    """An error as a FHIR OperationOutcome with a status that fits."""
    return json_response(operation_outcome(code, message), status_code, media_type=FHIR_JSON)
