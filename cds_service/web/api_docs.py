"""The interactive API docs (/docs, Swagger UI) from assets the service serves itself.

FastAPI's defaults load Swagger UI and ReDoc from a CDN, so the pages are blank on a machine without
internet (issue 17). The `fastapi-offline` wheel ships those same assets; they are served under
/docs/static and the page points there (no remote favicon). ReDoc is left out: its sidebar still loads
a logo from its CDN, and Swagger UI shows the same OpenAPI document. Whether the docs are on at all is
the app factory's decision: this module only installs them when asked.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
ASSETS_PATH = "/docs/static"
FAVICON = ASSETS / "favicon.png"


def install_api_docs(app: FastAPI, docs_url: str = "/docs") -> None:
    """Swagger UI at `docs_url`, every asset from this service."""
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} API"
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="api-docs-static")

    @app.get(docs_url, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        )
