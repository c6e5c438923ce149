"""How long to hold an antithrombotic before the procedure, and whether the planned date allows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rules.facts import LabResult, MedicationFact
from rules.thresholds import HoldIntervals

_DEFAULT_HOLD_SOURCE = "S2"
"""Where no interval is configured (aspirin, an unknown antiplatelet): SIR 2019's bleeding-risk advice."""


def hold_source(threshold_field: str | None) -> str:
    """The source id of the document an interval comes from: the threshold's own cited source, so the
    card cites the table the number was read in (AF guideline for DOACs and warfarin, interventional
    spine guidance for heparins and fondaparinux) and never another drug class's."""
    if threshold_field is None:
        return _DEFAULT_HOLD_SOURCE
    extra = HoldIntervals.model_fields[threshold_field].json_schema_extra
    cited = extra.get("source") if isinstance(extra, dict) else None
    return str(cited) if cited else _DEFAULT_HOLD_SOURCE


@dataclass(frozen=True)
class HoldAdvice:
    hours: int | None
    """None when no interval is configured for this drug (e.g. aspirin: never auto-stop)."""
    basis: str
    """Why this interval: the drug and, for DOACs, the renal function it was chosen by."""
    threshold_field: str | None
    also_field: str | None = None
    """A threshold the basis names beside the one that chose the interval (the card lists both)."""

    @property
    def text(self) -> str:
        return duration_text(self.hours)

    @property
    def source_id(self) -> str:
        return hold_source(self.threshold_field)


def duration_text(hours: int | None) -> str:
    if hours is None:
        return "no fixed hold interval"
    if hours % 24 == 0:
        days = hours // 24
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{hours} hours"


def _days(days: int, basis: str, field: str) -> HoldAdvice:
    return HoldAdvice(hours=days * 24, basis=basis, threshold_field=field)


def hold_advice(drug: MedicationFact, holds: HoldIntervals, renal: LabResult | None) -> HoldAdvice:
    """The interval for one drug; DOAC intervals depend on creatinine clearance (ACC/AHA 2023 Table 18)."""
    name = drug.ingredient
    crcl = renal.value if renal is not None else None
    renal_note = renal_text(renal)
    if drug.drug_class == "vka":
        return _days(holds.warfarin_hold_days, f"{name}; check INR on the day", "warfarin_hold_days")
    if name == "apixaban":
        if crcl is not None and crcl <= holds.apixaban_crcl_limit_ml_per_min:
            return _days(holds.apixaban_low_crcl_hold_days, renal_note, "apixaban_low_crcl_hold_days")
        return _days(holds.apixaban_hold_days, renal_note, "apixaban_hold_days")
    if name == "rivaroxaban":
        if crcl is not None and crcl <= holds.rivaroxaban_crcl_limit_ml_per_min:
            return _days(holds.rivaroxaban_low_crcl_hold_days, renal_note, "rivaroxaban_low_crcl_hold_days")
        return _days(holds.rivaroxaban_hold_days, renal_note, "rivaroxaban_hold_days")
    if name in ("edoxaban", "betrixaban"):
        return _days(holds.edoxaban_hold_days, renal_note, "edoxaban_hold_days")
    if name == "dabigatran":
        if crcl is not None and crcl < 30:
            return _days(holds.dabigatran_low_crcl_hold_days, renal_note, "dabigatran_low_crcl_hold_days")
        if crcl is not None and crcl <= 50:
            return _days(
                holds.dabigatran_moderate_crcl_hold_days, renal_note, "dabigatran_moderate_crcl_hold_days"
            )
        return _days(holds.dabigatran_hold_days, renal_note, "dabigatran_hold_days")
    if drug.drug_class == "lmwh":
        # The dose is not read (dosage text and units vary too much to tell prophylactic from therapeutic
        # safely), so the longer, therapeutic hold applies, and the card says so instead of claiming a dose.
        prophylactic = duration_text(holds.lmwh_prophylactic_hold_hours)
        return HoldAdvice(
            holds.lmwh_therapeutic_hold_hours,
            f"{name}, dose not read: the therapeutic-dose hold (at a prophylactic dose, {prophylactic})",
            "lmwh_therapeutic_hold_hours",
            also_field="lmwh_prophylactic_hold_hours",
        )
    if drug.drug_class == "heparin":
        return HoldAdvice(holds.heparin_hold_hours, name, "heparin_hold_hours")
    if drug.drug_class == "fondaparinux":
        return _days(holds.fondaparinux_hold_days, name, "fondaparinux_hold_days")
    if drug.drug_class == "parenteral-thrombin":
        return HoldAdvice(
            holds.parenteral_thrombin_inhibitor_hold_hours, name, "parenteral_thrombin_inhibitor_hold_hours"
        )
    per_antiplatelet = {
        "clopidogrel": "clopidogrel_hold_days",
        "prasugrel": "prasugrel_hold_days",
        "ticagrelor": "ticagrelor_hold_days",
        "ticlopidine": "ticlopidine_hold_days",
        "cilostazol": "cilostazol_dipyridamole_hold_days",
        "dipyridamole": "cilostazol_dipyridamole_hold_days",
    }
    field = per_antiplatelet.get(name)
    if field is not None:
        return _days(int(getattr(holds, field)), name, field)
    return HoldAdvice(hours=None, basis=f"{name}: decide per prescriber", threshold_field=None)


def renal_text(renal: LabResult | None) -> str:
    """The renal function a DOAC interval was chosen by. ACC/AHA Table 18 is keyed on Cockcroft-Gault
    creatinine clearance (mL/min); an eGFR (mL/min/1.73 m²) is a different measure, so when it stands
    in the card says so with both units rather than calling it CrCl."""
    if renal is None:
        return "no recent creatinine clearance: the hold is longer if renal function is reduced"
    if renal.kind == "egfr":
        return (
            f"eGFR {renal.value:.0f} mL/min/1.73 m² used in place of Cockcroft-Gault CrCl (mL/min), "
            "which the table is keyed on"
        )
    return f"CrCl {renal.value:.0f} mL/min (Cockcroft-Gault)"


@dataclass(frozen=True)
class HoldTiming:
    """How the planned date compares with the hold, counted in whole days from today."""

    planned: date
    days_until: int
    hold_days: float

    @property
    def passed(self) -> bool:
        return self.days_until < 0

    @property
    def room(self) -> bool:
        return not self.passed and self.days_until >= self.hold_days

    @property
    def shortfall_text(self) -> str:
        """By how much the planned date is too early: "3 days short", "12 hours short"."""
        missing_hours = round((self.hold_days - max(self.days_until, 0)) * 24)
        return f"{duration_text(missing_hours)} short"


def hold_timing(planned: date | None, today: date, advice: HoldAdvice) -> HoldTiming | None:
    """The planned date against the hold if it starts today; None when either is unknown."""
    if planned is None or advice.hours is None:
        return None
    return HoldTiming(planned=planned, days_until=(planned - today).days, hold_days=advice.hours / 24)


def room_before(planned: date | None, today: date, advice: HoldAdvice) -> bool | None:
    """Whether the planned date leaves time for the hold if it starts today; None if unknown."""
    if planned is None or advice.hours is None:
        return None
    return (planned - today).days * 24 >= advice.hours
