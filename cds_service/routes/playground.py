"""The playground at /playground: try the service as a clinician would, through its real endpoints.

Pick a demo patient (or paste a FHIR Bundle), build an order, fire order-select or order-sign. The page
asks `POST /playground/api/request` for the hook request an EHR would send (`demo.hook_request`), then
posts it itself to `/cds-services/{id}` with fetch(), renders the cards as an EHR does, and sends real
feedback to `/cds-services/{id}/feedback` when a suggestion is accepted or a card dismissed. Nothing
here decides anything: the helper endpoints only read demo files and build request bodies.

On by default in dev and sandbox, off in production (`VCDS_PLAYGROUND_ENABLED`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

from cds_service.hooks.discovery import SELECT_SERVICE_ID, SIGN_SERVICE_ID
from cds_service.hooks.flow import HookFlow
from cds_service.playground import demo
from cds_service.routes.cds_hooks import read_json_body
from cds_service.settings import Settings
from cds_service.trust.client_auth import ClientAuthenticator
from cds_service.web.errors import BadRequest, NotFound
from cds_service.web.responses import json_response

router = APIRouter(prefix="/playground", include_in_schema=False)
STATIC = Path(__file__).resolve().parents[1] / "static"
SERVICE_FOR_HOOK = {"order-select": SELECT_SERVICE_ID, "order-sign": SIGN_SERVICE_ID}
_templates = Environment(
    loader=PackageLoader("cds_service", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def playground_enabled(settings: Settings) -> bool:
    if settings.playground_enabled is not None:
        return settings.playground_enabled
    return settings.profile != "production"


def _today(request: Request) -> date:
    """The service's own clock (fixed in tests), so demo dates and the decision agree."""
    flow: HookFlow = request.app.state.flow
    return flow.clock().date()


@router.get("", response_class=HTMLResponse)
def page(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    auth: ClientAuthenticator = request.app.state.client_auth
    today = _today(request)
    config = {
        "patients": [p.as_json(today) for p in demo.DEMO_PATIENTS],
        "services": SERVICE_FOR_HOOK,
        "levels": list(demo.SPINE_LEVELS),
        "today": today.isoformat(),
        "jwtRequired": auth.required,
        "demoImagingStandIn": settings.demo_imaging_stand_in,
    }
    html = _templates.get_template("playground.html").render(
        config=config, profile=settings.profile, jwt_required=auth.required
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/api/patients")
def patients(request: Request) -> Response:
    today = _today(request)
    return json_response({"patients": [p.as_json(today) for p in demo.DEMO_PATIENTS]})


@router.get("/api/patients/{patient_id}")
def patient_bundle(patient_id: str, request: Request) -> Response:
    """The demo patient's Bundle, its dates moved to today."""
    found = demo.DEMO_PATIENTS_BY_ID.get(patient_id)
    if found is None:
        raise NotFound(f"No demo patient {patient_id!r}")
    return json_response(found.bundle(_today(request)))


def _patient_banner(patient: dict[str, Any]) -> dict[str, Any]:
    names = patient.get("name") if isinstance(patient.get("name"), list) else []
    first = names[0] if names and isinstance(names[0], dict) else {}
    given = " ".join(g for g in first.get("given", []) if isinstance(g, str))
    family = first.get("family") if isinstance(first.get("family"), str) else ""
    banner = {"id": patient["id"], "name": f"{given} {family}".strip() or first.get("text") or patient["id"]}
    for name in ("gender", "birthDate"):
        if isinstance(patient.get(name), str):
            banner[name] = patient[name]
    return banner


@router.post("/api/request")
async def build_request(request: Request) -> Response:
    """The hook request an EHR would send for `{bundle, order: {procedure, levels, planned}, hook}`."""
    body = await read_json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Send {bundle, order, hook}")
    given = body.get("order")
    order: dict[str, Any] = given if isinstance(given, dict) else {}
    hook = str(body.get("hook", "order-select"))
    flow: HookFlow = request.app.state.flow
    try:
        record = demo.read_bundle(body.get("bundle"))
        levels = order.get("levels")
        planned = order.get("planned")
        spec = demo.OrderSpec(
            procedure=order.get("procedure"),  # type: ignore[arg-type]  # checked by OrderSpec
            levels=demo.parse_levels(
                [str(v) for v in levels] if isinstance(levels, list) else str(levels or "")
            ),
            planned=demo.parse_planned_date(planned if isinstance(planned, str) else None),
        )
        hook_request = demo.hook_request(record, spec, hook, flow.prefetch, flow.codesets)
    except demo.DemoError as error:
        raise BadRequest(str(error)) from error
    service = SERVICE_FOR_HOOK[hook]
    return json_response(
        {
            "service": service,
            "path": f"/cds-services/{service}",
            "request": hook_request,
            "patient": _patient_banner(record.patient),
            "skipped": dict(record.skipped),
        }
    )


def install_playground(app: FastAPI, settings: Settings) -> None:
    """The page, its helper API and its static files, when the playground is enabled."""
    if not playground_enabled(settings):
        return
    app.include_router(router)
    app.mount("/playground/static", StaticFiles(directory=STATIC), name="playground-static")
