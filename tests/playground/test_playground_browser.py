"""The playground in real headless Chromium, against the service running as a real uvicorn process.

Choose the COPD demo patient, build a three-level kyphoplasty order, fire order-select through the real
endpoint, see the copd-multilevel warning and its staging suggestion, accept it (the order form follows
the suggested update), dismiss another card with a reason, and find both feedback items stored in the
service's database. A screenshot goes to VCDS_SCREENSHOT_DIR (default: the test's temporary folder).
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from testing.service_process import ServiceProcess

pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.integration

WAIT_SECONDS = 20


def _wait(driver: Any, condition: Any) -> Any:
    return WebDriverWait(driver, WAIT_SECONDS).until(condition)


def _card(driver: Any, rule: str) -> Any:
    return _wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, f'.cds-card[data-rule="{rule}"]'))


def _stored_feedback(database: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute(
            "SELECT card_uuid, rule, outcome, accepted_suggestions, override_reason_code FROM feedback"
        ).fetchall()
    return [dict(row) for row in rows]


def test_a_clinician_builds_an_order_for_the_copd_patient_sees_the_warning_and_accepts_the_staging(
    chromium: Any, playground_service: ServiceProcess, tmp_path: Path
) -> None:
    driver = chromium
    driver.get(f"{playground_service.base_url}/playground")
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")

    # choose a demo patient: the bundle, the patient banner and the story's order appear
    Select(driver.find_element(By.ID, "patient-select")).select_by_value("copd-multilevel")
    _wait(driver, lambda d: "dorothy-kaminski" in d.find_element(By.ID, "bundle").get_attribute("value"))
    assert "Dorothy Kaminski" in driver.find_element(By.ID, "patient-banner").text

    # build the order by hand: kyphoplasty, T11 T12 L1 from the level chips, two weeks from today
    driver.find_element(By.ID, "procedure-vertebroplasty").click()
    driver.find_element(By.ID, "procedure-kyphoplasty").click()
    driver.find_element(By.ID, "levels").clear()
    for level in ("T11", "T12", "L1"):
        driver.find_element(By.CSS_SELECTOR, f'.chip[data-level="{level}"]').click()
    assert driver.find_element(By.ID, "levels").get_attribute("value") == "T11, T12, L1"
    planned = (date.today() + timedelta(days=14)).isoformat()
    driver.execute_script("arguments[0].value = arguments[1]", driver.find_element(By.ID, "planned"), planned)

    driver.find_element(By.ID, "fire-select").click()
    card = _card(driver, "copd-multilevel")

    # the warning, rendered as an EHR shows it, with its suggestion
    assert "indicator-warning" in card.get_attribute("class")
    assert card.find_element(By.CSS_SELECTOR, ".badge").text.lower() == "warning"
    assert "3 levels" in card.find_element(By.CSS_SELECTOR, ".summary").text
    staging = next(
        b
        for b in card.find_elements(By.CSS_SELECTOR, "button.suggestion")
        if b.text.startswith("Stage: treat 2 levels now (lung limit)")
    )
    suggestion_uuid = staging.get_attribute("data-uuid")
    card_uuid = card.get_attribute("data-uuid")
    assert suggestion_uuid
    assert card_uuid
    assert card.find_elements(By.CSS_SELECTOR, ".links a")
    assert len(card.find_elements(By.CSS_SELECTOR, "select.override-reason option")) > 1
    assert driver.find_element(By.CSS_SELECTOR, '.cds-card[data-rule="eligibility"]')

    # the raw exchange: the request the page sent through the real endpoint, and the response
    sent = json.loads(driver.find_element(By.ID, "raw-request").text)
    assert sent["hook"] == "order-select"
    order = sent["context"]["draftOrders"]["entry"][0]["resource"]
    assert [s["coding"][0]["display"] for s in order["bodySite"]] == [
        "T11 vertebra",
        "T12 vertebra",
        "L1 vertebra",
    ]
    assert order["code"]["coding"][0]["code"] == "22513"
    assert order["occurrenceDateTime"] == planned
    answered = json.loads(driver.find_element(By.ID, "raw-response").text)
    assert "copd-multilevel" in [c["source"]["topic"]["code"] for c in answered["cards"]]
    assert "HTTP 200" in driver.find_element(By.ID, "raw-response-status").text

    # accept the staging suggestion: feedback is sent, and the order follows the update
    staging.click()
    _wait(driver, lambda d: _card(d, "copd-multilevel").get_attribute("data-feedback") == "stored")
    assert driver.find_element(By.ID, "levels").get_attribute("value") == "T11, T12"
    assert "Treat T11, T12 now" in driver.find_element(By.ID, "applied-list").text
    assert '"outcome": "accepted"' in driver.find_element(By.ID, "raw-feedback-request").text

    # dismiss another card with a reason
    info = _card(driver, "eligibility")
    Select(info.find_element(By.CSS_SELECTOR, "select.override-reason")).select_by_visible_text(
        "Already addressed"
    )
    info.find_element(By.CSS_SELECTOR, "button.dismiss").click()
    _wait(driver, lambda d: _card(d, "eligibility").get_attribute("data-feedback") == "stored")

    screenshots = Path(os.environ.get("VCDS_SCREENSHOT_DIR", tmp_path))
    screenshots.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(screenshots / "playground-copd-accepted.png"))

    stored = {row["rule"]: row for row in _stored_feedback(tmp_path / "playground.sqlite3")}
    assert stored["copd-multilevel"]["outcome"] == "accepted"
    assert stored["copd-multilevel"]["card_uuid"] == card_uuid
    assert json.loads(stored["copd-multilevel"]["accepted_suggestions"]) == [suggestion_uuid]
    assert stored["eligibility"]["outcome"] == "overridden"
    assert stored["eligibility"]["override_reason_code"] == "action-completed"  # CDS Hooks 3.0 code

    problems = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert problems == [], "console errors (a CSP violation, say)"


def test_a_pasted_bundle_with_an_impossible_order_shows_the_reason(
    chromium: Any, playground_service: ServiceProcess
) -> None:
    driver = chromium
    driver.get(f"{playground_service.base_url}/playground")
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "id": "pasted-1", "gender": "female"}}],
    }
    driver.execute_script(
        "arguments[0].value = arguments[1]", driver.find_element(By.ID, "bundle"), json.dumps(bundle)
    )
    driver.find_element(By.ID, "levels").clear()
    driver.find_element(By.ID, "levels").send_keys("C5")
    driver.find_element(By.ID, "fire-select").click()
    status = _wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#call-status.error"))
    assert "thoracic and lumbar levels only" in status.text
    assert driver.find_elements(By.CSS_SELECTOR, ".cds-card") == []
