"""The `vertebral-cds` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cds_service.cli.db import add_db_commands
from cds_service.cli.demo import add_demo_commands
from cds_service.cli.serve import serve
from cds_service.cli.thresholds import add_thresholds_commands


def _serve(args: argparse.Namespace) -> int:
    return serve(args.host, args.port, args.workers, args.thresholds, args.settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vertebral-cds", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_command = commands.add_parser("serve", help="run the CDS Hooks service")
    serve_command.add_argument("--host", help="address to bind (default VCDS_HOST or 127.0.0.1)")
    serve_command.add_argument("--port", type=int, help="port (default VCDS_PORT or 8080)")
    serve_command.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (several: gunicorn with uvicorn workers, a socket each)",
    )
    serve_command.add_argument("--thresholds", help="YAML file of thresholds to start from")
    serve_command.add_argument("--settings", help="YAML settings file (same names as the VCDS_ variables)")
    serve_command.set_defaults(handler=_serve)
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
