"""The `vertebral-cds` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn

from cds_service.app import STARTUP_WARNINGS_LOGGED, create_app
from cds_service.db_cli import add_db_commands
from cds_service.demo_cli import add_demo_commands
from cds_service.settings import SettingsError, load_settings
from cds_service.thresholds_cli import add_thresholds_commands
from cds_service.workers import APP_FACTORY, Supervisor, WorkerOptions, port_in_use, reuse_port_supported
from fhir_mappings.codesets import CodeSetError


def _serve(args: argparse.Namespace) -> int:
    # Workers build their own app from the environment, so the options travel as VCDS_ variables.
    if args.thresholds:
        os.environ["VCDS_THRESHOLDS_FILE"] = args.thresholds
    if args.settings:
        os.environ["VCDS_SETTINGS_FILE"] = args.settings
    try:
        settings = load_settings()
        create_app(settings)  # fail here, readably, rather than inside a worker
    except (SettingsError, CodeSetError) as error:
        print(f"vertebral-cds: {error}", file=sys.stderr)
        return 2
    os.environ[STARTUP_WARNINGS_LOGGED] = "1"  # logged just now; the workers' apps stay quiet about them
    host = args.host or settings.host
    port = args.port or settings.port
    if settings.profile == "dev" and host not in ("127.0.0.1", "localhost", "::1"):
        print(
            "vertebral-cds: the dev profile binds 127.0.0.1 only; use VCDS_PROFILE=production",
            file=sys.stderr,
        )
        return 2
    if settings.profile == "production" and args.workers > 1 and settings.redis_url is None:
        print(
            "vertebral-cds: several workers need VCDS_REDIS_URL, so that they share one JWT replay cache",
            file=sys.stderr,
        )
        return 2
    server_options: dict[str, Any] = {
        "log_level": "warning",
        "proxy_headers": True,
        # X-Forwarded-* are believed from these addresses only (uvicorn's default: 127.0.0.1)
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or None,
        "ssl_certfile": settings.tls_certfile,
        "ssl_keyfile": settings.tls_keyfile,
    }
    # Several workers: a listening socket each, so that long-lived connections spread over them.
    own_sockets = args.workers > 1 and reuse_port_supported()
    if own_sockets and port_in_use(host, port):
        print(f"vertebral-cds: {host}:{port} is in use already", file=sys.stderr)
        return 1
    scheme = "https" if settings.tls_certfile else "http"
    print(
        f"vertebral-cds {settings.profile} profile: discovery at {scheme}://{host}:{port}/cds-services",
        flush=True,
    )
    if own_sockets:
        return Supervisor(WorkerOptions(host, port, server_options), args.workers).run()
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=args.workers, **server_options)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vertebral-cds", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the CDS Hooks service")
    serve.add_argument("--host", help="address to bind (default VCDS_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default VCDS_PORT or 8080)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes")
    serve.add_argument("--thresholds", help="YAML file of thresholds to start from")
    serve.add_argument("--settings", help="YAML settings file (same names as the VCDS_ variables)")
    serve.set_defaults(handler=_serve)
    add_thresholds_commands(commands)
    add_db_commands(commands)
    add_demo_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = args.handler
    result: int = handler(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
