"""Fetch what prefetch did not bring, from the EHR's FHIR server: all queries at once, bounded.

Each query runs in its own thread from a shared pool (so five missing keys cost about one round
trip), follows `next` links on the same server only, stops at a page cap and a response-size cap,
and the whole fetch has one deadline. The access token goes in the Authorization header and
nowhere else: it is never logged or stored.

The requests go through urllib3's connection pools directly: `requests` on top of it cost about
0.7 ms of CPU per request, and the queries of one call take turns on the GIL, so that overhead added
up to several milliseconds per call without prefetch (`python -m bench`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import urllib3
from urllib3.exceptions import (
    HTTPError,
    NewConnectionError,
    ProtocolError,
)
from urllib3.exceptions import (
    TimeoutError as Urllib3Timeout,
)

JsonObject = dict[str, Any]
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "vertebral-cds"


class FetchFailed(Exception):
    """A query that gave no usable answer; the message is safe to show (no token, no patient id)."""


@dataclass(frozen=True)
class FetchLimits:
    request_timeout_seconds: float
    deadline_seconds: float
    max_pages: int
    max_response_bytes: int


@dataclass
class FetchResult:
    key: str
    resources: list[JsonObject] = field(default_factory=list)
    error: str | None = None
    pages: int = 0
    elapsed_ms: float = 0.0


def same_origin(a: str, b: str) -> bool:
    left, right = urlsplit(a), urlsplit(b)
    return (left.scheme, left.netloc) == (right.scheme, right.netloc)


class FhirFetcher:
    """One per app: a thread pool and a pooled HTTP session per thread."""

    def __init__(self, limits: FetchLimits, workers: int) -> None:
        self.limits = limits
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fhir-fetch")
        # One keep-alive pool per server, as many connections as fetch threads; no retries, no
        # redirects (a redirect is refused, see `_get`).
        self._http = urllib3.PoolManager(num_pools=8, maxsize=workers, block=False, retries=False)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._http.clear()

    def fetch_all(
        self, base_url: str, queries: Mapping[str, str], token: str | None
    ) -> dict[str, FetchResult]:
        """Run every query in parallel; a query still running at the deadline is reported as failed."""
        started = time.monotonic()
        deadline = started + self.limits.deadline_seconds
        futures: dict[str, Future[FetchResult]] = {
            key: self._pool.submit(self._fetch_one, key, base_url, query, token, deadline)
            for key, query in queries.items()
        }
        results: dict[str, FetchResult] = {}
        give_up_at = deadline + 0.25  # one grace period for all queries, not one each
        for key, future in futures.items():
            remaining = max(0.0, give_up_at - time.monotonic())
            try:
                results[key] = future.result(timeout=remaining)
            except FutureTimeout:
                future.cancel()
                results[key] = FetchResult(key=key, error="no answer before the fetch deadline")
        for result in results.values():
            if not result.elapsed_ms:
                result.elapsed_ms = (time.monotonic() - started) * 1000
        return results

    def _fetch_one(
        self, key: str, base_url: str, query: str, token: str | None, deadline: float
    ) -> FetchResult:
        started = time.monotonic()
        result = FetchResult(key=key)
        url: str | None = urljoin(base_url.rstrip("/") + "/", query)
        try:
            while url is not None:
                if result.pages >= self.limits.max_pages:
                    raise FetchFailed(f"more than {self.limits.max_pages} pages")
                body = self._get(url, token, deadline)
                result.pages += 1
                url = self._collect(body, base_url, result.resources)
        except FetchFailed as error:
            result.error = str(error)
        result.elapsed_ms = (time.monotonic() - started) * 1000
        return result

    def _get(self, url: str, token: str | None, deadline: float) -> JsonObject:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchFailed("fetch deadline passed")
        timeout = min(self.limits.request_timeout_seconds, remaining)
        headers = {
            "Accept": "application/fhir+json, application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": _USER_AGENT,
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._http.request(
                "GET",
                url,
                headers=headers,
                timeout=urllib3.Timeout(connect=min(timeout, 3.0), read=timeout),
                preload_content=False,
                redirect=False,
                retries=False,
            )
        except NewConnectionError as error:  # a ConnectTimeoutError by inheritance, but not a timeout
            raise FetchFailed("FHIR server unreachable (connection refused or no route)") from error
        except Urllib3Timeout as error:
            raise FetchFailed("FHIR server did not answer in time") from error
        except (HTTPError, OSError) as error:
            raise FetchFailed(f"FHIR server unreachable ({type(error).__name__})") from error
        complete = False
        try:
            if response.status in _REDIRECTS:
                raise FetchFailed(f"FHIR server answered a redirect ({response.status}); not followed")
            if response.status == 404:
                return {}
            if response.status != 200:
                raise FetchFailed(f"FHIR server answered HTTP {response.status}")
            content = self._read_capped(response, deadline)
            complete = True
        except Urllib3Timeout as error:
            raise FetchFailed("FHIR server did not answer in time") from error
        except (ProtocolError, HTTPError, OSError) as error:  # the connection broke while reading
            raise FetchFailed(f"FHIR server connection failed ({type(error).__name__})") from error
        finally:
            if complete:
                response.release_conn()  # read to the end: the connection goes back to the pool
            else:
                response.close()  # unread data on it: never reused
        try:
            parsed = orjson.loads(content)
        except orjson.JSONDecodeError as error:
            raise FetchFailed("FHIR server answered malformed JSON") from error
        if not isinstance(parsed, dict):
            raise FetchFailed("FHIR server answered JSON that is not a resource")
        return parsed

    def _read_capped(self, response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
        """Read what arrives, checking size and deadline after every read: a server that trickles one
        byte at a time never trips a per-read timeout, and must not keep a pool thread past the deadline."""
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk: bytes = response.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > self.limits.max_response_bytes:
                raise FetchFailed(f"FHIR response larger than {self.limits.max_response_bytes} bytes")
            if time.monotonic() > deadline:
                raise FetchFailed("fetch deadline passed while reading")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _collect(body: JsonObject, base_url: str, into: list[JsonObject]) -> str | None:
        """Add the page's resources; return the next page's URL, if it is on the same server."""
        resource_type = body.get("resourceType")
        if not body:
            return None
        if resource_type == "OperationOutcome":
            raise FetchFailed("FHIR server answered an OperationOutcome")
        if resource_type != "Bundle":
            into.append(body)
            return None
        for entry in body.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict):
                into.append(resource)
        for link in body.get("link") or []:
            url = link.get("url") if isinstance(link, dict) else None
            if isinstance(url, str) and link.get("relation") == "next":
                next_url = urljoin(base_url.rstrip("/") + "/", url)
                if not same_origin(next_url, base_url):
                    raise FetchFailed("next link points to another server; not followed")
                return next_url
        return None
