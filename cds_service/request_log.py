"""One structured log line per HTTP request: method, route template, status, time, hookInstance.

The route *template* is logged (`/cds-services/{service_id}`), never the path as sent, nor the query
string or headers: a caller may put a patient id or a token in those. `hook_instance` is set by the
hook route (as a validated UUID) so that a 412 or 400 can be matched with the EHR's own logs.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("vertebral_cds.http")


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            route = scope.get("route")
            extra: dict[str, object] = {
                "method": scope.get("method"),
                "path": getattr(route, "path", "(no route)"),
                "status": status,
                "total_ms": round((time.perf_counter() - started) * 1000, 1),
            }
            hook_instance = (scope.get("state") or {}).get("hook_instance")
            if hook_instance:
                extra["hook_instance"] = hook_instance
            log.info("request", extra=extra)
