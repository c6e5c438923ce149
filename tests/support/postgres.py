"""A fresh PostgreSQL schema per test on the server at 127.0.0.1:5432 (trust auth, database `test`).

Skips when that server is absent, except under CI=true, where its absence is an error.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

PG_DSN = os.environ.get("VCDS_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 dbname=test")


def sqlalchemy_url(schema: str) -> str:
    params = dict(part.split("=", 1) for part in PG_DSN.split())
    user = params.get("user", "")
    host, port, dbname = (
        params.get("host", "127.0.0.1"),
        params.get("port", "5432"),
        params.get("dbname", "test"),
    )
    login = f"{user}@" if user else ""
    return f"postgresql+psycopg://{login}{host}:{port}/{dbname}?options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema() -> Iterator[str]:
    try:
        connection = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is required under CI=true: {error}", pytrace=False)
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 not reachable: {error}")
    schema = f"vcds_test_{uuid.uuid4().hex[:12]}"
    with connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield schema
        finally:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
