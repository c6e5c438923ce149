"""A misbehaving FHIR server on 127.0.0.1 for fault tests: slow, failing, malformed, endless, huge.

`BadFhirServer().base(mode)` is a FHIR base URL whose every request misbehaves one way (see MODES).
The server runs in daemon threads, binds 127.0.0.1 only, and stops at the end of its `with` block:
sleeping and dripping handlers wake up then, so nothing outlives the test.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

SLOW_SECONDS = 8.0
HUGE_BYTES = 400_000

MODES = {
    "slow": f"answers after {SLOW_SECONDS:g} s",
    "error500": "HTTP 500 with an OperationOutcome",
    "unauthorized": "HTTP 401",
    "malformed": "a truncated JSON body",
    "not-an-object": "a JSON array instead of a resource",
    "wrong-types": "Bundles of Patient and Practitioner resources, whatever was asked",
    "outcome": "HTTP 200 with an OperationOutcome",
    "endless-next": "every page links a next page",
    "next-elsewhere": "a next link to another server",
    "redirect": "HTTP 302 to another server",
    "huge": f"a {HUGE_BYTES}-byte Bundle",
    "drip": "headers, then one byte every 0.1 s",
    "hang-up": "closes the connection without answering",
}


def _bundle(resources: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


class BadFhirServer:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def root(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def base(self, mode: str) -> str:
        if mode not in MODES:
            raise ValueError(mode)
        return f"{self.root}/{mode}/fhir"

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        mode = handler.path.split("/")[1]
        self.requests[mode] += 1
        if mode == "hang-up":
            handler.close_connection = True
            return
        if mode == "slow":
            self._stopping.wait(SLOW_SECONDS)
            return self._json(handler, 200, _bundle([]))
        if mode == "error500":
            outcome = {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "exception"}],
            }
            return self._json(handler, 500, outcome)
        if mode == "unauthorized":
            return self._json(handler, 401, {})
        if mode == "malformed":
            return self._raw(handler, 200, b'{"resourceType": "Bundle", "entry": [{"resource": ')
        if mode == "not-an-object":
            return self._json(handler, 200, [1, 2, 3])
        if mode == "wrong-types":
            strays = [
                {"resourceType": "Patient", "id": "someone-else"},
                {"resourceType": "Practitioner", "id": "dr"},
            ]
            return self._json(handler, 200, _bundle(strays))
        if mode == "outcome":
            return self._json(handler, 200, {"resourceType": "OperationOutcome", "issue": []})
        if mode == "endless-next":
            page = self.requests[mode]
            return self._json(handler, 200, _bundle([], f"{self.base(mode)}/Condition?page={page + 1}"))
        if mode == "next-elsewhere":
            return self._json(handler, 200, _bundle([], "http://127.0.0.2:9/fhir/Condition?page=2"))
        if mode == "redirect":
            handler.send_response(302)
            handler.send_header("Location", "http://127.0.0.2:9/fhir/Condition")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return None
        if mode == "huge":
            padding = "x" * HUGE_BYTES
            return self._json(
                handler, 200, _bundle([{"resourceType": "Condition", "id": "c", "note": [{"text": padding}]}])
            )
        if mode == "drip":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/fhir+json")
            handler.send_header("Content-Length", "100000")
            handler.end_headers()
            for _ in range(600):  # at most 60 s, and only until the server stops
                if self._stopping.wait(0.1):
                    return None
                handler.wfile.write(b" ")
                handler.wfile.flush()
            return None
        return self._json(handler, 404, {})

    @staticmethod
    def _json(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        BadFhirServer._raw(handler, status, json.dumps(body).encode())

    @staticmethod
    def _raw(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/fhir+json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def __enter__(self) -> Self:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # the service hanging up on us is the point of some modes
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    owner._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the service opens one connection per query, all at once
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping.set()
        assert self._server is not None
        assert self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
