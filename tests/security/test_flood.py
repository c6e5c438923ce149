"""Under a flood of slow and huge requests the service stays responsive and every caller gets an answer.

The real app runs under uvicorn on 127.0.0.1 (a thread of this process, stopped at the end). At once:
hook calls whose data must come from a FHIR server that never answers in time, clients that send
headers and then stall (slowloris), and requests announcing or streaming huge bodies. Meanwhile
health, discovery and a fully prefetched hook call must answer promptly, and the floods must get
their 412 / 408 / 413 within their deadlines. All loops are bounded in count and time.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from testing.fhir_server import free_port
from tests.support.app import make_app, sample
from tests.support.bad_fhir_server import BadFhirServer

SELECT = "/cds-services/vertebral-augmentation-select"
BODY_TIMEOUT_S = 2.0
FETCH_DEADLINE_S = 2.0
SLOW_HOOK_CALLS = 40
SLOWLORIS = 30
HUGE = 10


@pytest.fixture
def bad_server() -> Iterator[BadFhirServer]:
    with BadFhirServer() as server:
        yield server


@pytest.fixture
def live(tmp_path: Path, bad_server: BadFhirServer) -> Iterator[str]:
    app = make_app(
        tmp_path,
        request_body_timeout_seconds=BODY_TIMEOUT_S,
        fhir_request_timeout_seconds=1.0,
        fetch_deadline_seconds=FETCH_DEADLINE_S,
        max_request_bytes=1_000_000,
        allowed_fhir_servers=[bad_server.root],
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)


def _slow_fetch_body(bad_server: BadFhirServer) -> dict[str, Any]:
    body = sample("order-select.json")
    body.pop("prefetch")
    body["fhirServer"] = bad_server.base("slow")
    return body


def _stalled_socket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST " + SELECT.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n{"
    )
    return sock


def _status_of(sock: socket.socket) -> int:
    try:
        head = sock.recv(64)
    except TimeoutError:
        return 0
    finally:
        sock.close()
    return int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0


def _huge_announced(port: int) -> int:
    """Headers announcing 50 MB: refused before a byte of the body is read."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST " + SELECT.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 50000000\r\n\r\n{"
    )
    return _status_of(sock)


def _huge_streamed(base: str) -> int:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):  # 40 MB at most, stopped early by the 413
            yield b" " * 1_000_000

    with httpx.Client(timeout=10) as client:
        try:
            return client.post(
                base + SELECT, content=chunks(), headers={"Content-Type": "application/json"}
            ).status_code
        except httpx.HTTPError:
            return 413  # the server answered 413 and closed while we were still sending


def test_the_service_stays_responsive_under_a_flood(live: str, bad_server: BadFhirServer) -> None:
    port = int(live.rsplit(":", 1)[1])
    started = time.monotonic()
    with (
        ThreadPoolExecutor(max_workers=SLOW_HOOK_CALLS + HUGE + 5) as pool,
        httpx.Client(timeout=15) as client,
        contextlib.ExitStack() as sockets,  # closes the stalled sockets whatever happens
    ):
        slow_calls = [
            pool.submit(lambda: httpx.post(live + SELECT, json=_slow_fetch_body(bad_server), timeout=30))
            for _ in range(SLOW_HOOK_CALLS)
        ]
        stalled = [sockets.enter_context(_stalled_socket(port)) for _ in range(SLOWLORIS)]
        huge = [pool.submit(_huge_announced, port) for _ in range(HUGE // 2)]
        huge += [pool.submit(_huge_streamed, live) for _ in range(HUGE - HUGE // 2)]
        time.sleep(0.3)  # let the flood arrive

        health_ms, discovery_ms = [], []
        for _ in range(10):
            t = time.monotonic()
            assert client.get(live + "/healthz").status_code == 200
            health_ms.append((time.monotonic() - t) * 1000)
            t = time.monotonic()
            assert client.get(live + "/cds-services").status_code == 200
            discovery_ms.append((time.monotonic() - t) * 1000)
            time.sleep(0.05)
        t = time.monotonic()
        quick = client.post(live + SELECT, json=sample("order-select.json"))
        quick_s = time.monotonic() - t

        slow_statuses = [f.result(timeout=30).status_code for f in slow_calls]
        huge_statuses = [f.result(timeout=30) for f in huge]
        for sock in stalled:
            sock.settimeout(BODY_TIMEOUT_S + 5)
        stalled_statuses = [_status_of(sock) for sock in stalled]
    total_s = time.monotonic() - started

    print(
        f"\nflood: health max {max(health_ms):.0f} ms, discovery max {max(discovery_ms):.0f} ms, "
        f"prefetched hook call {quick_s:.2f} s ({quick.status_code}), "
        f"slow-FHIR calls {sorted(set(slow_statuses))}, huge {sorted(set(huge_statuses))}, "
        f"stalled {sorted(set(stalled_statuses))}, all done in {total_s:.1f} s"
    )
    assert max(health_ms) < 1000
    assert max(discovery_ms) < 1000
    assert quick.status_code == 200
    assert quick_s < FETCH_DEADLINE_S * 2 + 1
    assert set(slow_statuses) <= {412, 503}
    assert set(huge_statuses) == {413}
    assert set(stalled_statuses) == {408}
    assert total_s < 30
