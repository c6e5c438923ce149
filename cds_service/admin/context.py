"""What the admin API and page share: their dependencies in one object, their errors, and who is asking."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request

from cds_service.admin import audit
from cds_service.admin import sessions as admin_sessions
from cds_service.admin.analytics import Period, RuleStatistics, rule_statistics
from cds_service.admin.audit import Actor
from cds_service.admin.auth import AdminAuth, Principal, Role
from cds_service.admin.rate_limit import RateLimiter
from cds_service.admin.thresholds_store import ThresholdsStore
from cds_service.admin.what_if import SavedCase, saved_cases
from cds_service.hooks.flow import HookFlow
from cds_service.settings import Settings
from cds_service.storage.database import Database

FAILED_LOGINS_ALLOWED = 5
FAILED_LOGIN_WINDOW_SECONDS = 300


class AdminError(Exception):
    """An admin API failure: a status, a message, and per-field errors for 422."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.detail, **self.extra}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


@dataclass
class AdminContext:
    auth: AdminAuth
    limiter: RateLimiter
    """Failed logins per client address."""
    store: ThresholdsStore
    flow: HookFlow
    database: Database
    cases_dir: str | None = None
    https_only_cookies: bool = False
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _cases: list[SavedCase] | None = field(default=None, init=False, repr=False)
    _cases_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def build(
        cls, settings: Settings, store: ThresholdsStore, flow: HookFlow, database: Database
    ) -> AdminContext:
        return cls(
            auth=AdminAuth.from_settings(settings),
            limiter=RateLimiter(
                max_events=FAILED_LOGINS_ALLOWED,
                per_seconds=FAILED_LOGIN_WINDOW_SECONDS,
                # Redis when the workers share one (as for the replay cache), so they count together.
                storage_uri=settings.redis_url.get_secret_value() if settings.redis_url else "memory://",
            ),
            store=store,
            flow=flow,
            database=database,
            cases_dir=settings.what_if_cases_dir,
            https_only_cookies=bool(
                settings.public_base_url and settings.public_base_url.startswith("https")
            ),
        )

    def saved_cases(self) -> list[SavedCase]:
        """Read once per process, on the first preview."""
        with self._cases_lock:
            if self._cases is None:
                self._cases = saved_cases(self.flow.prefetch, self.cases_dir)
            return self._cases

    def rule_statistics(self, period: Period) -> list[RuleStatistics]:
        """Feedback analytics for the period, this worker's latest calls included (their rows may still
        be queued for the writer thread)."""
        self.flow.flush_records()
        return rule_statistics(self.database, period)

    def session(self, cookie: str | None) -> Principal | None:
        """The principal of a session cookie: signed, unexpired, and not ended by a logout on any
        worker (one indexed read; the admin area is low traffic)."""
        principal = self.auth.read_session(cookie)
        if principal is None or admin_sessions.is_revoked(self.database, principal):
            return None
        return principal

    def end_session(self, principal: Principal) -> None:
        admin_sessions.revoke(self.database, principal, self.clock())

    def audit(self, actor: Actor, action: str, detail: dict[str, Any]) -> None:
        audit.record_now(self.database, actor, action, detail, self.clock())

    def failed_login(self, client: str, via: str, name: str | None = None) -> None:
        self.limiter.hit(client)
        detail: dict[str, Any] = {"via": via, "client": client}
        self.audit(Actor(name or "unknown", None), "login-failed", detail)


def admin_context(request: Request) -> AdminContext:
    context: AdminContext = request.app.state.admin
    return context


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _closed() -> AdminError:
    return AdminError(503, "The admin area is closed on this server: set VCDS_ADMIN_TOKEN to open it.")


def _api_principal(request: Request) -> Principal:
    context = admin_context(request)
    if not context.auth.enabled:
        raise _closed()
    client = client_address(request)
    wait = context.limiter.retry_after(client)
    if wait > 0:
        raise AdminError(
            429,
            "Too many failed logins from this address; try again later.",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    token = bearer_token(request)
    if token is None:
        raise AdminError(
            401,
            "Send an admin token: Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": 'Bearer realm="vertebral-cds admin"'},
        )
    role = context.auth.role_for(token)
    if role is None:
        context.failed_login(client, "bearer")
        raise AdminError(
            401,
            "That admin token is not valid.",
            headers={"WWW-Authenticate": 'Bearer realm="vertebral-cds admin", error="invalid_token"'},
        )
    context.limiter.reset(client)
    return Principal(name=f"api-{role}", role=role, via="bearer")


def _require(role: Role) -> Callable[[Request], Principal]:
    def dependency(request: Request) -> Principal:
        principal = _api_principal(request)
        if not principal.may(role):
            raise AdminError(403, f"This needs the {role} role; your token is a {principal.role}'s.")
        return principal

    return dependency


Viewer = Annotated[Principal, Depends(_require("viewer"))]
Editor = Annotated[Principal, Depends(_require("editor"))]
Admin = Annotated[AdminContext, Depends(admin_context)]
