"""`vertebral-cds serve`: one uvicorn server, or `--workers N` uvicorn workers under gunicorn.

Several workers run under gunicorn's arbiter with uvicorn's worker class (`uvicorn-worker`) and
`reuse_port`: each worker binds a listening socket of its own on the port (SO_REUSEPORT), and the kernel
spreads new connections over the sockets by a hash of their addresses. An EHR keeps a few long-lived
connections open; with one socket shared by every worker (uvicorn's own `--workers`), whichever worker
wakes first takes them. Measured on 2026-12-07, two workers, 16 keep-alive connections opened one after
another, three trials each: uvicorn's workers 16 + 0 every time; gunicorn with `reuse_port` 12 + 4,
9 + 7, 8 + 8 (`tests/operate/test_workers.py` keeps the spread). gunicorn also gives what the service
needs from a process manager: a dead worker is replaced, SIGHUP replaces every worker, SIGTERM stops
them gracefully (uvicorn finishes the requests in flight and the app's shutdown writes the queued
evaluation rows), SIGTTIN/SIGTTOU add or remove one. On Kubernetes run one worker per pod and scale
the replicas instead.

Each worker builds its own app from the environment after the fork (no preload), so the options travel
as VCDS_ variables; the app is built once in the arbiter first, so that a bad setting fails here,
readably, and the database is migrated once rather than by every worker at the same time.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI
from gunicorn.app.base import BaseApplication

from cds_service.app import STARTUP_WARNINGS_LOGGED, create_app
from cds_service.settings import Settings, SettingsError, load_settings
from fhir_mappings.codesets import CodeSetError

APP_FACTORY = "cds_service.app:create_app"
WORKER_CLASS = "uvicorn_worker.UvicornWorker"
GRACE_SECONDS = 30


class _Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's arbiter with these options instead of a command line or a config file."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self) -> FastAPI:  # in each worker, after the fork
        return create_app()


def port_in_use(host: str, port: int) -> bool:
    """Whether something listens on the port already. Checked without SO_REUSEPORT, so that a second
    `serve` on the same port fails instead of quietly sharing the traffic with the first."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def gunicorn_options(settings: Settings, host: str, port: int, workers: int) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": WORKER_CLASS,
        "reuse_port": True,
        "graceful_timeout": GRACE_SECONDS,
        "loglevel": "warning",
        "proc_name": "vertebral-cds",
    }
    if settings.trusted_proxies:  # X-Forwarded-* believed from these only (default: 127.0.0.1, ::1)
        options["forwarded_allow_ips"] = ",".join(settings.trusted_proxies)
    if settings.tls_certfile:
        options["certfile"] = settings.tls_certfile
        options["keyfile"] = settings.tls_keyfile
    return options


def _refusal(settings: Settings, host: str, workers: int) -> str | None:
    if settings.profile == "dev" and host not in ("127.0.0.1", "localhost", "::1"):
        return "the dev profile binds 127.0.0.1 only; use VCDS_PROFILE=production"
    if settings.profile == "production" and workers > 1 and settings.redis_url is None:
        return "several workers need VCDS_REDIS_URL, so that they share one JWT replay cache"
    return None


def serve(
    host: str | None, port: int | None, workers: int, thresholds: str | None, settings_file: str | None
) -> int:
    if thresholds:
        os.environ["VCDS_THRESHOLDS_FILE"] = thresholds
    if settings_file:
        os.environ["VCDS_SETTINGS_FILE"] = settings_file
    try:
        settings = load_settings()
        checked = create_app(settings)  # fail here, readably, rather than inside a worker
    except (SettingsError, CodeSetError) as error:
        print(f"vertebral-cds: {error}", file=sys.stderr)
        return 2
    checked.state.database.dispose()  # no pooled connection crosses the fork into the workers
    os.environ[STARTUP_WARNINGS_LOGGED] = "1"  # logged just now; the workers' apps stay quiet about them
    host = host or settings.host
    port = port or settings.port
    refusal = _refusal(settings, host, workers)
    if refusal:
        print(f"vertebral-cds: {refusal}", file=sys.stderr)
        return 2
    if port_in_use(host, port):
        print(f"vertebral-cds: {host}:{port} is in use already", file=sys.stderr)
        return 1
    scheme = "https" if settings.tls_certfile else "http"
    print(
        f"vertebral-cds {settings.profile} profile: discovery at {scheme}://{host}:{port}/cds-services",
        flush=True,
    )
    if workers > 1:
        _Gunicorn(gunicorn_options(settings, host, port, workers)).run()  # exits the process when done
        return 0
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        ssl_certfile=settings.tls_certfile,
        ssl_keyfile=settings.tls_keyfile,
    )
    return 0
