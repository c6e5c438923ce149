"""One middleware times every HTTP request: a structured log line for each, and the hook metrics.

The log line has the method, the route *template* (`/cds-services/{service_id}`), the status, the time
and the hookInstance. Never the path as sent, nor the query string or headers: a caller may put a patient
id or a token in those. `hook_instance` is set by the hook route (as a validated UUID) so that a 412 or
400 can be matched with the EHR's own logs.

`POST /cds-services/{id}` also feeds `vcds_hook_latency_seconds` and `vcds_hook_responses_total`,
labelled by known service ids only (an unknown id is not counted, so a scanner cannot blow up the label
set). One clock and one status hook serve both, so the log and the metrics agree on every call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service.web import metrics

log = logging.getLogger("vertebral_cds.http")


class RequestTimingMiddleware:
    def __init__(self, app: ASGIApp, service_ids: Iterable[str]) -> None:
        self.app = app
        self.hook_paths = {f"/cds-services/{service_id}": service_id for service_id in service_ids}

    def _hook_service(self, scope: Scope) -> str | None:
        if scope["method"] != "POST" or not scope["path"].startswith("/cds-services/"):
            return None
        return self.hook_paths.get(scope["path"].rstrip("/"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            seconds = time.perf_counter() - started
            service = self._hook_service(scope)
            if service is not None:
                metrics.HOOK_LATENCY.labels(service=service).observe(seconds)
                metrics.HOOK_RESPONSES.labels(service=service, status=str(status)).inc()
            route = scope.get("route")
            extra: dict[str, object] = {
                "method": scope.get("method"),
                "path": getattr(route, "path", "(no route)"),
                "status": status,
                "total_ms": round(seconds * 1000, 1),
            }
            hook_instance = (scope.get("state") or {}).get("hook_instance")
            if hook_instance:
                extra["hook_instance"] = hook_instance
            log.info("request", extra=extra)
