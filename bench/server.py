"""The service under load: a real uvicorn process on 127.0.0.1, stopped (process group) at the end.

The process runs under `timeout`, in its own session, so it stops by itself even if the benchmark is
killed. `worker_pids()` finds the processes that answer requests (uvicorn itself with one worker, its
children with several), for their peak RSS.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Self

from testing.service_process import (
    children,
    free_port,
    group_listens,
    start_group,
    stop_group,
    wait_until_ready,
    worker_processes,
)

MAX_LIFETIME_SECONDS = 900
REPO_ROOT = Path(__file__).resolve().parents[1]


def descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        for child in children(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


def cpu_ms(pid: int) -> float:
    """User + system CPU time of a process so far, in ms (0 for a process that is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (peak resident set size) of a process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class ServerProcess:
    """`uvicorn --factory <app>` or `vertebral-cds serve`, with the VCDS_ settings in `env`."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.workers = workers
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._command = command
        self._env = env
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def uvicorn(cls, factory: str, env: dict[str, str], log_path: Path, workers: int = 1) -> ServerProcess:
        server = cls([], env, log_path, workers)
        server._command = [
            sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1",
            "--port", str(server.port), "--workers", str(workers), "--log-level", "warning",
        ]  # fmt: skip
        return server

    @classmethod
    def serve(cls, env: dict[str, str], log_path: Path, workers: int) -> ServerProcess:
        """The documented deployment: `vertebral-cds serve --workers N`."""
        server = cls([], env, log_path, workers)
        server._command = [
            str(Path(sys.executable).parent / "vertebral-cds"), "serve", "--host", "127.0.0.1",
            "--port", str(server.port), "--workers", str(workers),
        ]  # fmt: skip
        return server

    def start(self, ready_timeout: float = 90.0) -> Self:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VCDS_")}
        env.update(self._env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        with self._log_path.open("ab") as log:
            self._process = start_group(self._command, env, log, MAX_LIFETIME_SECONDS, cwd=REPO_ROOT)
        if wait_until_ready(self._process, self.base_url, ready_timeout, self._all_listen):
            return self
        if self._process.poll() is not None:
            raise RuntimeError(f"server exited ({self._process.returncode}): {self.log_tail()}")
        self.stop()
        raise RuntimeError(f"server not ready within {ready_timeout:.0f} s: {self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The processes that answer requests: the server itself, or its workers when it has several."""
        if self._process is None:
            return []
        servers = children(self._process.pid)  # under `timeout`
        if self.workers <= 1:
            return servers
        return [w for s in servers for w in worker_processes(s)]

    def _all_listen(self) -> bool:
        """Every worker started and listening (one still starting would get none of the connections)."""
        return self._process is not None and group_listens(self._process.pid, self.port, self.workers)

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_group(process, grace_seconds=15)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self._log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
