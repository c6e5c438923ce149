"""Liveness and readiness."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import text

from cds_service.errors import operation_outcome

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(request: Request) -> dict[str, str] | Response:
    try:
        with request.app.state.database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        body = operation_outcome("transient", "database unreachable")
        return Response(orjson.dumps(body), status_code=503, media_type="application/fhir+json")
    return {"status": "ready"}
