"""Golden cards: the whole response for a few representative scenarios, compared exactly.

The clock is fixed (2026-11-21T09:00Z) and ids count up, so a response is byte-for-byte stable. When
a change to wording or suggestions is intended, regenerate with `VCDS_UPDATE_GOLDEN=1 pytest
tests/scenarios/test_golden_cards.py` and review the diff of `golden/` like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.scenarios.test_clinical_scenarios import run_scenario, scenario

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("VCDS_UPDATE_GOLDEN") == "1"
GOLDEN_SCENARIOS = (
    "anticoagulant-apixaban-ingredient",
    "copd-j44-9-three-levels",
    "spinal-infection-osteomyelitis",
    "eligibility-imaging-missing",
    "neoplastic-myeloma",
    "eligibility-all-met",
    "combined-warfarin-clopidogrel-critical",
    "hold-apixaban-planned-in-1-day-critical",
)


def _text(response: dict[str, Any]) -> str:
    return json.dumps(response, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("name", GOLDEN_SCENARIOS)
def test_response_matches_the_golden_file(name: str, tmp_path: Path) -> None:
    response = run_scenario(scenario(name), tmp_path)
    golden = GOLDEN_DIR / f"{name}.json"
    if UPDATE:
        GOLDEN_DIR.mkdir(exist_ok=True)
        golden.write_text(_text(response), encoding="utf-8")
    assert golden.exists(), f"no golden file {golden.name}: run with VCDS_UPDATE_GOLDEN=1 and review it"
    assert response == json.loads(golden.read_text(encoding="utf-8"))


def test_every_golden_file_has_its_scenario() -> None:
    """A renamed scenario must not leave a stale golden file behind."""
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.json")) == sorted(GOLDEN_SCENARIOS)
