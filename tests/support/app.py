"""Build the app for tests: a temporary SQLite store, a fixed clock and predictable ids when asked."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from cds_service.app import create_app
from cds_service.settings import Settings

SAMPLES = Path(__file__).resolve().parents[2] / "cds_service" / "samples"
FIXED_NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return loaded


def counting_ids(prefix: str = "00000000-0000-4000-8000-") -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):012d}"


class SettableClock:
    """A clock a test can move: `clock.now = later`."""

    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_app(
    tmp_path: Path,
    fixed_clock: bool = True,
    fixed_ids: bool = False,
    clock: Callable[[], datetime] | None = None,
    **settings: Any,
) -> FastAPI:
    """The app on a temporary SQLite store; at FIXED_NOW (or `clock`) unless `fixed_clock` is False, with
    counting ids when `fixed_ids`."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'vcds.sqlite3'}",
        "patient_hash_key": "test-key",
    }
    values.update(settings)
    options: dict[str, Any] = {}
    if clock is not None or fixed_clock:
        options["clock"] = clock or SettableClock()
    if fixed_ids:
        options["new_id"] = counting_ids()
    return create_app(Settings(**values), **options)


def client_for(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)
