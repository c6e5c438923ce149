"""CDS Hooks endpoints: discovery, the two hook services, and feedback."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError

from cds_service.discovery import SERVICES_BY_ID, ServiceDefinition, discovery_document
from cds_service.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from cds_service.hook_flow import HookFlow, validation_message
from cds_service.hook_models import FeedbackRequest
from cds_service.records import store_feedback

router = APIRouter(tags=["cds-hooks"])
log = logging.getLogger("vertebral_cds.hooks")


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(content=orjson.dumps(body), status_code=status_code, media_type="application/json")


def _service(service_id: str) -> ServiceDefinition:
    service = SERVICES_BY_ID.get(service_id)
    if service is None:
        raise NotFound(f"No CDS service with id {service_id!r}; see GET /cds-services")
    return service


async def read_json_body(request: Request) -> Any:
    """The body as JSON, refusing what is too large (413) or not JSON (415, 400) before parsing."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", "application/fhir+json", ""):
        raise UnsupportedMediaType(f"Send application/json, not {content_type}")
    limit: int = request.app.state.settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body larger than {limit} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"The request body is not valid JSON ({error.msg})") from error


@router.get("/cds-services")
def discovery(request: Request) -> Response:
    return _json(discovery_document(request.app.state.codesets))


@router.post("/cds-services/{service_id}")
async def call_service(service_id: str, request: Request) -> Response:
    service = _service(service_id)
    body = await read_json_body(request)
    flow: HookFlow = request.app.state.flow
    return _json(await run_in_threadpool(flow.run, service, body))


@router.post("/cds-services/{service_id}/feedback")
async def feedback(service_id: str, request: Request) -> Response:
    service = _service(service_id)
    body = await read_json_body(request)
    try:
        parsed = FeedbackRequest.model_validate(body)
    except ValidationError as error:
        message, paths = validation_message(error)
        raise BadRequest(message.replace("CDS Hooks request", "feedback"), expression=paths) from error
    new, duplicates = await run_in_threadpool(
        store_feedback, request.app.state.database, service.id, list(parsed.feedback)
    )
    log.info(
        "feedback stored",
        extra={"service": service.id, "feedback_new": new, "feedback_duplicates": duplicates},
    )
    return _json({"received": len(parsed.feedback), "stored": new, "duplicates": duplicates})
