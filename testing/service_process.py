"""The real service in its own process(es) for end-to-end tests: `vertebral-cds serve` on 127.0.0.1.

Each server runs under `timeout` in its own process group, so it stops by itself even if the test run
is killed, and `stop()` ends the whole group (uvicorn's workers included). Ports are picked free.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

import httpx

VENV_BIN = Path(sys.executable).parent
MAX_LIFETIME_SECONDS = 600


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_group(
    command: list[str],
    env: dict[str, str],
    output: BinaryIO | int,
    lifetime_seconds: int = MAX_LIFETIME_SECONDS,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """`command` under `timeout` (it stops by itself after `lifetime_seconds`, even if the caller is
    killed), in a process group of its own that `stop_group` ends whole."""
    wrapped = ["timeout", "--signal=TERM", "--kill-after=5", str(lifetime_seconds), *command]
    return subprocess.Popen(wrapped, env=env, cwd=cwd, stdout=output, stderr=output, start_new_session=True)


def stop_group(process: subprocess.Popen[bytes] | None, grace_seconds: float = 10) -> None:
    """SIGTERM to the whole group (uvicorn's workers included), SIGKILL after the grace period."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _tcp_inodes(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets whose local port is `port`, in `state` ("0A" listening, "01" established)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                    inodes.add(fields[9])
    return inodes


def sockets_held(pid: int, port: int, state: str) -> int:
    """How many TCP sockets on local `port` in `state` the process `pid` holds (Linux /proc)."""
    wanted = _tcp_inodes(port, state)
    held = 0
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in wanted:
                    held += 1
    return held


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in task.read_text().split()]
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def worker_processes(pid: int) -> list[int]:
    """The worker processes of a server `pid` that has several: gunicorn's (forked, under `vertebral-cds
    serve --workers N`) or uvicorn's (spawned); not multiprocessing's resource tracker."""
    return [child for child in children(pid) if "resource_tracker" not in cmdline(child)]


def all_workers_listen(manager: int, port: int, workers: int) -> bool:
    """Whether `workers` workers run and each listens: with a socket per worker (SO_REUSEPORT), a
    worker that has started but not yet bound gets none of the connections opened meanwhile."""
    pids = worker_processes(manager)
    return len(pids) >= workers and all(sockets_held(pid, port, "0A") for pid in pids)


def group_listens(group: int, port: int, workers: int) -> bool:
    """Whether the server started under `start_group` (`group`: the `timeout` process) is up and, with
    several workers, every one of them listens."""
    servers = children(group)
    if workers <= 1:
        return bool(servers)
    return any(all_workers_listen(server, port, workers) for server in servers)


def wait_until_ready(
    process: subprocess.Popen[bytes], base_url: str, ready_timeout: float, listening: Callable[[], bool]
) -> bool:
    """Poll `/healthz` until it answers 200 and `listening()` holds (True), or until the process exits or
    the time runs out (False). The service harness and the benchmark's servers share this wait."""
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200 and listening():
                return True
        time.sleep(0.2)
    return False


class ServiceProcess:
    def __init__(self, env: dict[str, str], workers: int = 1, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self._env = env
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._output: BinaryIO | None = None

    def start(self, ready_timeout: float = 60.0) -> Self:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VCDS_")}
        env.update(self._env)
        env["VCDS_HOST"] = "127.0.0.1"
        command = [
            str(VENV_BIN / "vertebral-cds"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        self._output = self._log_path.open("ab") if self._log_path else None
        output = self._output or subprocess.DEVNULL
        self._process = start_group(command, env, output)
        if wait_until_ready(self._process, self.base_url, ready_timeout, self._all_listen):
            return self
        if self._process.poll() is not None:
            raise RuntimeError(f"service exited with {self._process.returncode}; see {self._log_path}")
        self.stop()
        raise RuntimeError(f"service did not become ready in {ready_timeout} s; see {self._log_path}")

    @property
    def manager_pid(self) -> int | None:
        """The `vertebral-cds serve` process (it runs under `timeout`): gunicorn's arbiter with workers."""
        found = children(self._process.pid) if self._process is not None else []
        return found[0] if found else None

    def _all_listen(self) -> bool:
        return self._process is not None and group_listens(self._process.pid, self.port, self.workers)

    def stop(self) -> None:
        try:
            stop_group(self._process)
        finally:
            if self._output is not None:
                self._output.close()
                self._output = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
