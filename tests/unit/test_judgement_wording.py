"""Unit checks for issue 16's helpers: advice-first summaries, hold timing, hold sources, renal wording."""

from __future__ import annotations

from datetime import date

import pytest

from cards.models import SUMMARY_MAX_CHARS
from cards.wording import advise, short
from rules.facts import Evidence, LabResult
from rules.holds import HoldAdvice, hold_source, hold_timing, renal_text

TODAY = date(2026, 11, 21)


def test_advise_shortens_the_facts_never_the_advice() -> None:
    advice = "Correct the bleeding disorder before the procedure"
    summary = advise(advice, "word " * 60)
    assert summary.startswith(f"{advice}: ")
    assert len(summary) <= SUMMARY_MAX_CHARS
    assert summary.endswith("…")


def test_advise_keeps_a_short_summary_whole() -> None:
    assert advise("Order INR", "none current") == "Order INR: none current"


def test_short_cuts_a_long_display_at_a_word() -> None:
    display = "Age-related osteoporosis with current pathological fracture, vertebra(e), initial encounter"
    cut = short(display)
    assert len(cut) <= 48
    assert cut.endswith("…")
    assert display.startswith(cut[:-1])


@pytest.mark.parametrize(
    ("hours", "planned", "room", "passed", "shortfall"),
    [
        (48, date(2026, 11, 22), False, False, "1 day short"),
        (48, date(2026, 11, 23), True, False, None),
        (6, date(2026, 11, 21), False, False, "6 hours short"),
        (120, date(2026, 11, 11), False, True, "5 days short"),
    ],
)
def test_hold_timing_says_whether_and_by_how_much(
    hours: int, planned: date, room: bool, passed: bool, shortfall: str | None
) -> None:
    timing = hold_timing(planned, TODAY, HoldAdvice(hours=hours, basis="x", threshold_field=None))
    assert timing is not None
    assert (timing.room, timing.passed) == (room, passed)
    if shortfall is not None:
        assert timing.shortfall_text == shortfall


def test_no_timing_without_a_date_or_an_interval() -> None:
    assert hold_timing(None, TODAY, HoldAdvice(hours=48, basis="x", threshold_field=None)) is None
    assert hold_timing(TODAY, TODAY, HoldAdvice(hours=None, basis="x", threshold_field=None)) is None


@pytest.mark.parametrize(
    ("field", "source_id"),
    [
        ("apixaban_hold_days", "S4"),
        ("warfarin_hold_days", "S4"),
        ("lmwh_therapeutic_hold_hours", "S3"),
        ("heparin_hold_hours", "S3"),
        ("fondaparinux_hold_days", "S3"),
        ("clopidogrel_hold_days", "S2"),
        (None, "S2"),
    ],
)
def test_each_hold_cites_the_source_of_its_own_threshold(field: str | None, source_id: str) -> None:
    assert hold_source(field) == source_id


def _renal(kind: str, value: float) -> LabResult:
    evidence = Evidence(reference="Observation/r", display="renal")
    return LabResult(kind=kind, value=value, unit="mL/min", effective=TODAY, evidence=evidence)


def test_an_egfr_is_named_as_an_egfr_with_both_units() -> None:
    text = renal_text(_renal("egfr", 28.4))
    assert "eGFR 28 mL/min/1.73 m²" in text
    assert "Cockcroft-Gault CrCl (mL/min)" in text


def test_a_creatinine_clearance_is_named_as_crcl() -> None:
    assert renal_text(_renal("creatinine-clearance", 40)) == "CrCl 40 mL/min (Cockcroft-Gault)"
