"""Fetch what prefetch did not bring, from the EHR's FHIR server: all queries at once, bounded.

Each query runs in its own thread from a shared pool (so five missing keys cost about one round
trip), follows `next` links under the request's `fhirServer` only, stops at a page cap and a
response-size cap, and the whole fetch has one deadline. Every URL — the base, each query, each
paging link — passes the URL policy (`url_policy.py`) before the one outgoing client
(`outgoing.py`) sends it; the access token goes in the Authorization header of URLs under
`fhirServer` and nowhere else: it is never logged or stored.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import orjson

from cds_service.web.outgoing import OutgoingClient, OutgoingFailed, TooSlow
from cds_service.web.url_policy import Target, UrlPolicy, UrlRefused, token_applies

JsonObject = dict[str, Any]
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


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


class FhirFetcher:
    """One per app: a thread pool, the outgoing client, and the URL policy every request passes."""

    def __init__(
        self,
        limits: FetchLimits,
        workers: int,
        policy: UrlPolicy | None = None,
        client: OutgoingClient | None = None,
    ) -> None:
        self.limits = limits
        self.policy = policy or UrlPolicy()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fhir-fetch")
        self._own_client = client is None
        self.client = client or OutgoingClient(pool_size=workers)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._own_client:
            self.client.close()

    def fetch_all(
        self,
        base_url: str | Target,
        queries: Mapping[str, str],
        token: str | None,
        deadline: float | None = None,
    ) -> dict[str, FetchResult]:
        """Run every query in parallel; a query still running at the deadline is reported as failed.
        `deadline` (monotonic): the caller's, when sooner than the fetch deadline. `base_url` that the
        policy refuses raises `UrlRefused`."""
        base = base_url if isinstance(base_url, Target) else self.policy.fhir_base(base_url)
        started = time.monotonic()
        own = started + self.limits.deadline_seconds
        deadline = min(own, deadline) if deadline is not None else own
        futures: dict[str, Future[FetchResult]] = {
            key: self._pool.submit(self._fetch_one, key, base, query, token, deadline)
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
        self, key: str, base: Target, query: str, token: str | None, deadline: float
    ) -> FetchResult:
        started = time.monotonic()
        result = FetchResult(key=key)
        link: str | None = query
        try:
            while link is not None:
                if result.pages >= self.limits.max_pages:
                    raise FetchFailed(f"more than {self.limits.max_pages} pages")
                try:
                    target = self.policy.fhir_url(link, base)
                except UrlRefused as error:
                    what = "query" if result.pages == 0 else "next link"
                    raise FetchFailed(f"{what} refused by the URL policy ({error}); not followed") from error
                body = self._get(target, token if token_applies(target, base) else None, deadline)
                result.pages += 1
                link = self._collect(body, result.resources)
        except FetchFailed as error:
            result.error = str(error)
        result.elapsed_ms = (time.monotonic() - started) * 1000
        return result

    def _get(self, target: Target, token: str | None, deadline: float) -> JsonObject:
        headers = {"Accept": "application/fhir+json, application/json", "Accept-Encoding": "gzip, deflate"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            answer = self.client.get(
                target,
                headers=headers,
                timeout=self.limits.request_timeout_seconds,
                deadline=deadline,
                max_bytes=self.limits.max_response_bytes,
            )
        except TooSlow as error:
            raise FetchFailed(f"FHIR server did not answer in time ({error})") from error
        except OutgoingFailed as error:
            raise FetchFailed(f"FHIR server: {error}") from error
        if answer.status in _REDIRECTS:
            raise FetchFailed(f"FHIR server answered a redirect ({answer.status}); not followed")
        if answer.status == 404:
            return {}
        if answer.status != 200:
            raise FetchFailed(f"FHIR server answered HTTP {answer.status}")
        try:
            parsed = orjson.loads(answer.body)
        except orjson.JSONDecodeError as error:
            raise FetchFailed("FHIR server answered malformed JSON") from error
        if not isinstance(parsed, dict):
            raise FetchFailed("FHIR server answered JSON that is not a resource")
        return parsed

    @staticmethod
    def _collect(body: JsonObject, into: list[JsonObject]) -> str | None:
        """Add the page's resources; return the page's `next` link as written (the policy resolves it).
        Any JSON type at any place is tolerated: what is not a resource is skipped."""
        if not body:
            return None
        resource_type = body.get("resourceType")
        if resource_type == "OperationOutcome":
            raise FetchFailed("FHIR server answered an OperationOutcome")
        if resource_type != "Bundle":
            into.append(body)
            return None
        entries = body.get("entry")
        for entry in entries if isinstance(entries, list) else ():
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict):
                into.append(resource)
        return next_link(body)


def next_link(bundle: JsonObject) -> str | None:
    """The `next` link of a Bundle as written, whatever the JSON types around it."""
    links = bundle.get("link")
    for link in links if isinstance(links, list) else ():
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) else None
    return None
