"""Errors the edge answers with, each a FHIR OperationOutcome with a status that fits."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_log = logging.getLogger("vertebral_cds.errors")


class ServiceError(Exception):
    status_code = 500
    code = "exception"

    def __init__(self, message: str, *, expression: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression or []

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.code, self.message, self.expression)


class BadRequest(ServiceError):
    status_code = 400
    code = "invalid"


class Unauthorized(ServiceError):
    status_code = 401
    code = "security"


class NotFound(ServiceError):
    status_code = 404
    code = "not-found"


class PreconditionFailed(ServiceError):
    """CDS Hooks 2.0: required data could not be had from prefetch nor from the FHIR server."""

    status_code = 412
    code = "incomplete"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "too-costly"


class RequestTimeout(ServiceError):
    """The request body did not arrive in time (a slow or stalled client)."""

    status_code = 408
    code = "timeout"


class DeadlineExceeded(ServiceError):
    """The hook call took longer than its overall deadline."""

    status_code = 503
    code = "timeout"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "not-supported"


class FetchRefused(ServiceError):
    """A FHIR server the configuration does not allow (SSRF guard)."""

    status_code = 400
    code = "security"


def operation_outcome(
    code: str, message: str, expression: list[str] | None = None, severity: str = "error"
) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


class UnexpectedErrorMiddleware:
    """An error nothing else handled: a 500 OperationOutcome carrying a correlation id, and the
    keep-alive connection stays usable.

    Starlette's own last-resort handler answers and then re-raises, and uvicorn closes the connection
    on any exception out of the app: the EHR's next call on that connection then fails. Here the error
    ends at the 500. Logged through the service's formatter with the exception's type and the
    correlation id only: the message and traceback of a database error quote SQL parameters (a patient
    id). When the response had already started nothing can be answered, and the error goes on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as error:
            correlation = uuid.uuid4().hex
            _log.error(
                "unexpected error",
                extra={"error_code": type(error).__name__, "correlation_id": correlation},
            )
            if started:
                raise
            body = orjson.dumps(
                operation_outcome(
                    "exception", f"Internal error; the service log has correlation id {correlation}"
                )
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/fhir+json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"x-correlation-id", correlation.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
