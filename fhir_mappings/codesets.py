"""Code sets as data: the JSON files in `codesets/`, validated at load, looked up through hashed indexes.

Each file (`procedures`, `vertebrae`, `conditions`, `observations`, `medications`, `imaging`,
`allergies`) lists entries with system, code, display, source (an id from `rules.sources.SOURCES` or
`EXTRA_SOURCES`) and a verification flag V/P/U as in shared/reference/clinical-rules.md. Codes marked
X there never appear as entries; they may be listed under `known_wrong` so nobody adds them back.

Lookups:

* Systems are canonicalised first (`SYSTEM_ALIASES`: OIDs, http/https variants, a trailing slash).
* Codes are normalised per system: ICD-10-CM drops dots and is upper-cased (`M80.08XA` == `M8008XA`);
  ICD-10-PCS, HCPCS, CPT and ATC are upper-cased; other systems are only stripped.
* **Longest match wins.** An entry is `exact` or `prefix`. A lookup first tries the whole code as an
  exact key, then walks the input's prefixes from longest to shortest (only the prefix lengths the set
  actually has) against a dict. The first hit, i.e. the longest matching entry, alone decides the
  answer. So the exact `M80.08XS` (healed-fracture) overrides the prefix `M80.08` (osteoporotic-vcf),
  and ATC `B01AF02` (apixaban) beats the class prefix `B01AF` (doac-xa). A set may not hold the same
  system+code twice, so there are never two candidates of the same length.
* Text fallbacks are case-insensitive regexes. Medication names, imaging and allergy patterns are
  tried in file order and the first match wins; for procedures a specific kind (kyphoplasty,
  vertebroplasty) wins over the generic one and two different specific kinds give
  "vertebral-augmentation". Every text lookup first runs one combined regex, so text that names
  nothing of interest costs a single search.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rules.facts import DrugClass, LabKind, MedicationMatch, ProcedureKind, SpineRegion
from rules.sources import SOURCES, Source

__all__ = [
    "ATC",
    "CPT",
    "EXTRA_SOURCES",
    "HCPCS",
    "ICD10CM",
    "ICD10PCS",
    "LOINC",
    "RXNORM",
    "SNOMED",
    "SYSTEM_ALIASES",
    "AllergySubstance",
    "CodeSetError",
    "CodeSets",
    "ConditionGroup",
    "DrugInfo",
    "ImagingKind",
    "ProcedureCode",
    "canonical_system",
    "default_codesets",
    "load_codesets",
    "normalise_code",
    "source_for",
]

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"

SYSTEM_ALIASES: Mapping[str, str] = {
    ICD10CM: ICD10CM,
    "urn:oid:2.16.840.1.113883.6.90": ICD10CM,
    ICD10PCS: ICD10PCS,
    "https://www.cms.gov/Medicare/Coding/ICD10": ICD10PCS,
    "urn:oid:2.16.840.1.113883.6.4": ICD10PCS,
    SNOMED: SNOMED,
    "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    LOINC: LOINC,
    "urn:oid:2.16.840.1.113883.6.1": LOINC,
    RXNORM: RXNORM,
    "urn:oid:2.16.840.1.113883.6.88": RXNORM,
    ATC: ATC,
    "urn:oid:2.16.840.1.113883.6.73": ATC,
    CPT: CPT,
    "urn:oid:2.16.840.1.113883.6.12": CPT,
    HCPCS: HCPCS,
    "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": HCPCS,
    "urn:oid:2.16.840.1.113883.6.285": HCPCS,
}
_CANONICAL_SYSTEMS = frozenset(SYSTEM_ALIASES.values())
_UPPER_CASE_SYSTEMS = frozenset({ICD10PCS, HCPCS, CPT, ATC})

EXTRA_SOURCES: Mapping[str, Source] = {
    "SYNTHEA": Source(
        id="SYNTHEA",
        label="Synthea-generated FHIR data, smart-on-fhir/generated-sample-data (display text)",
        url="https://github.com/smart-on-fhir/generated-sample-data",
    ),
}
"""Source ids the code sets may cite besides `rules.sources.SOURCES`: SYNTHEA marks codes read from
the Synthea fixtures' own display text."""

_ALLOWED_SOURCE_IDS = frozenset(SOURCES) | frozenset(EXTRA_SOURCES)

SET_NAMES = ("procedures", "vertebrae", "conditions", "observations", "medications", "imaging", "allergies")

ConditionGroup = Literal[
    "osteoporotic-vcf",
    "collapsed-vertebra",
    "neoplastic-fracture",
    "traumatic-vertebral-fracture",
    "osteoporosis",
    "myeloma",
    "metastatic-cancer",
    "bone-metastasis",
    "primary-spine-tumor",
    "vertebral-hemangioma",
    "spinal-infection",
    "systemic-infection",
    "coagulopathy",
    "copd",
    "emphysema",
    "severe-lung-other",
    "home-oxygen",
    "neurologic-compromise",
    "healed-fracture",
    "contrast-allergy",
    "pregnancy",
    "antithrombotic-use",
]
ImagingKind = Literal["mri-spine", "ct-spine", "dxa"]
AllergySubstance = Literal["bone-cement", "iodinated-contrast"]
VertebraLevel = Literal[
    "C7",
    "T1",
    "T2",
    "T3",
    "T4",
    "T5",
    "T6",
    "T7",
    "T8",
    "T9",
    "T10",
    "T11",
    "T12",
    "L1",
    "L2",
    "L3",
    "L4",
    "L5",
]
Verified = Literal["V", "P", "U"]
RxNormTty = Literal["IN", "PIN", "SCD", "SBD"]

_EMPTY_GROUPS: frozenset[str] = frozenset()


class CodeSetError(Exception):
    """A code-set file is missing or malformed; the message names the file, the entry and the problem."""


@dataclass(frozen=True, slots=True)
class DrugInfo:
    ingredient: str
    drug_class: DrugClass
    matched_by: MedicationMatch


@dataclass(frozen=True, slots=True)
class ProcedureCode:
    kind: ProcedureKind
    region: SpineRegion | None
    add_on: bool
    demo_stand_in: bool
    display: str


def source_for(source_id: str) -> Source:
    """The `Source` for any id a code-set entry may cite (rules' SOURCES plus `EXTRA_SOURCES`)."""
    if source_id in EXTRA_SOURCES:
        return EXTRA_SOURCES[source_id]
    return SOURCES[source_id]


def canonical_system(system: str) -> str | None:
    """The canonical system uri for a known system or alias, else None."""
    found = SYSTEM_ALIASES.get(system)
    if found is None:
        stripped = system.strip().rstrip("/")
        found = SYSTEM_ALIASES.get(stripped)
    return found


def normalise_code(canonical: str, code: str) -> str:
    """The lookup key of a code within a canonical system (see the module docstring)."""
    code = code.strip()
    if canonical == ICD10CM:
        return code.replace(".", "").upper()
    if canonical in _UPPER_CASE_SYSTEMS:
        return code.upper()
    return code


# --------------------------------------------------------------------------- file models


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r}: {exc}") from exc


def _check_source(value: str) -> str:
    if value not in _ALLOWED_SOURCE_IDS:
        raise ValueError(f"unknown source id {value!r} (allowed: {', '.join(sorted(_ALLOWED_SOURCE_IDS))})")
    return value


class _Entry(_Model):
    system: str
    code: Annotated[str, Field(min_length=1)]
    display: Annotated[str, Field(min_length=1)]
    source: str
    verified: Verified
    match: Literal["exact", "prefix"] = "exact"
    note: str | None = None

    @field_validator("system")
    @classmethod
    def _known_system(cls, value: str) -> str:
        if value not in _CANONICAL_SYSTEMS:
            raise ValueError(f"unknown or non-canonical system {value!r}")
        return value

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        return _check_source(value)


class _ProcedureEntry(_Entry):
    kind: ProcedureKind
    region: SpineRegion | None
    add_on: bool
    role: Literal["augmentation", "demo-stand-in"]


class _VertebraEntry(_Entry):
    level: VertebraLevel


class _ConditionEntry(_Entry):
    group: ConditionGroup


class _ObservationEntry(_Entry):
    kind: LabKind


class _MedicationEntry(_Entry):
    ingredient: Annotated[str, Field(min_length=1)]
    drug_class: DrugClass
    tty: RxNormTty | None = None

    @model_validator(mode="after")
    def _tty_matches_system(self) -> _MedicationEntry:
        if self.system == RXNORM and self.tty is None:
            raise ValueError("an RxNorm entry needs tty (IN, PIN, SCD or SBD)")
        if self.system == ATC and self.tty is not None:
            raise ValueError("an ATC entry has no tty")
        if self.system not in (RXNORM, ATC):
            raise ValueError(f"medication entries use RxNorm or ATC, not {self.system!r}")
        return self


class _ImagingEntry(_Entry):
    kind: ImagingKind


class _AllergyEntry(_Entry):
    substance: AllergySubstance


class _Pattern(_Model):
    pattern: Annotated[str, Field(min_length=1)]
    note: str | None = None

    @field_validator("pattern")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        _compile(value)
        return value


class _ProcedurePattern(_Pattern):
    kind: ProcedureKind


class _ImagingPattern(_Pattern):
    kind: ImagingKind


class _AllergyPattern(_Pattern):
    substance: AllergySubstance


class _NamePattern(_Pattern):
    ingredient: Annotated[str, Field(min_length=1)]
    drug_class: DrugClass
    source: str

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        return _check_source(value)


class _Listed(_Model):
    """A code kept out of the matches on purpose (`known_wrong`: marked X; `not_mapped`: a judgement)."""

    system: str
    code: str
    display: str = ""
    note: str


class _File(_Model):
    name: str
    version: Annotated[str, Field(min_length=1)]
    description: Annotated[str, Field(min_length=1)]
    known_wrong: list[_Listed] = []
    not_mapped: list[_Listed] = []

    def coded(self) -> Sequence[_Entry]:
        raise NotImplementedError

    def patterns(self) -> Sequence[str]:
        """The text regexes of this set, in order."""
        return ()


class _ProceduresFile(_File):
    entries: list[_ProcedureEntry]
    text_patterns: list[_ProcedurePattern]

    def coded(self) -> Sequence[_Entry]:
        return self.entries

    def patterns(self) -> Sequence[str]:
        return [t.pattern for t in self.text_patterns]


class _VertebraeFile(_File):
    entries: list[_VertebraEntry]

    def coded(self) -> Sequence[_Entry]:
        return self.entries


class _ConditionsFile(_File):
    entries: list[_ConditionEntry]

    def coded(self) -> Sequence[_Entry]:
        return self.entries


class _ObservationsFile(_File):
    entries: list[_ObservationEntry]

    def coded(self) -> Sequence[_Entry]:
        return self.entries


class _MedicationsFile(_File):
    entries: list[_MedicationEntry]
    names: list[_NamePattern]

    def coded(self) -> Sequence[_Entry]:
        return self.entries

    def patterns(self) -> Sequence[str]:
        return [n.pattern for n in self.names]


class _ImagingFile(_File):
    entries: list[_ImagingEntry]
    text_patterns: list[_ImagingPattern]

    def coded(self) -> Sequence[_Entry]:
        return self.entries

    def patterns(self) -> Sequence[str]:
        return [t.pattern for t in self.text_patterns]


class _AllergiesFile(_File):
    entries: list[_AllergyEntry]
    text_patterns: list[_AllergyPattern]

    def coded(self) -> Sequence[_Entry]:
        return self.entries

    def patterns(self) -> Sequence[str]:
        return [t.pattern for t in self.text_patterns]


class _GeneratedEntry(_Model):
    system: str
    code: Annotated[str, Field(min_length=1)]
    display: Annotated[str, Field(min_length=1)]
    lists: Annotated[list[str], Field(min_length=1)]
    match: Literal["exact"] = "exact"

    @field_validator("system")
    @classmethod
    def _known_system(cls, value: str) -> str:
        if value not in _CANONICAL_SYSTEMS:
            raise ValueError(f"unknown or non-canonical system {value!r}")
        return value


class _GeneratedMedication(_GeneratedEntry):
    ingredient: Annotated[str, Field(min_length=1)]
    drug_class: DrugClass
    tty: Literal["IN", "BN", "SCD", "SBD", "GPCK", "BPCK"]


class _GeneratedCondition(_GeneratedEntry):
    group: ConditionGroup


class _GeneratedObservation(_GeneratedEntry):
    kind: LabKind


class _GeneratedList(_Model):
    """One source list: a VSAC value set (OID, expansion) or a curated list (`curated:<source>`)."""

    id: str
    name: str
    oid: str
    url: str | None
    definition_version: str | None
    expansion: str | None
    source: str
    used_for: str
    why_not_used: str | None
    codes: int
    mapped: int
    excluded: int


class _Excluded(_Model):
    system: str
    code: str
    display: str
    reason: str
    lists: list[str]


class _GeneratedFile(_Model):
    """`generated.json`, written by scripts/codesets/generate.py (never by hand)."""

    name: Literal["generated"]
    version: str
    description: str
    lists: list[_GeneratedList]
    curated_sources: dict[str, dict[str, str]]
    medications: list[_GeneratedMedication]
    conditions: list[_GeneratedCondition]
    observations: list[_GeneratedObservation]
    excluded: list[_Excluded]


# --------------------------------------------------------------------------- indexes

T = TypeVar("T")


class _CodeIndex(Generic[T]):
    """(system, code) → value with exact and prefix entries; the longest matching entry wins."""

    __slots__ = ("_exact", "_prefix", "_prefix_lengths")

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], T] = {}
        self._prefix: dict[tuple[str, str], T] = {}
        self._prefix_lengths: dict[str, tuple[int, ...]] = {}

    def add_if_absent(self, entry: _GeneratedEntry, value: T) -> None:
        """A generated entry: only where no hand-curated entry lists the same code (those win)."""
        key = (entry.system, normalise_code(entry.system, entry.code))
        self._exact.setdefault(key, value)

    def add(self, entry: _Entry, value: T) -> None:
        key = (entry.system, normalise_code(entry.system, entry.code))
        if entry.match == "prefix":
            self._prefix[key] = value
            lengths = set(self._prefix_lengths.get(entry.system, ())) | {len(key[1])}
            self._prefix_lengths[entry.system] = tuple(sorted(lengths, reverse=True))
        else:
            self._exact[key] = value

    def get(self, system: str, code: str) -> T | None:
        canonical = canonical_system(system)
        if canonical is None:
            return None
        key = normalise_code(canonical, code)
        found = self._exact.get((canonical, key))
        if found is not None:
            return found
        for length in self._prefix_lengths.get(canonical, ()):
            if length <= len(key):
                found = self._prefix.get((canonical, key[:length]))
                if found is not None:
                    return found
        return None

    def exact_codes(self, canonical: str) -> frozenset[str]:
        return frozenset(code for system, code in self._exact if system == canonical)


def _combined(patterns: Iterable[str]) -> re.Pattern[str]:
    return _compile("|".join(f"(?:{pattern})" for pattern in patterns) or r"(?!)")


class _TextMatcher(Generic[T]):
    """Ordered regexes with one combined pre-check, so text that names nothing costs one search."""

    __slots__ = ("_any", "_rules")

    def __init__(self, rules: Iterable[tuple[str, T]]) -> None:
        self._rules = tuple((_compile(pattern), value) for pattern, value in rules)
        self._any = _combined(pattern.pattern for pattern, _ in self._rules)

    def first(self, text: str) -> T | None:
        if not self._any.search(text):
            return None
        for pattern, value in self._rules:
            if pattern.search(text):
                return value
        return None

    def all(self, text: str) -> list[T]:
        if not self._any.search(text):
            return []
        return [value for pattern, value in self._rules if pattern.search(text)]


_MATCHED_BY_TTY: Mapping[str, MedicationMatch] = {
    "IN": "rxnorm-ingredient",
    "PIN": "rxnorm-ingredient",
    "BN": "rxnorm-ingredient",
    "SCD": "rxnorm-clinical-drug",
    "SBD": "rxnorm-clinical-drug",
    "GPCK": "rxnorm-clinical-drug",
    "BPCK": "rxnorm-clinical-drug",
}


class CodeSets:
    """All code sets, loaded and indexed once; every lookup is a few dict gets."""

    def __init__(
        self,
        *,
        procedures: _ProceduresFile,
        vertebrae: _VertebraeFile,
        conditions: _ConditionsFile,
        observations: _ObservationsFile,
        medications: _MedicationsFile,
        imaging: _ImagingFile,
        allergies: _AllergiesFile,
        raw_entries: Mapping[str, Sequence[Mapping[str, object]]],
        generated: _GeneratedFile | None = None,
    ) -> None:
        self._raw_entries = raw_entries
        self._generated = generated
        self._versions = {
            f.name: f.version
            for f in (procedures, vertebrae, conditions, observations, medications, imaging, allergies)
        }

        self._procedures: _CodeIndex[ProcedureCode] = _CodeIndex()
        for p in procedures.entries:
            self._procedures.add(
                p,
                ProcedureCode(
                    kind=p.kind,
                    region=p.region,
                    add_on=p.add_on,
                    demo_stand_in=p.role == "demo-stand-in",
                    display=p.display,
                ),
            )
        self._procedure_text: _TextMatcher[ProcedureKind] = _TextMatcher(
            (t.pattern, t.kind) for t in procedures.text_patterns
        )

        self._vertebrae: _CodeIndex[str] = _CodeIndex()
        for v in vertebrae.entries:
            self._vertebrae.add(v, v.level)

        self._conditions: _CodeIndex[frozenset[str]] = _CodeIndex()
        group_sets: dict[str, frozenset[str]] = {}
        for c in conditions.entries:
            self._conditions.add(c, group_sets.setdefault(c.group, frozenset({c.group})))

        self._observations: _CodeIndex[LabKind] = _CodeIndex()
        for o in observations.entries:
            self._observations.add(o, o.kind)
        self._loinc_codes = tuple(
            sorted(normalise_code(LOINC, o.code) for o in observations.entries if o.system == LOINC)
        )

        self._drugs: _CodeIndex[DrugInfo] = _CodeIndex()
        for m in medications.entries:
            matched_by: MedicationMatch = _MATCHED_BY_TTY[m.tty] if m.tty is not None else "atc"
            self._drugs.add(
                m, DrugInfo(ingredient=m.ingredient, drug_class=m.drug_class, matched_by=matched_by)
            )
        self._drug_names: _TextMatcher[DrugInfo] = _TextMatcher(
            (n.pattern, DrugInfo(ingredient=n.ingredient, drug_class=n.drug_class, matched_by="name"))
            for n in medications.names
        )

        self._imaging: _CodeIndex[ImagingKind] = _CodeIndex()
        for i in imaging.entries:
            self._imaging.add(i, i.kind)
        self._imaging_text: _TextMatcher[ImagingKind] = _TextMatcher(
            (t.pattern, t.kind) for t in imaging.text_patterns
        )

        self._allergies: _CodeIndex[AllergySubstance] = _CodeIndex()
        for a in allergies.entries:
            self._allergies.add(a, a.substance)
        self._allergy_text: _TextMatcher[AllergySubstance] = _TextMatcher(
            (t.pattern, t.substance) for t in allergies.text_patterns
        )

        if generated is not None:
            self._add_generated(generated, group_sets)
        self._loinc_codes = tuple(
            sorted({*self._loinc_codes, *(normalise_code(LOINC, o.code) for o in generated.observations)})
            if generated is not None
            else self._loinc_codes
        )
        self._condition_codes = {system: self._conditions.exact_codes(system) for system in (ICD10CM, SNOMED)}

    def _add_generated(self, generated: _GeneratedFile, group_sets: dict[str, frozenset[str]]) -> None:
        for m in generated.medications:
            info = DrugInfo(
                ingredient=m.ingredient, drug_class=m.drug_class, matched_by=_MATCHED_BY_TTY[m.tty]
            )
            self._drugs.add_if_absent(m, info)
        for c in generated.conditions:
            self._conditions.add_if_absent(c, group_sets.setdefault(c.group, frozenset({c.group})))
        for o in generated.observations:
            self._observations.add_if_absent(o, o.kind)

    # -- conditions ----------------------------------------------------------------------------

    def condition_groups(self, system: str, code: str) -> frozenset[str]:
        """Rule groups of a diagnosis code: those of the longest matching entry, or an empty set."""
        return self._conditions.get(system, code) or _EMPTY_GROUPS

    def condition_codes(self, system: str) -> frozenset[str]:
        """Normalised codes of the *exact* condition entries for a system (prefix entries not included)."""
        canonical = canonical_system(system)
        if canonical is None:
            return frozenset()
        found = self._condition_codes.get(canonical)
        if found is None:
            found = self._conditions.exact_codes(canonical)
        return found

    # -- observations --------------------------------------------------------------------------

    def lab_kind(self, system: str, code: str) -> LabKind | None:
        return self._observations.get(system, code)

    def loinc_codes(self) -> tuple[str, ...]:
        """Every observation LOINC code, sorted (for prefetch templates)."""
        return self._loinc_codes

    # -- medications ---------------------------------------------------------------------------

    def drug_by_code(self, system: str, code: str) -> DrugInfo | None:
        """RxNorm IN/PIN → "rxnorm-ingredient", SCD/SBD → "rxnorm-clinical-drug", ATC → "atc"."""
        return self._drugs.get(system, code)

    def drug_by_name(self, text: str) -> DrugInfo | None:
        """The first name pattern (in file order) found in medication text; matched_by "name"."""
        return self._drug_names.first(text)

    # -- procedures ----------------------------------------------------------------------------

    def procedure(self, system: str, code: str) -> ProcedureCode | None:
        """Augmentation codes and, flagged `demo_stand_in`, the spine-imaging demo stand-ins."""
        return self._procedures.get(system, code)

    def procedure_by_text(self, text: str) -> ProcedureKind | None:
        kinds = set(self._procedure_text.all(text))
        if not kinds:
            return None
        specific = kinds - {"vertebral-augmentation"}
        if len(specific) == 1:
            return specific.pop()
        return "vertebral-augmentation"

    def vertebra_level(self, system: str, code: str) -> str | None:
        return self._vertebrae.get(system, code)

    # -- imaging and allergies -----------------------------------------------------------------

    def imaging_kind(self, system: str, code: str) -> ImagingKind | None:
        return self._imaging.get(system, code)

    def imaging_kind_by_text(self, text: str) -> ImagingKind | None:
        return self._imaging_text.first(text)

    def allergy_substance(self, system: str, code: str) -> AllergySubstance | None:
        return self._allergies.get(system, code)

    def allergy_substance_by_text(self, text: str) -> AllergySubstance | None:
        return self._allergy_text.first(text)

    # -- the data itself -----------------------------------------------------------------------

    def entries(self) -> Iterator[tuple[str, dict[str, object]]]:
        """(set name, a copy of the raw entry) for every entry of every set."""
        for name, raw in self._raw_entries.items():
            for entry in raw:
                yield name, dict(entry)

    def versions(self) -> dict[str, str]:
        """Set name → version, e.g. for a health or about endpoint."""
        versions = dict(self._versions)
        if self._generated is not None:
            versions["generated"] = self._generated.version
        return versions

    def generated_entries(self) -> Iterator[tuple[str, dict[str, object]]]:
        """("medications" | "conditions" | "observations", entry) for every generated entry."""
        if self._generated is None:
            return
        for name in ("medications", "conditions", "observations"):
            for entry in getattr(self._generated, name):
                yield name, entry.model_dump()

    def generated_excluded(self) -> list[dict[str, object]]:
        """Codes of the source value sets kept out on purpose, each with its reason."""
        return [e.model_dump() for e in self._generated.excluded] if self._generated is not None else []


# --------------------------------------------------------------------------- loading

_FILE_MODELS: Mapping[str, type[_File]] = {
    "procedures": _ProceduresFile,
    "vertebrae": _VertebraeFile,
    "conditions": _ConditionsFile,
    "observations": _ObservationsFile,
    "medications": _MedicationsFile,
    "imaging": _ImagingFile,
    "allergies": _AllergiesFile,
}


def _location(loc: tuple[int | str, ...], raw: object) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(item)
    where = ".".join(parts) or "(file)"
    # name the code too, when the problem is inside an entry that has one
    if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int) and isinstance(raw, dict):
        items = raw.get(loc[0])
        if isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
            code = items[loc[1]].get("code") or items[loc[1]].get("pattern")
            if code is not None:
                where += f" ({code!r})"
    return where


def _describe(path: Path, exc: ValidationError, raw: object) -> str:
    problems = [f"{_location(tuple(err['loc']), raw)}: {err['msg']}" for err in exc.errors()[:10]]
    more = f" (+{exc.error_count() - 10} more)" if exc.error_count() > 10 else ""
    return f"{path}: " + "; ".join(problems) + more


def _read(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CodeSetError(f"{path}: cannot read code set file ({exc.strerror or exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CodeSetError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc


def _check(path: Path, name: str, parsed: _File) -> None:
    if parsed.name != name:
        raise CodeSetError(f"{path}: name is {parsed.name!r}, expected {name!r}")
    seen: dict[tuple[str, str], int] = {}
    wrong = {(w.system, normalise_code(w.system, w.code)) for w in parsed.known_wrong}
    for index, entry in enumerate(parsed.coded()):
        key = (entry.system, normalise_code(entry.system, entry.code))
        if key in seen:
            raise CodeSetError(
                f"{path}: entries[{index}] ({entry.code!r}): duplicate system+code "
                f"(first at entries[{seen[key]}])"
            )
        if key in wrong:
            raise CodeSetError(
                f"{path}: entries[{index}] ({entry.code!r}): code is listed as known_wrong (X)"
            )
        seen[key] = index
    try:
        _combined(parsed.patterns())
    except ValueError as exc:
        raise CodeSetError(f"{path}: the text patterns do not combine into one regex: {exc}") from exc


def _load_file(directory: Path, name: str) -> tuple[_File, list[dict[str, object]]]:
    path = directory / f"{name}.json"
    raw = _read(path)
    try:
        parsed = _FILE_MODELS[name].model_validate(raw)
    except ValidationError as exc:
        raise CodeSetError(_describe(path, exc, raw)) from exc
    _check(path, name, parsed)
    assert isinstance(raw, dict)  # the model accepted it
    entries = raw.get("entries")
    assert isinstance(entries, list)
    return parsed, [dict(e) for e in entries if isinstance(e, dict)]


def _default_directory() -> Path:
    return Path(__file__).resolve().parent / "codesets"


def _as(kind: type[T], value: object) -> T:
    assert isinstance(value, kind)
    return value


def _load_generated(folder: Path) -> _GeneratedFile | None:
    """`generated.json` when the folder has one (a test folder of hand-made sets may not)."""
    path = folder / "generated.json"
    if not path.exists():
        return None
    raw = _read(path)
    try:
        return _GeneratedFile.model_validate(raw)
    except ValidationError as exc:
        raise CodeSetError(_describe(path, exc, raw)) from exc


def load_codesets(directory: Path | None = None, *, include_generated: bool = True) -> CodeSets:
    """Load and validate every code-set file; raises CodeSetError naming the file and entry at fault."""
    folder = directory if directory is not None else _default_directory()
    parsed: dict[str, _File] = {}
    raw: dict[str, list[dict[str, object]]] = {}
    for name in SET_NAMES:
        parsed[name], raw[name] = _load_file(folder, name)
    return CodeSets(
        procedures=_as(_ProceduresFile, parsed["procedures"]),
        vertebrae=_as(_VertebraeFile, parsed["vertebrae"]),
        conditions=_as(_ConditionsFile, parsed["conditions"]),
        observations=_as(_ObservationsFile, parsed["observations"]),
        medications=_as(_MedicationsFile, parsed["medications"]),
        imaging=_as(_ImagingFile, parsed["imaging"]),
        allergies=_as(_AllergiesFile, parsed["allergies"]),
        raw_entries=raw,
        generated=_load_generated(folder) if include_generated else None,
    )


@functools.cache
def default_codesets() -> CodeSets:
    """The code sets shipped with the package, loaded once per process."""
    return load_codesets()
