"""`vertebral-cds db …`: schema migrations and retention, for operators and deployment jobs."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from cds_service.settings import SettingsError, load_settings
from cds_service.storage.database import Database, current_revision, head_revision, migrate
from cds_service.storage.records import purge_older_than


def _database() -> Database:
    return Database(load_settings().database_url)


def _upgrade(_: argparse.Namespace) -> int:
    database = _database()
    try:
        before = current_revision(database.engine)
        migrate(database.engine)
        print(f"database schema: {before or '(empty)'} -> {current_revision(database.engine)}")
    finally:
        database.dispose()
    return 0


def _current(_: argparse.Namespace) -> int:
    database = _database()
    try:
        current, head = current_revision(database.engine), head_revision()
    finally:
        database.dispose()
    print(f"database schema: {current or '(empty)'}; newest: {head}")
    return 0 if current == head else 1


def _purge(args: argparse.Namespace) -> int:
    settings = load_settings()
    days = args.days if args.days is not None else settings.evaluation_retention_days
    if days <= 0:
        print("retention is 0 (keep forever): nothing purged")
        return 0
    database = Database(settings.database_url)
    try:
        migrate(database.engine)
        purged = purge_older_than(database, datetime.now(UTC) - timedelta(days=days))
    finally:
        database.dispose()
    print(
        f"purged {purged.evaluations} evaluations and {purged.feedback} feedback items older than {days} days"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        result: int = args.db_handler(args)
    except SettingsError as error:
        print(f"vertebral-cds: {error}", file=sys.stderr)
        return 2
    return result


def add_db_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="database schema and retention")
    actions = db.add_subparsers(dest="db_command", required=True)
    upgrade = actions.add_parser("upgrade", help="apply schema migrations (also done at every start)")
    upgrade.set_defaults(handler=run, db_handler=_upgrade)
    current = actions.add_parser("current", help="print the schema revision; exit 1 if not the newest")
    current.set_defaults(handler=run, db_handler=_current)
    purge = actions.add_parser("purge", help="delete evaluations and feedback past the retention period")
    purge.add_argument("--days", type=int, help="override VCDS_EVALUATION_RETENTION_DAYS")
    purge.set_defaults(handler=run, db_handler=_purge)
