"""Admin API under /admin/api: thresholds with ETags, history, diff, rollback, what-if, audit.

Every route needs a bearer token (viewer or editor). A change needs `If-Match` with the ETag of the
version it was based on: a stale ETag gets 412 and changes nothing; invalid values get 422 with one
message per field and change nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError

from cds_service.admin.analytics import Period, as_csv
from cds_service.admin.audit import entries
from cds_service.admin.auth import Principal
from cds_service.admin.context import Admin, AdminContext, AdminError, Editor, Viewer
from cds_service.admin.threshold_fields import diff, errors_json, field_errors, missing_fields, schema_json
from cds_service.admin.thresholds_store import (
    NothingToSave,
    ThresholdsVersion,
    UnknownVersion,
    VersionConflict,
    etag_for,
)
from cds_service.admin.what_if import MAX_UPLOADS, CaseError, case_from_document, preview
from cds_service.routes.cds_hooks import read_json_body
from cds_service.web.responses import json_response
from rules.thresholds import Thresholds

router = APIRouter(prefix="/admin/api", tags=["admin"])

MAX_REASON_LENGTH = 2000
MAX_VERSION = 2_147_483_647
_ETAG = re.compile(r'^(?:W/)?"thresholds-v(\d+)"$')


def _json(body: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Admin answers are never cached."""
    return json_response(body, status_code, headers={"Cache-Control": "no-store", **(headers or {})})


def _version_response(version: ThresholdsVersion, **extra: Any) -> Response:
    return _json({**version.as_json(), **extra}, headers={"ETag": version.etag})


async def _object_body(request: Request) -> dict[str, Any]:
    body = await read_json_body(request)
    if not isinstance(body, dict):
        raise AdminError(422, "The body must be a JSON object.", errors=[])
    return body


def _reason(body: dict[str, Any]) -> str:
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise AdminError(
            422,
            "Say why: a reason is required for every change.",
            errors=[{"field": "reason", "message": "required: say why this change is made"}],
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise AdminError(
            422,
            "The reason is too long.",
            errors=[{"field": "reason", "message": f"at most {MAX_REASON_LENGTH} characters"}],
        )
    return reason.strip()


def validated(values: Any, require_every_field: bool) -> Thresholds:
    """The values as Thresholds, or 422 with a message per field."""
    if not isinstance(values, dict):
        raise AdminError(
            422,
            "values must be a JSON object of thresholds (as returned by GET /admin/api/thresholds).",
            errors=[{"field": "values", "message": "required: an object of thresholds"}],
        )
    errors = missing_fields(values) if require_every_field else {}
    try:
        thresholds = Thresholds.model_validate(values)
    except ValidationError as error:
        for path, messages in field_errors(error).items():
            errors.setdefault(path, []).extend(messages)
        thresholds = None
    if errors or thresholds is None:
        raise AdminError(422, "Some values are not valid; nothing was changed.", errors=errors_json(errors))
    return thresholds


def _expected_version(request: Request, admin: AdminContext) -> int:
    """The version named by If-Match, which must still be the current one (else 412)."""
    header = request.headers.get("if-match")
    if header is None:
        raise AdminError(
            428,
            "Send If-Match with the ETag from GET /admin/api/thresholds, so a change made meanwhile "
            "by someone else is never overwritten.",
        )
    current = admin.store.current_version()
    match = _ETAG.match(header.strip())
    if match is None or int(match.group(1)) != current.version:
        raise _conflict(current.version)
    return current.version


def _conflict(current: int | None) -> AdminError:
    return AdminError(
        412,
        f"The thresholds changed since you read them: version {current} is now current. Nothing was "
        "changed; read the current version, merge your edits and try again.",
        headers={"ETag": etag_for(current)} if current else {},
        extra={"currentVersion": current},
    )


def _actor_name(body: dict[str, Any], principal: Principal) -> str:
    """Who the audit log and the version history name: the authenticated principal, always. A body's
    `author` is the caller's claim and is ignored (a shared API token would let anyone be anyone)."""
    del body
    return principal.name


@router.get("/whoami")
def whoami(principal: Viewer) -> Response:
    return _json({"name": principal.name, "role": principal.role})


@router.get("/thresholds")
def get_thresholds(_: Viewer, admin: Admin) -> Response:
    return _version_response(admin.store.current_version())


@router.get("/thresholds/schema")
def get_schema(_: Viewer) -> Response:
    return _json(schema_json())


@router.put("/thresholds")
async def put_thresholds(request: Request, principal: Editor, admin: Admin) -> Response:
    body = await _object_body(request)
    expected = await run_in_threadpool(_expected_version, request, admin)
    thresholds = validated(body.get("values"), require_every_field=True)
    reason = _reason(body)
    actor = principal.actor(_actor_name(body, principal))
    return await _commit(
        admin, lambda: admin.store.save(thresholds, expected_version=expected, actor=actor, reason=reason)
    )


async def _commit(admin: AdminContext, change: Callable[[], ThresholdsVersion]) -> Response:
    """Run one compare-and-swap change: the new version, 412 on a conflict, `changed: false` if a no-op."""
    try:
        saved = await run_in_threadpool(change)
    except VersionConflict as conflict:
        raise _conflict(conflict.current) from conflict
    except NothingToSave:
        return _version_response(admin.store.current_version(), changed=False)
    return _version_response(saved, changed=True)


def over_current(current: Thresholds, values: Any) -> Any:
    """A partial draft completed from the version in force (`hold_intervals` and `rules` key by key)."""
    if not isinstance(values, dict):
        return values
    merged: dict[str, Any] = current.model_dump(mode="json")
    for key, value in values.items():
        if key in ("hold_intervals", "rules") and isinstance(value, dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


@router.post("/thresholds/validate")
async def validate_thresholds(request: Request, _: Viewer, admin: Admin) -> Response:
    """Check a full or partial draft (missing values are those in force) without saving it."""
    body = await _object_body(request)
    current = await run_in_threadpool(admin.store.current_version)
    try:
        validated(over_current(current.thresholds, body.get("values")), require_every_field=False)
    except AdminError as error:
        return _json({"valid": False, "errors": error.errors or []})
    return _json({"valid": True, "errors": []})


@router.get("/thresholds/history")
def history(
    _: Viewer,
    admin: Admin,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> Response:
    versions = admin.store.history(limit=limit, before=before)
    current = admin.store.current_version().version
    return _json(
        {
            "current": current,
            "versions": [{**v.as_json(with_values=False), "current": v.version == current} for v in versions],
        }
    )


def _get(admin: AdminContext, version: int) -> ThresholdsVersion:
    try:
        return admin.store.get(version)
    except UnknownVersion as missing:
        raise AdminError(404, f"There is no thresholds version {version}.") from missing


@router.get("/thresholds/versions/{version}")
def get_version(version: Annotated[int, Path(ge=1, le=MAX_VERSION)], _: Viewer, admin: Admin) -> Response:
    return _json(_get(admin, version).as_json())


@router.get("/thresholds/diff")
def get_diff(
    _: Viewer,
    admin: Admin,
    from_version: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION)],
    to_version: Annotated[int | None, Query(alias="to", ge=1, le=MAX_VERSION)] = None,
) -> Response:
    before = _get(admin, from_version)
    after = _get(admin, to_version) if to_version is not None else admin.store.current_version()
    return _json(
        {
            "from": before.version,
            "to": after.version,
            "changes": [c.as_json() for c in diff(before.thresholds, after.thresholds)],
        }
    )


@router.post("/thresholds/rollback")
async def rollback(request: Request, principal: Editor, admin: Admin) -> Response:
    body = await _object_body(request)
    expected = await run_in_threadpool(_expected_version, request, admin)
    target = body.get("version")
    if not isinstance(target, int) or isinstance(target, bool) or not 1 <= target <= MAX_VERSION:
        raise AdminError(
            422,
            "Name the version to go back to.",
            errors=[{"field": "version", "message": "required: a version number"}],
        )
    _get(admin, target)
    reason = _reason(body)
    actor = principal.actor(_actor_name(body, principal))
    return await _commit(
        admin, lambda: admin.store.rollback(target, expected_version=expected, actor=actor, reason=reason)
    )


@router.post("/thresholds/what-if")
async def what_if(request: Request, _: Viewer, admin: Admin) -> Response:
    """Body: {"values": a full or partial draft (missing values are those in force), "cases": [hook
    requests], "savedCases": bool (default true)}."""
    body = await _object_body(request)
    current = await run_in_threadpool(admin.store.current_version)
    draft = (
        validated(over_current(current.thresholds, body["values"]), require_every_field=False)
        if "values" in body
        else current.thresholds
    )
    uploads = body.get("cases", [])
    if not isinstance(uploads, list) or len(uploads) > MAX_UPLOADS:
        raise AdminError(422, f"cases must be a list of at most {MAX_UPLOADS} hook requests.", errors=[])
    cases = list(admin.saved_cases()) if body.get("savedCases", True) else []
    problems = []
    for index, item in enumerate(uploads):
        try:
            cases.append(case_from_document(f"case-{index + 1}", item, "upload", admin.flow.prefetch))
        except CaseError as error:
            problems.append({"field": f"cases[{index}]", "message": str(error)})
    if problems:
        raise AdminError(422, "Some uploaded cases are not hook requests.", errors=problems)
    result = await run_in_threadpool(preview, admin.flow, (current.thresholds, current.version), draft, cases)
    return _json(result.as_json())


@router.get("/audit")
def audit_log(
    _: Viewer,
    admin: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
) -> Response:
    return _json({"entries": [e.as_json() for e in entries(admin.database, limit=limit, before_id=before)]})


def analytics_period(start: date | None, end: date | None, today: date) -> Period:
    """[start, end] as whole days, UTC; the last 30 days when not given. 422 when reversed or absurd."""
    last = end or today
    first = start or last - timedelta(days=29)
    if first > last:
        raise AdminError(
            422, "The period starts after it ends.", errors=[{"field": "from", "message": "after to"}]
        )
    if (last - first).days > 3660:
        raise AdminError(
            422, "The period is longer than ten years.", errors=[{"field": "from", "message": "too early"}]
        )
    return Period(first=first, last=last)


@router.get("/analytics")
def analytics(
    _: Viewer,
    admin: Admin,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    period = analytics_period(start, end, datetime.now(UTC).date())
    rows = admin.rule_statistics(period)
    return _json(
        {
            "from": period.first.isoformat(),
            "to": period.last.isoformat(),
            "rules": [row.as_json() for row in rows],
        }
    )


@router.get("/analytics.csv")
def analytics_csv(
    _: Viewer,
    admin: Admin,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    period = analytics_period(start, end, datetime.now(UTC).date())
    name = f"vertebral-cds-feedback-{period.first}-{period.last}.csv"
    return Response(
        content=as_csv(admin.rule_statistics(period)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
