"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import text

from cds_service.web.metrics import exposition
from cds_service.web.responses import outcome_response

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Alive: the process answers. Says nothing about its dependencies (that is /readyz)."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(request: Request) -> dict[str, object] | Response:
    """Ready: the database answers, and code sets and thresholds are loaded."""
    problems: list[str] = []
    try:
        with request.app.state.database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        problems.append("database unreachable")
    if getattr(request.app.state, "codesets", None) is None:
        problems.append("code sets not loaded")
    thresholds_version: int | None = None
    if not problems:
        try:
            _, thresholds_version = request.app.state.flow.thresholds()
        except Exception:
            problems.append("thresholds not loaded")
    if problems:
        return outcome_response(503, "transient", "; ".join(problems))
    return {"status": "ready", "thresholdsVersion": thresholds_version}


@router.get("/metrics")
def metrics() -> Response:
    content, media_type = exposition()
    return Response(content, media_type=media_type)
