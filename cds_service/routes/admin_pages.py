"""The admin web page at /admin: server-rendered HTML forms, no build step.

Log in with an admin token (a signed session cookie follows), see and edit every threshold with its
description, unit, bounds and source, preview what a draft would change on saved cases, save with a
reason, browse the history with diffs, roll back, and read the audit log. Every form carries a CSRF
token; a viewer may preview but not save.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from cds_service.admin.audit import entries
from cds_service.admin.auth import SESSION_COOKIE, Principal, clean_name
from cds_service.admin.context import AdminContext, AdminError, admin_context, client_address
from cds_service.admin.threshold_fields import (
    FORM_ERROR,
    INDICATORS,
    diff,
    field_errors,
    field_specs,
    flatten,
    grouped_specs,
    path_label,
    values_from_form,
)
from cds_service.admin.thresholds_store import (
    NothingToSave,
    ThresholdsVersion,
    UnknownVersion,
    VersionConflict,
)
from cds_service.admin.what_if import Preview, preview, uploaded_cases
from cds_service.routes import admin_api
from cds_service.routes.admin_api import MAX_REASON_LENGTH, MAX_VERSION, analytics_period
from rules.thresholds import RULE_IDS, Thresholds

router = APIRouter(prefix="/admin", include_in_schema=False)

STATIC = Path(__file__).resolve().parents[1] / "static"
LOGIN_COOKIE = "vcds_admin_login"
MAX_UPLOAD_BYTES = 5_000_000
_templates = Environment(
    loader=PackageLoader("cds_service", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_NO_STORE = {"Cache-Control": "no-store"}
"""Admin pages are never cached; the security headers of every page come from `security_headers`."""


class _NeedsLogin(Exception):
    pass


@dataclass(frozen=True)
class DraftForm:
    """What the editor typed, shown again as typed when it cannot be saved."""

    values: Mapping[str, str]
    base_version: int | None
    reason: str


def _page(template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    html = _templates.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status_code, headers=_NO_STORE)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=_NO_STORE)


def _secure(request: Request, admin: AdminContext) -> bool:
    return admin.https_only_cookies or request.url.scheme == "https"


def _principal(request: Request) -> Principal:
    admin = admin_context(request)
    principal = admin.session(request.cookies.get(SESSION_COOKIE))
    if principal is None:
        raise _NeedsLogin
    return principal


@dataclass(frozen=True)
class Submitted:
    """A posted form, read whole and closed: its text fields and its uploaded files' contents."""

    fields: dict[str, str]
    uploads: list[tuple[str, bytes]]

    def get(self, name: str) -> str | None:
        return self.fields.get(name)


async def _form(request: Request) -> Submitted:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise AdminError(413, f"The form is larger than {MAX_UPLOAD_BYTES} bytes.")
    async with request.form(max_files=20, max_fields=400, max_part_size=MAX_UPLOAD_BYTES) as form:
        fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
        uploads = [
            (item.filename, await item.read())
            for key, item in form.multi_items()
            if key == "cases" and isinstance(item, UploadFile) and item.filename
        ]
    return Submitted(fields, uploads)


async def _checked_form(request: Request, principal: Principal) -> Submitted:
    form = await _form(request)
    if not admin_context(request).auth.csrf_ok(principal, form.get("csrf")):
        raise AdminError(403, "The form has expired or did not come from this page; reload it and try again.")
    return form


def _display(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def _form_values(thresholds: Thresholds) -> dict[str, str]:
    """What the form shows for saved values (checkboxes: present when on)."""
    flat = flatten(thresholds)
    values = {spec.path: _display(flat[spec.path]) for spec in field_specs()}
    for rule_id in RULE_IDS:
        if flat[f"rules.{rule_id}.enabled"]:
            values[f"rules.{rule_id}.enabled"] = "on"
        values[f"rules.{rule_id}.indicator"] = flat[f"rules.{rule_id}.indicator"] or ""
    return values


def _bounds(low: float | None, high: float | None) -> str:
    parts = []
    if low is not None:
        parts.append(f"at least {_display(low)}")
    if high is not None:
        parts.append(f"at most {_display(high)}")
    return ", ".join(parts) or "any"


def _thresholds_page(
    request: Request,
    principal: Principal,
    current: ThresholdsVersion,
    *,
    draft: DraftForm | None = None,
    errors: Mapping[str, list[str]] | None = None,
    notice: str | None = None,
    problem: str | None = None,
    conflict: list[Any] | None = None,
    result: Preview | None = None,
    upload_problems: list[str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    admin = admin_context(request)
    return _page(
        "thresholds.html",
        status_code,
        principal=principal,
        csrf=admin.auth.csrf_token(principal),
        current=current,
        groups=grouped_specs(),
        values=draft.values if draft else _form_values(current.thresholds),
        errors=errors or {},
        form_errors=(errors or {}).get(FORM_ERROR, []),
        base_version=draft.base_version if draft and draft.base_version else current.version,
        reason=draft.reason if draft else "",
        notice=notice,
        problem=problem,
        conflict=conflict,
        preview=result,
        upload_problems=upload_problems or [],
        rule_ids=RULE_IDS,
        indicators=INDICATORS,
        bounds=_bounds,
        display=_display,
        label=path_label,
        max_reason=MAX_REASON_LENGTH,
        page="thresholds",
    )


def _draft(form: Submitted) -> tuple[dict[str, str], Thresholds | None, dict[str, list[str]]]:
    """The submitted values as the form showed them, the Thresholds they make, and errors per field."""
    raw = form.fields
    nested, errors = values_from_form(raw)
    if errors:
        return raw, None, errors
    try:
        return raw, Thresholds.model_validate(nested), {}
    except ValidationError as error:
        return raw, None, field_errors(error)


def _base_version(form: Submitted) -> int | None:
    value = form.get("base_version")
    if value is None or not value.isdigit() or not 1 <= int(value) <= MAX_VERSION:
        return None
    return int(value)


# --------------------------------------------------------------------------- log in and out


@router.get("/login")
def login_page(request: Request) -> Response:
    admin = admin_context(request)
    if admin.session(request.cookies.get(SESSION_COOKIE)) is not None:
        return _redirect("/admin")
    return _login_form(request, admin)


def _login_form(
    request: Request, admin: AdminContext, problem: str | None = None, name: str = "", status_code: int = 200
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(18)
    response = _page(
        "login.html",
        status_code,
        closed=not admin.auth.enabled,
        problem=problem,
        name=name,
        login_token=admin.auth.login_token(nonce),
        principal=None,
        page="login",
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=900,
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=_secure(request, admin),
    )
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    admin = admin_context(request)
    if not admin.auth.enabled:
        return _login_form(request, admin, status_code=503)
    client = client_address(request)
    wait = admin.limiter.retry_after(client)
    if wait > 0:
        minutes = math.ceil(wait / 60)
        return _login_form(
            request,
            admin,
            problem=f"Too many failed logins from this address. Try again in {minutes} minute(s).",
            status_code=429,
        )
    form = await _form(request)
    fields = form.fields
    name = clean_name(fields.get("name"), "")
    if not admin.auth.login_token_ok(request.cookies.get(LOGIN_COOKIE), fields.get("login_token")):
        return _login_form(request, admin, "The login form expired; please try again.", name, 403)
    role = admin.auth.role_for(fields.get("token", ""))
    if role is None:
        await run_in_threadpool(admin.failed_login, client, "form", name or None)
        return _login_form(request, admin, "That token is not valid.", name, 401)
    if not name:
        return _login_form(request, admin, "Enter your name: it goes into the audit log.", name, 422)
    admin.limiter.reset(client)
    cookie, principal = admin.auth.new_session(name, role)
    await run_in_threadpool(admin.audit, principal.actor(), "login", {"via": "form", "client": client})
    response = _redirect("/admin")
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=admin.auth.session_seconds,
        path="/admin",
        httponly=True,
        samesite="strict",
        secure=_secure(request, admin),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/admin")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    principal = _principal(request)
    await _checked_form(request, principal)
    admin = admin_context(request)
    await run_in_threadpool(admin.end_session, principal)  # the cookie is refused from now on, everywhere
    await run_in_threadpool(admin.audit, principal.actor(), "logout", {"via": "form"})
    response = _redirect("/admin/login")
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response


# --------------------------------------------------------------------------- thresholds


@router.get("")
def thresholds_page(request: Request, saved: int | None = None) -> Response:
    principal = _principal(request)
    current = admin_context(request).store.current_version()
    notice = f"Saved as version {saved}; it is in force for the next hook call." if saved else None
    return _thresholds_page(request, principal, current, notice=notice)


@router.post("/thresholds")
async def save_thresholds(request: Request) -> Response:
    principal = _principal(request)
    form = await _checked_form(request, principal)
    admin = admin_context(request)
    current = await run_in_threadpool(admin.store.current_version)
    raw, draft, errors = _draft(form)
    base = _base_version(form) or current.version
    reason = (raw.get("reason") or "").strip()
    page = DraftForm(raw, base, reason)
    if not principal.may("editor"):
        return _thresholds_page(
            request,
            principal,
            current,
            problem="Your role may preview but not save.",
            status_code=403,
            draft=page,
        )
    if not reason:
        errors.setdefault("reason", []).append("required: say why this change is made")
    elif len(reason) > MAX_REASON_LENGTH:
        errors.setdefault("reason", []).append(f"at most {MAX_REASON_LENGTH} characters")
    if errors or draft is None:
        return _thresholds_page(
            request,
            principal,
            current,
            errors=errors,
            problem="Nothing was saved: correct the values marked below.",
            status_code=422,
            draft=page,
        )
    try:
        saved = await run_in_threadpool(
            lambda: admin.store.save(draft, expected_version=base, actor=principal.actor(), reason=reason)
        )
    except VersionConflict:
        return await run_in_threadpool(_conflict_page, request, principal, base, raw, reason)
    except NothingToSave:
        return _thresholds_page(
            request,
            principal,
            current,
            notice="Nothing to save: the values equal the version in force.",
            draft=page,
        )
    return _redirect(f"/admin?saved={saved.version}")


def _conflict_page(
    request: Request, principal: Principal, base: int, raw: dict[str, str], reason: str
) -> HTMLResponse:
    """Someone saved first: keep this editor's draft in the form and show what the other change did."""
    store = admin_context(request).store
    current = store.current_version()
    try:
        theirs = diff(store.get(base).thresholds, current.thresholds)
    except UnknownVersion:
        theirs = []
    return _thresholds_page(
        request,
        principal,
        current,
        draft=DraftForm(raw, current.version, reason),
        problem=(
            f"Not saved: {current.author} saved version {current.version} while you were editing "
            f"version {base}. Your values are still in the form below. Check their changes, then save again."
        ),
        conflict=theirs,
        status_code=409,
    )


@router.post("/preview")
async def preview_page(request: Request) -> Response:
    principal = _principal(request)
    form = await _checked_form(request, principal)
    admin = admin_context(request)
    current = await run_in_threadpool(admin.store.current_version)
    raw, draft, errors = _draft(form)
    page = DraftForm(raw, _base_version(form), (raw.get("reason") or "").strip())
    if errors or draft is None:
        return _thresholds_page(
            request,
            principal,
            current,
            errors=errors,
            problem="No preview: correct the values marked below.",
            status_code=422,
            draft=page,
        )
    uploaded, problems = uploaded_cases(form.uploads, admin.flow.prefetch)
    cases = [*admin.saved_cases(), *uploaded]
    result = await run_in_threadpool(preview, admin.flow, (current.thresholds, current.version), draft, cases)
    return _thresholds_page(request, principal, current, result=result, upload_problems=problems, draft=page)


# --------------------------------------------------------------------------- history and rollback


@router.get("/history")
def history_page(
    request: Request,
    from_version: Annotated[int | None, Query(alias="from", ge=1, le=MAX_VERSION)] = None,
    to_version: Annotated[int | None, Query(alias="to", ge=1, le=MAX_VERSION)] = None,
    rolled: int | None = None,
) -> Response:
    principal = _principal(request)
    return _history_page(request, principal, from_version, to_version, rolled=rolled)


def _history_page(
    request: Request,
    principal: Principal,
    from_version: int | None = None,
    to_version: int | None = None,
    *,
    rolled: int | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    admin = admin_context(request)
    store = admin.store
    versions = store.history(limit=200)
    current = store.current_version()
    by_number = {v.version: v for v in versions}
    rows = []
    for version in versions:
        previous = by_number.get(version.version - 1)
        if previous is None and version.version > 1:
            try:
                previous = store.get(version.version - 1)
            except UnknownVersion:
                previous = None
        changes = diff(previous.thresholds, version.thresholds) if previous else []
        rows.append({"version": version, "changes": changes, "current": version.version == current.version})
    comparison = None
    if from_version is not None:
        try:
            left = store.get(from_version)
            right = store.get(to_version) if to_version is not None else current
            comparison = {"from": left, "to": right, "changes": diff(left.thresholds, right.thresholds)}
        except UnknownVersion as missing:
            problem = f"There is no version {missing.version}."
    return _page(
        "history.html",
        status_code,
        principal=principal,
        csrf=admin.auth.csrf_token(principal),
        rows=rows,
        current=current,
        comparison=comparison,
        notice=f"Rolled back: version {rolled} is in force." if rolled else None,
        problem=problem,
        display=_display,
        label=path_label,
        page="history",
    )


@router.post("/rollback")
async def rollback_page(request: Request) -> Response:
    principal = _principal(request)
    form = await _checked_form(request, principal)
    fields = form.fields
    admin = admin_context(request)
    if not principal.may("editor"):
        return _history_page(request, principal, problem="Your role may not roll back.", status_code=403)
    target = fields.get("version", "")
    reason = (fields.get("reason") or "").strip()
    base = _base_version(form)
    if not target.isdigit() or base is None or not 1 <= int(target) <= MAX_VERSION:
        return _history_page(request, principal, problem="Choose a version to roll back to.", status_code=422)
    if not reason:
        return _history_page(
            request, principal, problem="Not rolled back: say why (the reason is required).", status_code=422
        )
    try:
        saved = await run_in_threadpool(
            lambda: admin.store.rollback(
                int(target), expected_version=base, actor=principal.actor(), reason=reason[:MAX_REASON_LENGTH]
            )
        )
    except VersionConflict as conflict:
        return _history_page(
            request,
            principal,
            problem=f"Not rolled back: version {conflict.current} was saved meanwhile. Review it, try again.",
            status_code=409,
        )
    except NothingToSave:
        return _history_page(request, principal, problem="Nothing to do: those values are already in force.")
    except UnknownVersion:
        return _history_page(request, principal, problem=f"There is no version {target}.", status_code=404)
    return _redirect(f"/admin/history?rolled={saved.version}")


# --------------------------------------------------------------------------- audit


@router.get("/audit")
def audit_page(
    request: Request, before: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None
) -> Response:
    principal = _principal(request)
    admin = admin_context(request)
    items = entries(admin.database, limit=200, before_id=before)
    return _page(
        "audit.html",
        principal=principal,
        csrf=admin.auth.csrf_token(principal),
        entries=items,
        older=items[-1].id if len(items) == 200 else None,
        label=path_label,
        page="audit",
    )


# --------------------------------------------------------------------------- wiring


def install_admin(app: FastAPI, context: AdminContext) -> None:
    """The admin API, the page, its static files, and the handlers that answer their errors."""
    app.state.admin = context

    @app.exception_handler(AdminError)
    async def _admin_error(request: Request, error: AdminError) -> Response:
        if request.url.path.startswith("/admin/api/"):
            return Response(
                content=orjson.dumps(error.body()),
                status_code=error.status_code,
                media_type="application/json",
                headers={"Cache-Control": "no-store", **error.headers},
            )
        return _page("error.html", error.status_code, principal=None, problem=error.detail, page="error")

    @app.exception_handler(_NeedsLogin)
    async def _needs_login(request: Request, _: _NeedsLogin) -> Response:
        return _redirect("/admin/login")

    app.include_router(admin_api.router)
    app.include_router(router)
    app.mount("/admin/static", StaticFiles(directory=STATIC), name="admin-static")


@router.get("/analytics")
def analytics_page(
    request: Request,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    principal = _principal(request)
    admin = admin_context(request)
    period = analytics_period(start, end, datetime.now(UTC).date())
    return _page(
        "analytics.html",
        principal=principal,
        csrf=admin.auth.csrf_token(principal),
        rows=admin.rule_statistics(period),
        start=period.first.isoformat(),
        end=period.last.isoformat(),
        page="analytics",
    )
