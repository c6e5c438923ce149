"""Headless Chromium (Debian chromium + chromedriver, Selenium) and the service as a real process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.service_process import ServiceProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh headless Chromium; skips without it, except under CI=true, where that is an error."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        reason = (
            "Debian chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options  # noqa: PLC0415 - only when Chromium is there
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a browser or driver
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1300",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console errors, CSP violations
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


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
