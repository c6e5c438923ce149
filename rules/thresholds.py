"""Every number the rules decide with, as one frozen, validated model an admin can change.

Each field carries its unit (in the name and in `unit`), bounds, a description and the source of
its default (ids from `rules.sources`), plus whether that default was verified. The README table of
thresholds is checked against this model by a test, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Indicator = Literal["info", "warning", "critical"]
Verification = Literal["verified", "partial", "unverified"]


def threshold(
    default: Any,
    *,
    unit: str,
    description: str,
    source: str,
    verification: Verification,
    ge: float | None = None,
    le: float | None = None,
) -> Any:
    """A field with the metadata the admin page, the README table and the cards show."""
    return Field(
        default=default,
        ge=ge,
        le=le,
        description=description,
        json_schema_extra={"unit": unit, "source": source, "verification": verification},
    )


class RuleSetting(BaseModel):
    """Per-rule switch: off, or with its indicator forced (None keeps the rule's own logic)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    enabled: bool = True
    indicator: Indicator | None = None


_RULE_AS_SHIPPED = RuleSetting()
"""A rule with no setting of its own: on, with its own indicator (frozen, so one instance serves all)."""

RULE_IDS: tuple[str, ...] = (
    "anticoagulant-active",
    "antiplatelet-active",
    "multiple-antithrombotics",
    "inr-high",
    "platelets-low",
    "coagulation-labs-missing",
    "bleeding-disorder",
    "spinal-infection",
    "systemic-infection",
    "pregnancy",
    "neurologic-compromise",
    "cement-contrast-allergy",
    "too-many-levels",
    "copd-multilevel",
    "upper-thoracic-level",
    "level-count-not-stated",
    "eligibility",
    "osteoporosis-follow-up",
    "neoplastic-indication",
    "data-unavailable",
    "other-patient-data",
    "patient-deceased",
)


class HoldIntervals(BaseModel):
    """Days to hold a drug before a high-bleeding-risk procedure (clinical-rules.md §6)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    warfarin_hold_days: int = threshold(
        5,
        unit="days",
        ge=0,
        le=30,
        source="S4",
        verification="verified",
        description="Warfarin (and other VKAs): days off before the procedure; check INR on the day.",
    )
    apixaban_hold_days: int = threshold(
        2,
        unit="days",
        ge=0,
        le=14,
        source="S4",
        verification="verified",
        description="Apixaban with CrCl above the renal limit.",
    )
    apixaban_low_crcl_hold_days: int = threshold(
        3,
        unit="days",
        ge=0,
        le=14,
        source="S4",
        verification="verified",
        description="Apixaban with CrCl at or below the renal limit (adds a day or more).",
    )
    apixaban_crcl_limit_ml_per_min: float = threshold(
        25,
        unit="mL/min",
        ge=0,
        le=200,
        source="S4",
        verification="verified",
        description="Creatinine clearance at or below which apixaban needs the longer hold.",
    )
    rivaroxaban_hold_days: int = threshold(
        2,
        unit="days",
        ge=0,
        le=14,
        source="S4",
        verification="verified",
        description="Rivaroxaban with CrCl above the renal limit.",
    )
    rivaroxaban_low_crcl_hold_days: int = threshold(
        3,
        unit="days",
        ge=0,
        le=14,
        source="S4",
        verification="unverified",
        description="Rivaroxaban with CrCl 15-30 mL/min.",
    )
    rivaroxaban_crcl_limit_ml_per_min: float = threshold(
        30,
        unit="mL/min",
        ge=0,
        le=200,
        source="S4",
        verification="verified",
        description="Creatinine clearance at or below which rivaroxaban needs the longer hold.",
    )
    edoxaban_hold_days: int = threshold(
        2,
        unit="days",
        ge=0,
        le=14,
        source="S4",
        verification="verified",
        description="Edoxaban (CrCl above 15 mL/min).",
    )
    dabigatran_hold_days: int = threshold(
        2,
        unit="days",
        ge=0,
        le=14,
        source="S4",
        verification="verified",
        description="Dabigatran with CrCl above 50 mL/min.",
    )
    dabigatran_moderate_crcl_hold_days: int = threshold(
        4,
        unit="days",
        ge=0,
        le=14,
        source="S4",
        verification="verified",
        description="Dabigatran with CrCl 30-50 mL/min.",
    )
    dabigatran_low_crcl_hold_days: int = threshold(
        5,
        unit="days",
        ge=0,
        le=14,
        source="S4",
        verification="unverified",
        description="Dabigatran with CrCl below 30 mL/min.",
    )
    lmwh_therapeutic_hold_hours: int = threshold(
        24,
        unit="hours",
        ge=0,
        le=96,
        source="S3",
        verification="unverified",
        description="Enoxaparin/dalteparin/tinzaparin at therapeutic dose.",
    )
    lmwh_prophylactic_hold_hours: int = threshold(
        12,
        unit="hours",
        ge=0,
        le=96,
        source="S3",
        verification="unverified",
        description=(
            "Enoxaparin/dalteparin/tinzaparin at prophylactic dose. The dose is not read from the order, "
            "so the card advises the therapeutic hold and names this one beside it."
        ),
    )
    heparin_hold_hours: int = threshold(
        6,
        unit="hours",
        ge=0,
        le=48,
        source="S3",
        verification="unverified",
        description="Unfractionated heparin (IV or SC); interval as in the interventional spine guidance "
        "(ASRA 2018).",
    )
    fondaparinux_hold_days: int = threshold(
        4,
        unit="days",
        ge=0,
        le=14,
        source="S3",
        verification="unverified",
        description="Fondaparinux (conservative interval).",
    )
    parenteral_thrombin_inhibitor_hold_hours: int = threshold(
        4,
        unit="hours",
        ge=0,
        le=48,
        source="S2",
        verification="unverified",
        description="Argatroban, bivalirudin, desirudin (inpatient; check coagulation).",
    )
    clopidogrel_hold_days: int = threshold(
        5,
        unit="days",
        ge=0,
        le=21,
        source="S2",
        verification="unverified",
        description="Clopidogrel; only after cardiology review inside stent windows.",
    )
    prasugrel_hold_days: int = threshold(
        7,
        unit="days",
        ge=0,
        le=21,
        source="S2",
        verification="unverified",
        description="Prasugrel; only after cardiology review.",
    )
    ticagrelor_hold_days: int = threshold(
        5,
        unit="days",
        ge=0,
        le=21,
        source="S2",
        verification="unverified",
        description="Ticagrelor; only after cardiology review.",
    )
    ticlopidine_hold_days: int = threshold(
        10,
        unit="days",
        ge=0,
        le=21,
        source="S3",
        verification="unverified",
        description="Ticlopidine.",
    )
    cilostazol_dipyridamole_hold_days: int = threshold(
        2,
        unit="days",
        ge=0,
        le=14,
        source="S3",
        verification="unverified",
        description="Cilostazol or dipyridamole.",
    )


_AT_LEAST = "{high} must be at least {low}"
ORDERED_PAIRS: tuple[tuple[str, str, str], ...] = (
    # (the lower, the higher, the message): pairs where one must not be below the other, checked
    # together so that a change to either is refused with both named (clinical-rules.md §6, §2, §3).
    ("inr_warning_max", "inr_critical_max", _AT_LEAST),  # a warning on the safe side of critical
    ("max_levels_severe_lung", "max_levels_per_session", "{low} must not exceed {high}"),
    ("pain_nrs_min_outpatient", "pain_nrs_min_inpatient", _AT_LEAST),
    # each DOAC's hold at low renal function is at least its hold at normal function
    ("hold_intervals.apixaban_hold_days", "hold_intervals.apixaban_low_crcl_hold_days", _AT_LEAST),
    ("hold_intervals.rivaroxaban_hold_days", "hold_intervals.rivaroxaban_low_crcl_hold_days", _AT_LEAST),
    ("hold_intervals.dabigatran_hold_days", "hold_intervals.dabigatran_moderate_crcl_hold_days", _AT_LEAST),
    (
        "hold_intervals.dabigatran_moderate_crcl_hold_days",
        "hold_intervals.dabigatran_low_crcl_hold_days",
        _AT_LEAST,
    ),
    # a therapeutic LMWH dose is held at least as long as a prophylactic one
    ("hold_intervals.lmwh_prophylactic_hold_hours", "hold_intervals.lmwh_therapeutic_hold_hours", _AT_LEAST),
)


class Thresholds(BaseModel):
    """The rule thresholds in force; a version of these is stored for every change."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    max_levels_per_session: int = threshold(
        3,
        unit="levels",
        ge=1,
        le=10,
        source="S1",
        verification="partial",
        description="More levels than this in one session is a relative contraindication (CMS LCD).",
    )
    max_levels_severe_lung: int = threshold(
        2,
        unit="levels",
        ge=1,
        le=10,
        source="INSTITUTIONAL",
        verification="unverified",
        description="Lung limit: with COPD or severe lung disease, more levels than this in one session "
        "raise cement/fat embolism and respiratory risk (institutional; S12 supportive).",
    )
    fev1_severe_percent_predicted: float = threshold(
        50,
        unit="% predicted",
        ge=10,
        le=100,
        source="S13",
        verification="partial",
        description="FEV1 below this counts as severe lung disease (GOLD grade 3).",
    )
    spo2_severe_percent: float = threshold(
        90,
        unit="%",
        ge=50,
        le=100,
        source="S13",
        verification="unverified",
        description="Resting SpO2 below this counts as severe lung disease.",
    )
    inr_warning_max: float = threshold(
        1.5,
        unit="INR",
        ge=0.8,
        le=5,
        source="S2",
        verification="partial",
        description="Latest INR above this gives a warning (SIR 2019 high-risk range 1.5-1.8).",
    )
    inr_critical_max: float = threshold(
        1.8,
        unit="INR",
        ge=0.8,
        le=6,
        source="S2",
        verification="partial",
        description="Latest INR above this is critical.",
    )
    platelets_min_10e9_per_l: float = threshold(
        50,
        unit="10^9/L",
        ge=5,
        le=200,
        source="S2",
        verification="partial",
        description="Latest platelet count below this is critical (consider transfusion).",
    )
    inr_lookback_days: int = threshold(
        7,
        unit="days",
        ge=1,
        le=90,
        source="INSTITUTIONAL",
        verification="unverified",
        description="An INR older than this is stale.",
    )
    platelets_lookback_days: int = threshold(
        30,
        unit="days",
        ge=1,
        le=180,
        source="INSTITUTIONAL",
        verification="unverified",
        description="A platelet count older than this is stale.",
    )
    renal_lookback_days: int = threshold(
        90,
        unit="days",
        ge=1,
        le=365,
        source="INSTITUTIONAL",
        verification="unverified",
        description="A creatinine clearance or eGFR older than this is not used for DOAC hold times.",
    )
    pain_lookback_days: int = threshold(
        30,
        unit="days",
        ge=1,
        le=180,
        source="INSTITUTIONAL",
        verification="unverified",
        description="A pain score older than this does not count.",
    )
    lung_function_lookback_days: int = threshold(
        730,
        unit="days",
        ge=1,
        le=3650,
        source="INSTITUTIONAL",
        verification="unverified",
        description="FEV1 results older than this do not count.",
    )
    spo2_lookback_days: int = threshold(
        30,
        unit="days",
        ge=1,
        le=365,
        source="INSTITUTIONAL",
        verification="unverified",
        description="A resting SpO2 older than this does not count as evidence of severe lung disease.",
    )
    pain_nrs_min_outpatient: float = threshold(
        5,
        unit="NRS 0-10",
        ge=0,
        le=10,
        source="S1",
        verification="partial",
        description="Minimum pain score despite conservative care, outpatient (CMS LCD).",
    )
    pain_nrs_min_inpatient: float = threshold(
        8,
        unit="NRS 0-10",
        ge=0,
        le=10,
        source="S1",
        verification="partial",
        description="Minimum pain score for a hospitalised patient (CMS LCD).",
    )
    conservative_care_min_weeks: int = threshold(
        4,
        unit="weeks",
        ge=0,
        le=26,
        source="S10",
        verification="partial",
        description="Weeks of documented non-surgical management before augmentation (eviCore; BCBSA 6).",
    )
    imaging_lookback_days: int = threshold(
        180,
        unit="days",
        ge=1,
        le=730,
        source="S10",
        verification="partial",
        description="MRI or CT of the spine older than this does not confirm the fracture.",
    )
    fracture_age_warning_days: int = threshold(
        180,
        unit="days",
        ge=1,
        le=3650,
        source="S11",
        verification="unverified",
        description="A fracture older than this may be healed: confirm edema on MRI.",
    )
    kyphoplasty_height_restoration_days: int = threshold(
        90,
        unit="days",
        ge=1,
        le=3650,
        source="S11",
        verification="unverified",
        description="After this, kyphoplasty is less likely to restore height (information only).",
    )
    dxa_lookback_days: int = threshold(
        730,
        unit="days",
        ge=1,
        le=3650,
        source="INSTITUTIONAL",
        verification="unverified",
        description="No DXA within this many days triggers the osteoporosis follow-up (Medicare: 24 months).",
    )
    t_score_osteoporosis_max: float = threshold(
        -2.5,
        unit="T-score",
        ge=-6,
        le=0,
        source="WHO",
        verification="partial",
        description="A T-score at or below this is osteoporosis.",
    )
    hold_intervals: HoldIntervals = Field(
        default_factory=HoldIntervals,
        description="Pre-procedure hold intervals per drug (high bleeding risk).",
    )
    procedure_snomed_codes: tuple[str, ...] = Field(
        default=(),
        description="SNOMED CT concept ids a site uses for vertebroplasty/kyphoplasty orders. Empty by "
        "default: no verified concept id was found (clinical-rules.md §1a).",
        json_schema_extra={
            "unit": "SNOMED CT codes",
            "source": "INSTITUTIONAL",
            "verification": "unverified",
        },
    )
    rules: dict[str, RuleSetting] = Field(
        default_factory=lambda: {rule_id: RuleSetting() for rule_id in RULE_IDS},
        description="Per rule: enabled, and an indicator that overrides the rule's own.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Thresholds:
        problems: list[str] = []
        for low, high, message in ORDERED_PAIRS:
            if self._value(high) < self._value(low):
                problems.append(message.format(low=low, high=high))
        unknown = sorted(set(self.rules) - set(RULE_IDS))
        if unknown:
            problems.append(f"unknown rule ids in rules: {', '.join(unknown)}")
        for code in self.procedure_snomed_codes:
            if not code.isdigit() or not 6 <= len(code) <= 18:
                problems.append(f"procedure_snomed_codes: {code!r} is not a SNOMED CT concept id")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _value(self, path: str) -> float:
        node: Any = self
        for name in path.split("."):
            node = getattr(node, name)
        return float(node)

    def rule(self, rule_id: str) -> RuleSetting:
        return self.rules.get(rule_id, _RULE_AS_SHIPPED)


DEFAULT_THRESHOLDS = Thresholds()
