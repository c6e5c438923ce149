"""The landing page at `/`: what this service is, and links to everything a person can open.

Only links to what this instance really serves: the playground and the API docs can be switched off
(production), so the page looks at the app's routes rather than at settings of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.routing import BaseRoute, Match

from cds_service.hooks.discovery import SERVICES_BY_ID
from cds_service.settings import Settings
from cds_service.web.api_docs import FAVICON

router = APIRouter(include_in_schema=False)
_templates = Environment(
    loader=PackageLoader("cds_service", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Link:
    path: str
    label: str
    what: str


CANDIDATES = (
    Link("/playground", "Playground", "pick a demo patient, order a vertebral augmentation, see the cards"),
    Link("/admin", "Admin", "thresholds, their history, the audit log and feedback analytics (sign-in)"),
    Link("/cds-services", "Discovery", "the CDS Hooks services this server offers (JSON)"),
    Link("/docs", "API docs", "every endpoint, interactive (Swagger UI)"),
    Link("/healthz", "Health", "liveness: the process answers"),
    Link("/readyz", "Readiness", "the database answers and thresholds are loaded"),
    Link("/metrics", "Metrics", "Prometheus exposition"),
)


def _served(routes: list[BaseRoute], path: str) -> bool:
    """Whether a GET of `path` reaches a route (included routers are matched, not listed, by path)."""
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    return any(route.matches(scope)[0] == Match.FULL for route in routes)


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """Browsers ask every page's origin for one; FastAPI's icon, from the same wheel as the docs assets."""
    return FileResponse(FAVICON, media_type="image/png")


@router.get("/", response_class=HTMLResponse)
def landing(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    links = [link for link in CANDIDATES if _served(request.app.routes, link.path)]
    html = _templates.get_template("landing.html").render(
        links=links,
        services=list(SERVICES_BY_ID.values()),
        profile=settings.profile,
        version=request.app.version,
    )
    return HTMLResponse(html)
