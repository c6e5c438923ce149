"""Headless Chromium (Debian chromium + chromedriver, Selenium) and the service as a real process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testing.service_process import ServiceProcess
from tests.support.browser import headless_chromium


@pytest.fixture
def chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh headless Chromium; skips without it, except under CI=true, where that is an error."""
    with headless_chromium(tmp_path / "chromium-profile", "1400,1300", monkeypatch) as driver:
        yield driver


@pytest.fixture
def playground_service(tmp_path: Path) -> Iterator[ServiceProcess]:
    """`vertebral-cds serve` (dev profile, playground on) on 127.0.0.1 and a free port, its own SQLite."""
    env = {
        "VCDS_PROFILE": "dev",
        "VCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'playground.sqlite3'}",
        "VCDS_PATIENT_HASH_KEY": "playground-browser-test",
        "VCDS_LOG_LEVEL": "WARNING",
    }
    with ServiceProcess(env, log_path=tmp_path / "service.log") as server:
        yield server
