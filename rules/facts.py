"""What the rules know about a patient and the order: plain values, no FHIR, no I/O.

`fhir_mappings` turns FHIR JSON into these; the rules read nothing else. Every fact keeps the
`Evidence` it came from, so a card can say *why* ("Condition/12, onset 2026-10-02").
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Fact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Evidence(_Fact):
    """One resource a fact rests on."""

    reference: str
    """Relative reference such as `Condition/123` (or `contained` for a resource without id)."""
    display: str
    recorded: date | None = None


class DataCategory(StrEnum):
    """The kinds of data the rules read; a gap in one makes some checks impossible."""

    PATIENT = "patient"
    CONDITIONS = "conditions"
    OBSERVATIONS = "observations"
    MEDICATIONS = "medications"
    ALLERGIES = "allergies"
    IMAGING = "imaging"
    ENCOUNTER = "encounter"


class DataGap(_Fact):
    """Data that could not be read, and why; rules that need it answer 'unknown'."""

    category: DataCategory
    reason: str


class ParseIssue(_Fact):
    """A resource that was skipped because it could not be read."""

    reference: str
    problem: str


UnreadableKind = Literal["medication", "lab", "condition"]


class Unreadable(_Fact):
    """A record the rules needed but could not read: said in the data-unavailable card, never guessed."""

    kind: UnreadableKind
    reference: str
    what: str
    """What could not be read, in plain words and without patient data (it is also logged and stored)."""


LevelSource = Literal["body site", "one order per level", "add-on code", "quantity", "order text"]


class LevelOrigin(_Fact):
    """One vertebra the order counts, and where the order says it."""

    level: str
    source: LevelSource


ProcedureKind = Literal["vertebroplasty", "kyphoplasty", "vertebral-augmentation"]
SpineRegion = Literal["cervicothoracic", "thoracic", "lumbar", "lumbosacral", "thoracolumbar"]


class DraftOrder(_Fact):
    """The vertebral augmentation being ordered, merged over every matching draft request."""

    references: tuple[str, ...]
    procedure: ProcedureKind
    region: SpineRegion | None = None
    levels: tuple[str, ...] = ()
    """Named vertebrae (e.g. `T12`, `L1`) when the order says which; may be shorter than level_count."""
    level_origins: tuple[LevelOrigin, ...] = ()
    """Each named level with where it came from (structured sources outrank the order's text)."""
    level_count_source: LevelSource | None = None
    """What the level count rests on; None when nothing said it and one level is assumed."""
    level_count: int = 1
    level_count_stated: bool = True
    """False when nothing in the order says how many levels (no coded or named level, quantity, add-on
    code, or second order): `level_count` is then an assumed 1, and the limits resting on it go unchecked."""
    planned_date: date | None = None
    codes: tuple[str, ...] = ()
    """`system|code` of the procedure codes the order carries."""
    is_demo_stand_in: bool = False
    """True when a spine *imaging* order was accepted in place of a real augmentation order (sandbox demo)."""
    display: str = "vertebral augmentation"


class ConditionFact(_Fact):
    """An active, not refuted diagnosis, with the code-set groups its code belongs to."""

    groups: frozenset[str]
    code: str
    system: str
    display: str
    evidence: Evidence
    onset: date | None = None
    abated: date | None = None
    """When the record says the condition abated (date.min: abated, date unknown); None: not abated."""
    from_text: bool = False
    """True when only the entry's free text named the condition (no code the service knows)."""


LabKind = Literal[
    "inr",
    "platelets",
    "pain-nrs",
    "fev1-percent-predicted",
    "fev1-fvc-ratio",
    "spo2",
    "t-score",
    "egfr",
    "creatinine-clearance",
    "hcg",
    "pregnancy-status",
    "height-loss-percent",
    "disability-rdq",
]


class LabResult(_Fact):
    """One observation value in the unit the rules use (see `fhir_mappings.observations`)."""

    kind: LabKind
    value: float
    unit: str
    effective: date
    evidence: Evidence
    positive: bool | None = None
    """For qualitative results (hCG): True/False when the result says so."""
    comparator: Literal["<", "<=", ">", ">="] | None = None
    """A result sent as "<1.0" or ">500": `value` is then a bound, not the measured value."""


DrugClass = Literal[
    "vka",
    "doac-xa",
    "doac-thrombin",
    "parenteral-thrombin",
    "heparin",
    "lmwh",
    "fondaparinux",
    "p2y12",
    "aspirin",
    "other-antiplatelet",
    "osteoporosis-therapy",
    "analgesic",
]

ANTICOAGULANT_CLASSES: frozenset[str] = frozenset(
    {"vka", "doac-xa", "doac-thrombin", "parenteral-thrombin", "heparin", "lmwh", "fondaparinux"}
)
ANTIPLATELET_CLASSES: frozenset[str] = frozenset({"p2y12", "aspirin", "other-antiplatelet"})

MedicationMatch = Literal["rxnorm-ingredient", "atc", "rxnorm-clinical-drug", "name"]


class MedicationFact(_Fact):
    """An active medication the rules care about, identified down to its ingredient."""

    ingredient: str
    drug_class: DrugClass
    display: str
    matched_by: MedicationMatch
    evidence: Evidence
    started: date | None = None
    ended: date | None = None
    """End of effectivePeriod / dispenseRequest.validityPeriod: not current once it is past."""


class AllergyFact(_Fact):
    substance: Literal["bone-cement", "iodinated-contrast"]
    display: str
    evidence: Evidence


class ImagingFact(_Fact):
    kind: Literal["mri-spine", "ct-spine", "dxa"]
    performed: date
    display: str
    evidence: Evidence


class ClinicalFacts(_Fact):
    """Everything the rules may read, as of one moment."""

    as_of: datetime
    order: DraftOrder | None = None
    inpatient: bool | None = None
    """None when the encounter is not known: the rules then say which pain threshold they used."""
    conditions: tuple[ConditionFact, ...] = ()
    labs: tuple[LabResult, ...] = ()
    medications: tuple[MedicationFact, ...] = ()
    allergies: tuple[AllergyFact, ...] = ()
    imaging: tuple[ImagingFact, ...] = ()
    gaps: tuple[DataGap, ...] = ()
    parse_issues: tuple[ParseIssue, ...] = ()
    unreadable: tuple[Unreadable, ...] = ()
    other_patient_resources: tuple[str, ...] = ()
    """Resource types (one item per resource) that belong to another patient and were ignored."""
    deceased: Evidence | None = None
    """Set when the Patient resource records a death (deceasedBoolean true or a deceasedDateTime)."""

    @property
    def today(self) -> date:
        return self.as_of.date()

    def is_missing(self, category: DataCategory) -> bool:
        return any(gap.category == category for gap in self.gaps)

    def conditions_in(self, *groups: str) -> tuple[ConditionFact, ...]:
        wanted = frozenset(groups)
        return tuple(c for c in self.conditions if c.groups & wanted)

    def medications_in(self, classes: frozenset[str]) -> tuple[MedicationFact, ...]:
        return tuple(m for m in self.medications if m.drug_class in classes)

    def labs_of(self, kind: LabKind) -> tuple[LabResult, ...]:
        """Results of one kind, newest first."""
        return tuple(
            sorted((r for r in self.labs if r.kind == kind), key=lambda r: r.effective, reverse=True)
        )
