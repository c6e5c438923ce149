"""CDS Hooks endpoints: discovery, the two hook services, and feedback."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import uuid
from typing import Any

import anyio
import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError

from cds_service.hooks.call_deadline import CallDeadline
from cds_service.hooks.discovery import SERVICES_BY_ID, ServiceDefinition, discovery_document
from cds_service.hooks.feedback import store_feedback
from cds_service.hooks.flow import HookFlow, validation_message
from cds_service.hooks.json_limits import JsonLimits, check_json_limits
from cds_service.hooks.models import FeedbackRequest
from cds_service.hooks.openapi_bodies import FEEDBACK_REQUEST_SCHEMA, HOOK_REQUEST_SCHEMA, request_body
from cds_service.settings import Settings
from cds_service.trust.client_auth import authenticate
from cds_service.trust.jwt_verifier import VerifiedClient
from cds_service.web.errors import (
    BadRequest,
    DeadlineExceeded,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)
from cds_service.web.responses import json_response

router = APIRouter(tags=["cds-hooks"])
log = logging.getLogger("vertebral_cds.hooks")
_PARSE_IN_THREAD_BYTES = 256_000  # larger bodies are parsed and checked off the event loop


# The JWT's `aud` must be the exact external URL of the endpoint called (CDS Hooks 2.0).
def discovery_client(request: Request) -> VerifiedClient | None:
    return authenticate(request, "/cds-services")


def service_client(request: Request, service_id: str) -> VerifiedClient | None:
    return authenticate(request, f"/cds-services/{service_id}")


def feedback_client(request: Request, service_id: str) -> VerifiedClient | None:
    return authenticate(request, f"/cds-services/{service_id}/feedback")


def _answer(encoded: bytes) -> Response:
    return Response(content=encoded, media_type="application/json")


def _service(service_id: str) -> ServiceDefinition:
    service = SERVICES_BY_ID.get(service_id)
    if service is None:
        raise NotFound(f"No CDS service with id {service_id!r}; see GET /cds-services")
    return service


def _parse_json(raw: bytes | bytearray, limits: JsonLimits) -> Any:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"The request body is not valid JSON ({error.msg})") from error
    check_json_limits(body, limits)
    return body


async def read_json_body(request: Request) -> Any:
    """The body as JSON, refusing what is too large (413), too slow (408) or not JSON (415, 400),
    then what is too deep (400) or holds too many values or entries (413)."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", "application/fhir+json", ""):
        raise UnsupportedMediaType(f"Send application/json, not {content_type}")
    settings: Settings = request.app.state.settings
    limit = settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body larger than {limit} bytes")
    raw = bytearray()  # one copy of the body in memory, not chunks plus their join
    size = 0
    try:
        with anyio.fail_after(settings.request_body_timeout_seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"Request body larger than {limit} bytes")
                raw += chunk
    except TimeoutError as error:
        raise RequestTimeout("The request body did not arrive in time") from error
    limits = JsonLimits(settings.max_json_depth, settings.max_json_values, settings.max_bundle_entries)
    if len(raw) > _PARSE_IN_THREAD_BYTES:
        return await run_in_threadpool(_parse_json, raw, limits)
    return _parse_json(raw, limits)


def _hook_limiter(request: Request) -> anyio.CapacityLimiter:
    """Hook calls get their own worker threads: slow FHIR fetches cannot take the ones that answer
    discovery, health and JWT checks."""
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "hook_limiter", None)
    if limiter is None:
        settings: Settings = request.app.state.settings
        limiter = request.app.state.hook_limiter = anyio.CapacityLimiter(settings.max_concurrent_hook_calls)
    return limiter


def _note_hook_instance(request: Request, body: Any) -> None:
    """Keep a valid hookInstance for the request log line (it correlates with the EHR's logs)."""
    value = body.get("hookInstance") if isinstance(body, dict) else None
    if isinstance(value, str) and len(value) <= 64:
        with contextlib.suppress(ValueError):
            request.state.hook_instance = str(uuid.UUID(value))


@router.get("/cds-services", dependencies=[Depends(discovery_client)])
def discovery(request: Request) -> Response:
    settings = request.app.state.settings
    return json_response(discovery_document(request.app.state.codesets, settings.demo_imaging_stand_in))


@router.post(
    "/cds-services/{service_id}",
    dependencies=[Depends(service_client)],
    openapi_extra=request_body(HOOK_REQUEST_SCHEMA),
)
async def call_service(service_id: str, request: Request) -> Response:
    service = _service(service_id)
    body = await read_json_body(request)
    _note_hook_instance(request, body)
    flow: HookFlow = request.app.state.flow
    settings: Settings = request.app.state.settings
    # One path for every call, however small or prefetched: under the concurrency cap, within the
    # deadline, off the event loop (the parse too: a large body is CPU).
    deadline = CallDeadline(settings.hook_deadline_seconds or settings.fetch_deadline_seconds + 5.0)
    try:
        with anyio.fail_after(max(0.0, deadline.at - time.monotonic())):
            # abandon_on_cancel: past the deadline, answer now; the worker thread stops at its next
            # check of `deadline` (and its FHIR fetches have the same deadline)
            result = await anyio.to_thread.run_sync(
                functools.partial(flow.answer, service, body, None, deadline),
                abandon_on_cancel=True,
                limiter=_hook_limiter(request),
            )
    except TimeoutError as error:
        deadline.cancel()
        raise DeadlineExceeded(f"The hook call did not finish within {deadline.seconds:g} s") from error
    return _answer(result)


@router.post(
    "/cds-services/{service_id}/feedback",
    dependencies=[Depends(feedback_client)],
    openapi_extra=request_body(FEEDBACK_REQUEST_SCHEMA),
)
async def feedback(service_id: str, request: Request) -> Response:
    service = _service(service_id)
    body = await read_json_body(request)
    try:
        parsed = FeedbackRequest.model_validate(body)
    except ValidationError as error:
        message, paths = validation_message(error)
        raise BadRequest(message.replace("CDS Hooks request", "feedback"), expression=paths) from error
    flow: HookFlow = request.app.state.flow
    # The cards this worker issued a moment ago may still be queued: write them first, so the feedback
    # is linked to its evaluation now (feedback for another worker's card is linked when that row lands).
    await run_in_threadpool(flow.flush_records, 2.0)
    new, duplicates = await run_in_threadpool(
        store_feedback, request.app.state.database, service.id, list(parsed.feedback)
    )
    log.info(
        "feedback stored",
        extra={"service": service.id, "feedback_new": new, "feedback_duplicates": duplicates},
    )
    return json_response({"received": len(parsed.feedback), "stored": new, "duplicates": duplicates})
