"""`vertebral-cds serve --workers N`: N worker processes, each with a listening socket of its own on the
same port (SO_REUSEPORT), watched by the process that started them.

uvicorn's own multi-worker mode shares one listening socket among its workers: whichever wakes first
takes the next connection, and the few long-lived connections an EHR's HTTP client keeps can all land on
one worker while the others idle (`python -m bench`, multi-worker: 1.03 + 0.04 cores busy of two). With a
socket per worker the kernel spreads new connections over the workers by a hash of their addresses.

The supervisor restarts a worker that dies (a bounded number of times per minute: a worker that cannot
start is not restarted forever); on SIGTERM or SIGINT it asks every worker to stop gracefully (uvicorn
finishes the requests in flight and runs the app's shutdown, which writes the queued evaluation rows);
on SIGHUP it replaces the workers one at a time, each new one listening before the old one stops, as
uvicorn's own supervisor does. A worker whose supervisor is gone (killed outright) stops by itself
rather than serve on unwatched. Where the platform has no SO_REUSEPORT, `serve` uses uvicorn's own
workers instead.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as ProcessEvent
from types import FrameType
from typing import Any

import uvicorn

APP_FACTORY = "cds_service.app:create_app"
BACKLOG = 2048  # uvicorn's default


@dataclass(frozen=True)
class WorkerOptions:
    """What every worker needs to serve: the address and the options of its uvicorn server."""

    host: str
    port: int
    uvicorn_options: dict[str, Any] = field(default_factory=dict)


def reuse_port_supported() -> bool:
    """Linux spreads connections over the sockets of a port; elsewhere SO_REUSEPORT means other things."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to (host, port) and listening. With `reuse_port`, more such sockets (of the same
    user) may bind the same port, and the kernel shares the incoming connections among them."""
    family, kind, protocol, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on the port already. Checked without SO_REUSEPORT, so that a second
    `serve` on the same port fails instead of quietly sharing the traffic with the first."""
    try:
        listening_socket(host, port, reuse_port=False).close()
    except OSError:
        return True
    return False


_PR_SET_PDEATHSIG = 1


def _stop_with_supervisor(supervisor: int) -> None:  # pragma: no cover - runs in the worker process
    """SIGTERM this worker when its supervisor dies (Linux prctl); gone already: stop now."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:
        raise SystemExit(0)


def _report_started(server: uvicorn.Server, ready: ProcessEvent) -> None:  # pragma: no cover - worker
    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        ready.set()


def _worker_main(options: WorkerOptions, supervisor: int, ready: ProcessEvent) -> None:  # pragma: no cover
    _stop_with_supervisor(supervisor)
    sock = listening_socket(options.host, options.port, reuse_port=True)
    config = uvicorn.Config(
        APP_FACTORY, factory=True, host=options.host, port=options.port, **options.uvicorn_options
    )
    server = uvicorn.Server(config)
    threading.Thread(target=_report_started, args=(server, ready), daemon=True).start()
    server.run(sockets=[sock])


@dataclass
class _Worker:
    process: BaseProcess
    ready: ProcessEvent
    """Set once the worker's server has started (its socket listens and the app is up)."""


class Supervisor:
    """Starts the workers, replaces those that die, replaces them all on SIGHUP, and stops them all on
    SIGTERM or SIGINT."""

    def __init__(
        self,
        options: WorkerOptions,
        workers: int,
        *,
        max_restarts: int = 5,
        restart_window_seconds: float = 60.0,
        grace_seconds: float = 30.0,
        poll_seconds: float = 0.5,
    ) -> None:
        self.options = options
        self.workers = workers
        self.max_restarts = max_restarts
        self.restart_window_seconds = restart_window_seconds
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked app state
        self._workers: list[_Worker] = []
        self._restarts: deque[float] = deque()
        self._stop = threading.Event()
        self._reload = threading.Event()

    def run(self) -> int:
        """Serve until told to stop; 0 after a requested stop, 1 when workers keep dying."""
        previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._request_reload)
        try:
            for index in range(self.workers):  # one by one: those started are stopped if one fails
                self._workers.append(self._start(index))
            healthy = self._watch()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0 if healthy else 1

    def _request_stop(self, _signal: int, _frame: FrameType | None) -> None:
        self._stop.set()

    def _request_reload(self, _signal: int, _frame: FrameType | None) -> None:
        self._reload.set()

    def _start(self, index: int) -> _Worker:
        ready = self._context.Event()
        process = self._context.Process(
            target=_worker_main, args=(self.options, os.getpid(), ready), name=f"vertebral-cds-worker-{index}"
        )
        process.start()
        return _Worker(process, ready)

    def _replace_all(self) -> None:
        """A new worker for each old one: the new one first, and the old one stopped once the new one
        has started, so that the port always has a listening worker."""
        for index, old in enumerate(list(self._workers)):
            new = self._start(index)
            if not self._started(new):
                self._stop_worker(new)
                if not self._stop.is_set():
                    print(
                        "vertebral-cds: a new worker did not start; the others stay",
                        file=sys.stderr,
                        flush=True,
                    )
                return
            self._workers[index] = new
            self._stop_worker(old)

    def _started(self, worker: _Worker) -> bool:
        deadline = time.monotonic() + self.grace_seconds * 2
        while not worker.ready.wait(0.1):
            if self._stop.is_set() or not worker.process.is_alive() or time.monotonic() > deadline:
                return False
        return True

    def _watch(self) -> bool:
        while not self._stop.wait(self.poll_seconds):
            if self._reload.is_set():
                self._reload.clear()
                print("vertebral-cds: SIGHUP: replacing the workers one by one", file=sys.stderr, flush=True)
                self._replace_all()
            for index, worker in enumerate(self._workers):
                process = worker.process
                if process.is_alive():
                    continue
                if not self._may_restart():
                    print(
                        f"vertebral-cds: workers keep exiting ({self.max_restarts} restarts within "
                        f"{self.restart_window_seconds:g} s); stopping",
                        file=sys.stderr,
                        flush=True,
                    )
                    return False
                print(
                    f"vertebral-cds: worker {process.pid} exited with {process.exitcode}; starting another",
                    file=sys.stderr,
                    flush=True,
                )
                self._workers[index] = self._start(index)
        return True

    def _may_restart(self) -> bool:
        now = time.monotonic()
        while self._restarts and now - self._restarts[0] > self.restart_window_seconds:
            self._restarts.popleft()
        if len(self._restarts) >= self.max_restarts:
            return False
        self._restarts.append(now)
        return True

    def _stop_all(self) -> None:
        """SIGTERM to every worker (uvicorn stops gracefully); SIGKILL to those left after the grace."""
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()
        deadline = time.monotonic() + self.grace_seconds
        for worker in self._workers:
            self._join_or_kill(worker, deadline)

    def _stop_worker(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.terminate()
        self._join_or_kill(worker, time.monotonic() + self.grace_seconds)

    @staticmethod
    def _join_or_kill(worker: _Worker, deadline: float) -> None:
        process = worker.process
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(5)
