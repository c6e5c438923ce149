"""The admin page in real headless Chromium (Debian's chromium + chromedriver, driven by Selenium).

Log in, see the thresholds, enter a bad value and see the message, preview, save a good value, see it in
the history, and see a hook call's cards change. Screenshots go to VCDS_SCREENSHOT_DIR (default: the
test's temporary folder). Skips when Chromium is absent, except under CI=true, where that is an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testing.service_process import ServiceProcess
from tests.support.app import sample
from tests.support.browser import headless_chromium

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

TOKEN = "editor-token-for-the-browser-test"

pytestmark = pytest.mark.integration


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    with headless_chromium(tmp_path / "chromium-profile", "1280,2000", monkeypatch) as driver:
        yield driver


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {
        "VCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'browser.sqlite3'}",
        "VCDS_ADMIN_TOKEN": TOKEN,
        "VCDS_PATIENT_HASH_KEY": "browser-test-key",
        "VCDS_LOG_LEVEL": "WARNING",
    }
    with ServiceProcess(env, log_path=tmp_path / "service.log") as server:
        yield server


def hook_cards(driver: WebDriver) -> dict[str, int]:
    """A hook call made by the browser itself (fetch, same origin): rule -> thresholdsVersion."""
    script = """
        const done = arguments[arguments.length - 1];
        fetch("/cds-services/vertebral-augmentation-select", {
            method: "POST", headers: {"Content-Type": "application/json"}, body: arguments[0]})
          .then(r => r.json()).then(body => done(JSON.stringify(body)), e => done("error: " + e));
    """
    result = driver.execute_async_script(script, json.dumps(sample("order-select.json")))
    cards: list[dict[str, Any]] = json.loads(result)["cards"]
    return {c["source"]["topic"]["code"]: c["extension"]["vertebral-cds"]["thresholdsVersion"] for c in cards}


def test_an_admin_changes_a_threshold_in_the_browser(
    browser: WebDriver, service: ServiceProcess, tmp_path: Path
) -> None:
    shots = Path(os.environ.get("VCDS_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(browser, 20)
    browser.set_script_timeout(20)

    # Log in.
    browser.get(service.base_url + "/admin")
    wait.until(expected_conditions.presence_of_element_located((By.ID, "token")))
    assert browser.current_url.endswith("/admin/login")
    browser.find_element(By.ID, "name").send_keys("Dr. Browser")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login").click()

    # See the thresholds, each with its description, unit, bounds and source.
    wait.until(expected_conditions.presence_of_element_located((By.ID, "thresholds-form")))
    assert browser.find_element(By.ID, "who").text == "Dr. Browser · editor"
    assert browser.find_element(By.ID, "current-version").text == "1"
    row = browser.find_element(By.ID, "row-max_levels_severe_lung")
    assert "COPD" in row.text
    assert "levels" in row.text
    assert "at least 1, at most 10" in row.text
    assert "INSTITUTIONAL" in row.text
    assert hook_cards(browser)["copd-multilevel"] == 1
    browser.save_screenshot(str(shots / "1-thresholds.png"))

    # A bad value: the message appears beside the field while typing, and again from the server on save.
    field = browser.find_element(By.ID, "f-max_levels_severe_lung")
    field.clear()
    field.send_keys("0")
    message = browser.find_element(By.ID, "e-max_levels_severe_lung")
    wait.until(lambda _: message.text == "must be at least 1 levels")
    browser.find_element(By.ID, "reason").send_keys("COPD patients tolerate three levels here")
    browser.find_element(By.ID, "save").click()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "problem")))
    assert "Nothing was saved" in browser.find_element(By.ID, "problem").text
    assert browser.find_element(By.ID, "e-max_levels_severe_lung").text == "must be at least 1 levels"
    browser.save_screenshot(str(shots / "2-bad-value.png"))

    # A good value: preview first, on the saved cases.
    field = browser.find_element(By.ID, "f-max_levels_severe_lung")
    field.clear()
    field.send_keys("3")
    assert browser.find_element(By.ID, "e-max_levels_severe_lung").text == ""
    browser.find_element(By.ID, "preview-button").click()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "preview")))
    case = browser.find_element(By.CSS_SELECTOR, '[data-case="package/copd-three-levels-kyphoplasty"]')
    vanishes = case.find_element(By.CSS_SELECTOR, '[data-rule="copd-multilevel"]')
    assert vanishes.get_attribute("data-kind") == "vanishes"
    assert "Vanishes" in vanishes.text
    browser.save_screenshot(str(shots / "3-preview.png"))

    # Save it.
    assert browser.find_element(By.ID, "f-max_levels_severe_lung").get_attribute("value") == "3"
    browser.find_element(By.ID, "save").click()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "notice")))
    assert "Saved as version 2" in browser.find_element(By.ID, "notice").text
    assert browser.find_element(By.ID, "current-version").text == "2"
    browser.save_screenshot(str(shots / "4-saved.png"))

    # The next hook call decides with version 2: the COPD card is gone.
    after = hook_cards(browser)
    assert "copd-multilevel" not in after
    assert set(after.values()) == {2}

    # The history shows the change.
    browser.get(service.base_url + "/admin/history")
    version = wait.until(expected_conditions.presence_of_element_located((By.ID, "version-2")))
    assert "Dr. Browser" in version.text
    assert "COPD patients tolerate three levels here" in version.text
    assert "max_levels_severe_lung: 2 → 3" in version.text
    browser.save_screenshot(str(shots / "5-history.png"))
