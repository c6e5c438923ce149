"""Security headers on every response; the page-only ones on HTML (admin pages, API docs).

`X-Content-Type-Options: nosniff` goes everywhere. HTML also gets a strict Content-Security-Policy,
`X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`; HSTS is added when the request came over
https (directly, through a trusted proxy, or per the public base URL). The interactive API docs load
Swagger UI / ReDoc from their CDN with an inline start-up script, so they get a looser policy.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (  # Swagger UI from the service itself (api_docs.py); their start-up script is inline
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeadersMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        always_https: bool = False,
        docs_paths: Iterable[str] = ("/docs",),
    ) -> None:
        self.app = app
        self.always_https = always_https
        self.docs_paths = tuple(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = self.always_https or scope.get("scheme") == "https"
        path: str = scope.get("path", "")
        docs = any(path == p or path.startswith(p + "/") for p in self.docs_paths)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", DOCS_CSP if docs else PAGE_CSP)
                    headers.setdefault("X-Frame-Options", "DENY")
                    headers.setdefault("Referrer-Policy", "no-referrer")
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
