"""`vertebral-cds thresholds export|import|validate`: thresholds as YAML files, versions in the database.

    vertebral-cds thresholds validate site.yaml
    vertebral-cds thresholds export [--version N | --defaults] [--output FILE]
    vertebral-cds thresholds import site.yaml --reason "why" [--author NAME] [--expect-version N]

The database is the one the service uses (`VCDS_DATABASE_URL`, or `--settings FILE`). An import is a new
version like any saved on the admin page: audited, and in force in every worker within seconds.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cds_service.admin.audit import Actor
from cds_service.admin.threshold_fields import field_errors
from cds_service.admin.thresholds_source import StaticThresholds
from cds_service.admin.thresholds_store import NothingToSave, ThresholdsStore, UnknownVersion, VersionConflict
from cds_service.settings import SettingsError, load_settings
from cds_service.storage.database import Database, migrate
from rules.thresholds import DEFAULT_THRESHOLDS, Thresholds

EXIT_INVALID = 1
EXIT_SETTINGS = 2
EXIT_CONFLICT = 3


def add_thresholds_commands(commands: Any) -> None:
    parser = commands.add_parser("thresholds", help="export, import or validate thresholds (YAML)")
    actions = parser.add_subparsers(dest="thresholds_command", required=True)

    validate = actions.add_parser("validate", help="check a thresholds YAML file; changes nothing")
    validate.add_argument("file")
    validate.set_defaults(handler=_validate)

    export = actions.add_parser("export", help="write the thresholds in force (or a version) as YAML")
    which = export.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="a stored version (default: the one in force)")
    which.add_argument("--defaults", action="store_true", help="the built-in defaults; needs no database")
    export.add_argument("--output", "-o", help="file to write (default: standard output)")
    export.add_argument("--settings", help="YAML settings file (same names as the VCDS_ variables)")
    export.set_defaults(handler=_export)

    load = actions.add_parser("import", help="save a YAML file as a new version and put it in force")
    load.add_argument("file")
    load.add_argument("--reason", required=True, help="why: recorded with the version and in the audit log")
    load.add_argument("--author", help="who (default: the login name)")
    load.add_argument(
        "--expect-version", type=int, help="refuse (exit 3) unless this version is still in force"
    )
    load.add_argument("--settings", help="YAML settings file (same names as the VCDS_ variables)")
    load.set_defaults(handler=_import)


def _read(path: str) -> Thresholds:
    """The file's thresholds, or ValueError with a message per field."""
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of threshold names to values")
    try:
        return Thresholds.model_validate(values)
    except ValidationError as error:
        lines = [
            f"  {field}: {message}" for field, messages in field_errors(error).items() for message in messages
        ]
        raise ValueError(f"{path} is not valid:\n" + "\n".join(lines)) from error


def _validate(args: argparse.Namespace) -> int:
    try:
        _read(args.file)
    except ValueError as error:
        print(f"vertebral-cds: {error}", file=sys.stderr)
        return EXIT_INVALID
    print(f"{args.file}: valid")
    return 0


def _store(settings_file: str | None) -> tuple[ThresholdsStore, Database]:
    settings = load_settings(settings_file)
    database = Database(settings.database_url)
    migrate(database.engine)
    store = ThresholdsStore(database)
    StaticThresholds.from_file(settings.thresholds_file).seed(store)
    return store, database


def _yaml(thresholds: Thresholds, header: str) -> str:
    body = yaml.safe_dump(thresholds.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return comment + body


def _export(args: argparse.Namespace) -> int:
    if args.defaults:
        text = _yaml(DEFAULT_THRESHOLDS, "vertebral-cds thresholds: the built-in defaults")
    else:
        try:
            store, database = _store(args.settings)
        except SettingsError as error:
            print(f"vertebral-cds: {error}", file=sys.stderr)
            return EXIT_SETTINGS
        try:
            version = store.get(args.version) if args.version else store.current_version()
        except UnknownVersion as missing:
            print(f"vertebral-cds: {missing}", file=sys.stderr)
            return EXIT_INVALID
        finally:
            database.dispose()
        text = _yaml(
            version.thresholds,
            f"vertebral-cds thresholds version {version.version}, saved "
            f"{version.created_at.isoformat()} by {version.author}\nreason: {version.reason}",
        )
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _import(args: argparse.Namespace) -> int:
    try:
        thresholds = _read(args.file)
    except ValueError as error:
        print(f"vertebral-cds: {error}", file=sys.stderr)
        return EXIT_INVALID
    if not args.reason.strip():
        print("vertebral-cds: --reason must say why", file=sys.stderr)
        return EXIT_INVALID
    try:
        store, database = _store(args.settings)
    except SettingsError as error:
        print(f"vertebral-cds: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    author = args.author or getpass.getuser()
    try:
        expected = args.expect_version or store.current_version().version
        saved = store.save(
            thresholds,
            expected_version=expected,
            actor=Actor(author, "cli"),
            reason=args.reason.strip(),
            action="import",
        )
    except VersionConflict as conflict:
        print(f"vertebral-cds: not imported: {conflict}", file=sys.stderr)
        return EXIT_CONFLICT
    except NothingToSave as same:
        print(f"{args.file}: no change; version {same.current} stays in force")
        return 0
    finally:
        database.dispose()
    print(f"{args.file}: saved as version {saved.version}, in force now")
    return 0
