"""`vertebral-cds serve --workers N` (gunicorn, uvicorn workers, `reuse_port`): a listening socket per
worker, so that long-lived connections spread over the workers; a worker that dies is replaced; SIGHUP
replaces them all while calls keep being answered; SIGTERM to the arbiter stops them all; a second
service on the same port is refused instead of sharing the traffic."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cds_service.cli.serve import port_in_use
from testing.service_process import (
    VENV_BIN,
    ServiceProcess,
    all_workers_listen,
    free_port,
    sockets_held,
    worker_processes,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads on Linux")

CONNECTIONS = 16
"""With two workers, all of them on one worker by chance: 2 x 2^-16, about one run in 30,000."""


def manager_pid(service: ServiceProcess) -> int:
    pid = service.manager_pid
    assert pid is not None
    return pid


def worker_pids(service: ServiceProcess) -> set[int]:
    return set(worker_processes(manager_pid(service)))


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def answers(base_url: str, calls: int) -> bool:
    """Whether `calls` fresh connections in a row all get /healthz (each may reach any worker)."""
    try:
        return all(httpx.get(f"{base_url}/healthz", timeout=5).status_code == 200 for _ in range(calls))
    except httpx.HTTPError:
        return False


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {"VCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'workers.sqlite3'}", "VCDS_PATIENT_HASH_KEY": "k"}
    with ServiceProcess(env, workers=2, log_path=tmp_path / "service.log") as running:  # both listen
        yield running


def test_long_lived_connections_spread_over_the_workers(service: ServiceProcess) -> None:
    clients = [httpx.Client(base_url=service.base_url, timeout=10) for _ in range(CONNECTIONS)]
    try:
        for client in clients:  # one keep-alive connection each, opened one after another
            assert client.get("/healthz").status_code == 200
        held = {pid: sockets_held(pid, service.port, "01") for pid in worker_pids(service)}
    finally:
        for client in clients:
            client.close()
    assert sum(held.values()) == CONNECTIONS, held
    assert all(count > 0 for count in held.values()), held


def test_a_worker_that_dies_is_replaced(service: ServiceProcess) -> None:
    first, second = sorted(worker_pids(service))
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: len(worker_pids(service)) == 2 and first not in worker_pids(service), 30)
    assert wait_for(lambda: all_workers_listen(manager_pid(service), service.port, 2), 30)
    assert second in worker_pids(service)
    assert wait_for(
        lambda: all(httpx.get(f"{service.base_url}/healthz").status_code == 200 for _ in range(20)), 30
    )


def test_sighup_replaces_every_worker_while_the_service_keeps_answering(service: ServiceProcess) -> None:
    old = worker_pids(service)
    failures: list[str] = []
    stop = threading.Event()

    def keep_calling() -> None:  # fresh connections all along: each may reach any listening worker
        while not stop.is_set():
            try:
                if httpx.get(f"{service.base_url}/healthz", timeout=10).status_code != 200:
                    failures.append("status")
            except httpx.HTTPError as error:
                failures.append(type(error).__name__)
            time.sleep(0.02)

    caller = threading.Thread(target=keep_calling)
    caller.start()
    try:
        os.kill(manager_pid(service), signal.SIGHUP)
        assert wait_for(lambda: len(worker_pids(service)) == 2 and not worker_pids(service) & old, 90)
        assert wait_for(lambda: all_workers_listen(manager_pid(service), service.port, 2), 30)
    finally:
        stop.set()
        caller.join()
    assert failures == []


def test_sigterm_to_the_arbiter_stops_every_worker(service: ServiceProcess) -> None:
    arbiter = manager_pid(service)
    workers = worker_pids(service)
    os.kill(arbiter, signal.SIGTERM)  # to the arbiter alone, as an init system may send it
    assert service._process is not None
    assert service._process.wait(timeout=40) == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)


def test_a_second_service_on_the_same_port_is_refused(service: ServiceProcess, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCDS_")}
    env |= {"VCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'second.sqlite3'}", "VCDS_PATIENT_HASH_KEY": "k"}
    done = subprocess.run(
        [str(VENV_BIN / "vertebral-cds"), "serve", "--port", str(service.port), "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "in use already" in done.stderr


def test_a_port_is_in_use_while_anything_listens_on_it() -> None:
    port = free_port()
    assert not port_in_use("127.0.0.1", port)
    with socket.socket() as shared:  # as a gunicorn worker binds it: SO_REUSEPORT
        shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        shared.bind(("127.0.0.1", port))
        shared.listen()
        assert port_in_use("127.0.0.1", port)
    assert not port_in_use("127.0.0.1", port)
