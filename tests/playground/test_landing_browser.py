"""The landing page and the API docs (/docs) in real headless Chromium with no internet.

Chromium gets a proxy that goes nowhere (127.0.0.1:9) for every address but the loopback, so anything
the pages fetched from a CDN would fail: Swagger UI must render from the service's own assets,
and every resource the browser loaded must come from the service.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testing.service_process import ServiceProcess
from tests.support.browser import headless_chromium

pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.integration

OFFLINE = ("--proxy-server=http://127.0.0.1:9",)  # loopback bypasses a proxy implicitly


@pytest.fixture
def offline_chromium(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with headless_chromium(tmp_path / "chromium-profile", "1280,900", monkeypatch, OFFLINE) as driver:
        yield driver


def _resources(driver: Any) -> list[str]:
    names: list[str] = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    return names


def _severe_console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_the_landing_page_says_what_this_is_and_every_link_opens(
    offline_chromium: Any, playground_service: ServiceProcess
) -> None:
    driver = offline_chromium
    driver.get(playground_service.base_url + "/")
    assert "vertebral augmentation" in driver.find_element(By.TAG_NAME, "h1").text.lower()
    links = {a.text: a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "#links a")}
    assert {"Playground", "Admin", "Discovery", "API docs", "Health", "Readiness"} <= set(links)
    for label, href in links.items():
        driver.get(href)
        assert "404" not in driver.title, label
        assert "not-found" not in driver.find_element(By.TAG_NAME, "body").text, label
    errors = _severe_console_errors(driver)
    assert errors == [], errors


def test_the_api_docs_render_from_the_service_itself(
    offline_chromium: Any, playground_service: ServiceProcess
) -> None:
    driver = offline_chromium
    base = playground_service.base_url
    driver.get(base + "/docs")
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"))
    assert "vertebral-cds" in driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
    paths = {e.text for e in driver.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert "/cds-services" in paths
    assert all(name.startswith(base) for name in _resources(driver)), _resources(driver)
