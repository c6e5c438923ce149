"""Errors the edge answers with, each a FHIR OperationOutcome with a status that fits."""

from __future__ import annotations

from typing import Any


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
