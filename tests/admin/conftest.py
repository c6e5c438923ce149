"""An app with the admin area open: an editor token, a viewer token, a temporary SQLite store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cds_service import app as app_module
from cds_service.web.logging_setup import JsonFormatter
from tests.support.app import client_for, make_app

EDITOR_TOKEN = "editor-token-for-tests-7f3a9c"
VIEWER_TOKEN = "viewer-token-for-tests-51be04"
EDITOR = {"Authorization": f"Bearer {EDITOR_TOKEN}"}
VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}


def make_admin_app(tmp_path: Path, **settings: Any) -> FastAPI:
    values: dict[str, Any] = {"admin_token": EDITOR_TOKEN, "admin_viewer_token": VIEWER_TOKEN}
    values.update(settings)
    return make_app(tmp_path, **values)


@pytest.fixture
def admin_app(tmp_path: Path) -> FastAPI:
    return make_admin_app(tmp_path)


@pytest.fixture
def api(admin_app: FastAPI) -> Iterator[TestClient]:
    with client_for(admin_app) as client:
        yield client


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(JsonFormatter().format(record))


@pytest.fixture
def service_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The service's log lines as it writes them (its logger does not propagate to pytest's caplog).

    `create_app` resets the logger's handlers, so the collector is put back after each reset.
    """
    handler = _Collect()
    logger = logging.getLogger("vertebral_cds")
    configure = app_module.configure_logging

    def configure_and_collect(level: str) -> None:
        configure(level)
        logger.addHandler(handler)

    monkeypatch.setattr(app_module, "configure_logging", configure_and_collect)
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)
