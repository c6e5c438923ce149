"""The app factory: `create_app(settings)` wires every dependency in one place.

Run with `uvicorn --factory cds_service.app:create_app` or `vertebral-cds serve`.
"""

from __future__ import annotations

import gc
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from cds_service.admin.context import AdminContext
from cds_service.admin.thresholds_source import StaticThresholds
from cds_service.admin.thresholds_store import ThresholdsStore
from cds_service.hooks.answer_cache import AnswerCache
from cds_service.hooks.discovery import SERVICES_BY_ID, prefetch_keys
from cds_service.hooks.fhir_client import FetchLimits, FhirFetcher
from cds_service.hooks.flow import Clock, HookFlow, IdFactory
from cds_service.hooks.mapping_cache import MappingCache
from cds_service.routes import cds_hooks, health, landing
from cds_service.routes.admin_pages import install_admin
from cds_service.routes.playground import install_playground
from cds_service.settings import Settings, load_settings
from cds_service.storage.database import Database, migrate
from cds_service.storage.records import load_or_create_hash_key, purge_older_than
from cds_service.storage.writer import EvaluationWriter
from cds_service.trust.client_auth import build_client_authenticator
from cds_service.web.api_docs import install_api_docs
from cds_service.web.errors import ServiceError, UnexpectedErrorMiddleware
from cds_service.web.logging_setup import configure_logging
from cds_service.web.request_timing import RequestTimingMiddleware
from cds_service.web.responses import FHIR_JSON, json_response, outcome_response
from cds_service.web.security_headers import SecurityHeadersMiddleware
from cds_service.web.url_policy import UrlPolicy
from fhir_mappings.codesets import default_codesets, load_codesets
from fhir_mappings.parsing import warm_up

log = logging.getLogger("vertebral_cds.app")
STATIC = Path(__file__).resolve().parent / "static"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, error: ServiceError) -> Response:
        if error.status_code == 401:  # bare 401: no details for an untrusted caller
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return json_response(error.outcome(), error.status_code, media_type=FHIR_JSON)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported"}.get(error.status_code, "processing")
        return outcome_response(error.status_code, code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, error: RequestValidationError) -> Response:
        return outcome_response(400, "invalid", "Invalid request parameters")


def new_card_id() -> str:
    """A random (version 4) UUID for a card or suggestion."""
    return str(uuid.uuid4())


def utc_now() -> datetime:
    return datetime.now(UTC)


class CorsOutsideAdmin:
    """CORS (`VCDS_CORS_ORIGINS`) for the CDS Hooks routes, which browser clients such as the sandbox call;
    the admin area never answers CORS: no Access-Control-* header, a preflight is refused there."""

    def __init__(self, app: ASGIApp, /, **options: Any) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/admin" or path.startswith("/admin/"):
            await self.app(scope, receive, send)
        else:
            await self.cors(scope, receive, send)


STARTUP_WARNINGS_LOGGED = "VERTEBRAL_CDS_STARTUP_WARNINGS_LOGGED"
"""Set by `vertebral-cds serve` once its own start-up check has logged the warnings (cli.py), so that the
server process and each worker do not repeat them."""


@contextmanager
def _startup_warnings_logged_by_the_parent() -> Iterator[None]:
    trust_log = logging.getLogger("vertebral_cds.trust")
    if os.environ.get(STARTUP_WARNINGS_LOGGED) != "1":
        yield
        return
    level = trust_log.level
    trust_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        trust_log.setLevel(level)


def create_app(
    settings: Settings | None = None, *, clock: Clock = utc_now, new_id: IdFactory = new_card_id
) -> FastAPI:
    """The service. `clock` (what "today" is for the rules) and `new_id` (card and suggestion ids) are
    parameters so that tests can fix them; the defaults are the wall clock and random UUIDs."""
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    with _startup_warnings_logged_by_the_parent():
        client_auth = build_client_authenticator(settings)
    codesets = load_codesets(Path(settings.codesets_dir)) if settings.codesets_dir else default_codesets()
    warm_up()
    database = Database(settings.database_url)
    migrate(database.engine)
    if settings.evaluation_retention_days:
        purge_older_than(database, datetime.now(UTC) - timedelta(days=settings.evaluation_retention_days))
    fetcher = FhirFetcher(
        FetchLimits(
            request_timeout_seconds=settings.fhir_request_timeout_seconds,
            deadline_seconds=settings.fetch_deadline_seconds,
            max_pages=settings.fetch_max_pages,
            max_response_bytes=settings.fetch_max_response_bytes,
        ),
        workers=settings.fetch_workers,
        policy=UrlPolicy.from_list(settings.allowed_fhir_servers),
    )
    data_dir = (
        Path(settings.database_url.split("///", 1)[-1]).parent
        if settings.database_url.startswith("sqlite:///")
        else Path("var")
    )
    # The file (or the defaults) seeds version 1 of an empty store; after that the database decides.
    store = ThresholdsStore(database, refresh_seconds=settings.thresholds_refresh_seconds)
    StaticThresholds.from_file(settings.thresholds_file).seed(store)
    flow = HookFlow(
        codesets=codesets,
        prefetch=prefetch_keys(codesets),
        fetcher=fetcher,
        database=database,
        thresholds=store.current,
        hash_key=load_or_create_hash_key(settings.patient_hash_key, data_dir / "patient-hash.key"),
        clock=clock,
        new_id=new_id,
        demo_imaging_stand_in=settings.demo_imaging_stand_in,
        sign_system_actions=settings.sign_system_actions,
        mapping_cache=MappingCache(codesets, settings.mapping_cache_entries, settings.mapping_cache_seconds),
        writer=EvaluationWriter(database),
        answer_cache=AnswerCache(settings.answer_cache_entries, settings.answer_cache_seconds),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # What start-up loaded (models, code sets, the app) lives as long as the worker: out of the
        # cyclic GC's full collections, which otherwise walk it every few calls (`python -m bench`).
        gc.freeze()
        yield
        gc.unfreeze()
        fetcher.close()
        if flow.writer is not None:
            flow.writer.close()  # the rows still queued are written before the database closes
        database.dispose()

    docs = settings.docs_served  # off in production unless VCDS_API_DOCS_ENABLED
    app = FastAPI(
        title="vertebral-cds",
        version="0.1.0",
        description="CDS Hooks 2.0 service for vertebral augmentation orders.",
        lifespan=lifespan,
        docs_url=None,  # installed below from local assets (api_docs.py), when docs are served
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.settings = settings
    app.state.codesets = codesets
    app.state.database = database
    app.state.flow = flow
    app.state.client_auth = client_auth
    # Innermost: every middleware outside sees an unexpected error as the 500 it is answered with.
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(
        CorsOutsideAdmin,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization"],
        max_age=600,
    )
    app.add_middleware(
        SecurityHeadersMiddleware,
        always_https=bool(settings.public_base_url and settings.public_base_url.startswith("https://")),
    )
    app.add_middleware(RequestTimingMiddleware, service_ids=SERVICES_BY_ID)
    _install_error_handlers(app)
    app.include_router(cds_hooks.router)
    app.include_router(health.router)
    install_admin(app, AdminContext.build(settings, store, flow, database))
    install_playground(app, settings)
    if docs:
        install_api_docs(app)
    app.include_router(landing.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
