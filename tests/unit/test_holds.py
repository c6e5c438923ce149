"""Hold intervals: what a card may claim about a drug's dose."""

from __future__ import annotations

from rules.facts import Evidence, MedicationFact
from rules.holds import hold_advice
from rules.thresholds import HoldIntervals


def _enoxaparin() -> MedicationFact:
    return MedicationFact(
        ingredient="enoxaparin",
        drug_class="lmwh",
        display="enoxaparin 40 MG/0.4ML",
        matched_by="rxnorm-ingredient",
        evidence=Evidence(reference="MedicationRequest/1", display="enoxaparin 40 MG/0.4ML"),
    )


def test_an_lmwh_gets_the_therapeutic_hold_and_the_card_says_the_dose_was_not_read() -> None:
    holds = HoldIntervals(lmwh_therapeutic_hold_hours=36, lmwh_prophylactic_hold_hours=10)
    advice = hold_advice(_enoxaparin(), holds, None)
    assert advice.hours == 36
    assert advice.threshold_field == "lmwh_therapeutic_hold_hours"
    assert advice.also_field == "lmwh_prophylactic_hold_hours"
    assert "dose not read" in advice.basis
    assert "at a prophylactic dose, 10 hours" in advice.basis


def test_a_prophylactic_hold_in_whole_days_reads_as_days() -> None:
    advice = hold_advice(_enoxaparin(), HoldIntervals(lmwh_prophylactic_hold_hours=24), None)
    assert "at a prophylactic dose, 1 day" in advice.basis
