"""A small HTTP load generator: N keep-alive connections on 127.0.0.1, each sending one request after
another, for a bounded time and a bounded number of requests.

It is asyncio (uvloop when installed) over raw sockets with the request bytes built once, so that the
client costs far less per request than the server it measures; `client_cpu_ms` says how much it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

LOCALHOST = "127.0.0.1"
STAGGER_SECONDS = 0.010


class LoadError(RuntimeError):
    """The server answered something other than 200, closed the connection, or did not answer in time."""


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    client_cpu_ms: float = 0.0
    first_error: str | None = None

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def p99(self) -> float:
        return self.percentile(0.99)

    def add(self, other: LoadResult) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.seconds += other.seconds
        self.latencies_ms += other.latencies_ms
        self.client_cpu_ms += other.client_cpu_ms
        self.first_error = self.first_error or other.first_error


def request_bytes(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {LOCALHOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise LoadError("chunked responses are not supported by this client")
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _connection(
    index: int, port: int, payload: bytes, window: tuple[float, float], budget: list[int], result: LoadResult
) -> None:
    """One keep-alive connection. Connections open one after another, each sending at once, so that with
    several worker processes each busy worker leaves the next connection to an idle one, as connections
    that arrive over time are spread in practice (a burst would all land on the worker that wakes first)."""
    record_from, stop_at = window
    await asyncio.sleep(index * STAGGER_SECONDS)
    reader, writer = await asyncio.open_connection(LOCALHOST, port)
    try:
        while time.perf_counter() < stop_at and budget[0] > 0:
            started = time.perf_counter()
            writer.write(payload)
            status, body = await _read_response(reader)
            finished = time.perf_counter()
            if status != 200:
                result.errors += 1
                result.first_error = result.first_error or f"HTTP {status}: {body[:300]!r}"
            elif started >= record_from and finished <= stop_at:
                budget[0] -= 1
                result.requests += 1
                result.latencies_ms.append((finished - started) * 1000)
                result.seconds = max(result.seconds, finished - record_from)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _load(
    port: int, payload: bytes, concurrency: int, seconds: float, warmup_seconds: float, max_requests: int
) -> LoadResult:
    result = LoadResult()
    budget = [max_requests]
    cpu_started = time.process_time()
    record_from = time.perf_counter() + concurrency * STAGGER_SECONDS + warmup_seconds
    window = (record_from, record_from + seconds)
    tasks = [_connection(i, port, payload, window, budget, result) for i in range(concurrency)]
    try:
        # a hung server must not hang the benchmark: one generous bound on the whole run
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=window[1] - time.perf_counter() + 60)
    except (TimeoutError, OSError, asyncio.IncompleteReadError) as error:
        raise LoadError(f"load run failed: {type(error).__name__}: {error}") from error
    if budget[0] > 0:
        result.seconds = seconds  # the whole window (else: up to the last recorded answer)
    result.client_cpu_ms = (time.process_time() - cpu_started) * 1000
    return result


def _runner() -> Callable[[Coroutine[Any, Any, LoadResult]], LoadResult]:
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up of the client

        return uvloop.run
    except ImportError:
        return asyncio.run


def run_load(
    port: int,
    path: str,
    body: bytes,
    *,
    concurrency: int,
    seconds: float,
    max_requests: int = 50_000,
    warmup_seconds: float = 0.3,
) -> LoadResult:
    """Open `concurrency` connections, warm up (not recorded), then keep them busy for `seconds`."""
    result = _runner()(
        _load(port, request_bytes(port, path, body), concurrency, seconds, warmup_seconds, max_requests)
    )
    if result.errors:
        raise LoadError(f"{result.errors} failed requests to {path}; first: {result.first_error}")
    return result


def one_call(port: int, path: str, body: bytes) -> tuple[float, bytes]:
    """One request on a new connection: (milliseconds, response body); LoadError unless 200."""

    async def call() -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection(LOCALHOST, port)
        try:
            started = time.perf_counter()
            writer.write(request_bytes(port, path, body))
            status, answer = await asyncio.wait_for(_read_response(reader), timeout=120)
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            writer.close()
        if status != 200:
            raise LoadError(f"HTTP {status} from {path}: {answer[:300]!r}")
        return elapsed, answer

    return asyncio.run(call())
