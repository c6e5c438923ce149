"""The shipped code sets: every entry is sourced and flagged, the clinical traps hold, lookups behave."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_mappings.codesets import (
    ATC,
    CPT,
    EXTRA_SOURCES,
    ICD10CM,
    LOINC,
    RXNORM,
    SNOMED,
    CodeSetError,
    CodeSets,
    DrugInfo,
    ProcedureCode,
    default_codesets,
    load_codesets,
)
from rules.sources import SOURCES

CODESET_DIR = Path(__file__).resolve().parents[2] / "fhir_mappings" / "codesets"
ICD_OID = "urn:oid:2.16.840.1.113883.6.90"
CPT_OID = "urn:oid:2.16.840.1.113883.6.12"
KNOWN_WRONG_SNOMED = ("392010000", "429616001")  # clinical-rules.md §1a, marked X

ANTITHROMBOTIC_WORDS = (
    "warfarin",
    "clopidogrel",
    "aspirin",
    "apixaban",
    "rivaroxaban",
    "edoxaban",
    "dabigatran",
    "heparin",
    "enoxaparin",
    "dalteparin",
    "fondaparinux",
    "prasugrel",
    "ticagrelor",
    "cilostazol",
    "dipyridamole",
)


@pytest.fixture(scope="module")
def codesets() -> CodeSets:
    return load_codesets()


# --------------------------------------------------------------------------- every entry


def test_the_default_code_sets_load_once_and_are_cached() -> None:
    assert default_codesets() is default_codesets()


def test_every_entry_has_system_code_display_a_known_source_and_a_v_p_or_u_flag(codesets: CodeSets) -> None:
    allowed_sources = set(SOURCES) | set(EXTRA_SOURCES)
    seen_sets: set[str] = set()
    for set_name, entry in codesets.entries():
        seen_sets.add(set_name)
        where = f"{set_name}: {entry.get('code')}"
        for field in ("system", "code", "display", "source", "verified"):
            assert isinstance(entry.get(field), str), f"{where} lacks {field}"
            assert entry[field], f"{where} has an empty {field}"
        assert entry["source"] in allowed_sources, where
        assert entry["verified"] in {"V", "P", "U"}, where
        assert entry.get("match", "exact") in {"exact", "prefix"}, where
    assert seen_sets == {"procedures", "vertebrae", "conditions", "observations", "medications", "imaging"}


def test_no_code_marked_x_in_the_reference_is_used_as_a_match(codesets: CodeSets) -> None:
    used = {(entry["system"], entry["code"]) for _, entry in codesets.entries()}
    for code in KNOWN_WRONG_SNOMED:
        assert (SNOMED, code) not in used
        assert codesets.procedure(SNOMED, code) is None
    known_wrong = json.loads((CODESET_DIR / "procedures.json").read_text(encoding="utf-8"))["known_wrong"]
    assert {item["code"] for item in known_wrong} == set(KNOWN_WRONG_SNOMED)


def test_synthea_is_an_extra_source_with_its_label() -> None:
    assert "SYNTHEA" not in SOURCES
    assert EXTRA_SOURCES["SYNTHEA"].label.startswith("Synthea-generated FHIR data")


# --------------------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("D68.51", frozenset()),  # factor V Leiden: thrombophilia
        ("D68.59", frozenset()),
        ("D68.61", frozenset()),  # antiphospholipid syndrome
        ("D68.62", frozenset()),
        ("D68.69", frozenset()),
        ("D68", frozenset()),  # a bare category is not coagulopathy either
        ("D68.0", frozenset({"coagulopathy"})),
        ("D68.311", frozenset({"coagulopathy"})),
        ("D65", frozenset({"coagulopathy"})),
        ("D69.6", frozenset({"coagulopathy"})),
        ("M48.56XA", frozenset({"collapsed-vertebra"})),
        ("M80.08XA", frozenset({"osteoporotic-vcf"})),
        ("M80.08XD", frozenset({"osteoporotic-vcf"})),
        ("M80.88XA", frozenset({"osteoporotic-vcf"})),
        ("M80.08XS", frozenset({"healed-fracture"})),  # exact sequela entry beats the M80.08 prefix
        ("M48.54XS", frozenset({"healed-fracture"})),
        ("Z87.310", frozenset({"healed-fracture"})),
        ("M84.58XA", frozenset({"neoplastic-fracture"})),
        ("S32.010A", frozenset({"traumatic-vertebral-fracture"})),
        ("S32.10XA", frozenset()),  # sacrum, not a lumbar vertebra
        ("Z99.81", frozenset({"home-oxygen"})),
        ("J44.9", frozenset({"copd"})),
        ("J43.9", frozenset({"emphysema"})),
        ("M46.26", frozenset({"spinal-infection"})),
        ("A41.9", frozenset({"systemic-infection"})),
        ("O09.511", frozenset({"pregnancy"})),
        ("O9A.111", frozenset({"pregnancy"})),
        ("Z33.1", frozenset({"pregnancy"})),
        ("C90.00", frozenset({"myeloma"})),
        ("C79.51", frozenset({"bone-metastasis"})),
        ("Z91.041", frozenset({"contrast-allergy"})),
        ("Z79.01", frozenset({"antithrombotic-use"})),
        ("I10", frozenset()),
    ],
)
def test_icd10cm_codes_fall_in_the_right_group(
    codesets: CodeSets, code: str, expected: frozenset[str]
) -> None:
    assert codesets.condition_groups(ICD10CM, code) == expected


@pytest.mark.parametrize("code", ["M80.08XA", "M80.08XS", "D68.51", "M48.56XA", "Z87.310", "O09.511"])
def test_dotted_undotted_lower_case_and_oid_system_give_the_same_answer(
    codesets: CodeSets, code: str
) -> None:
    expected = codesets.condition_groups(ICD10CM, code)
    undotted = code.replace(".", "")
    assert codesets.condition_groups(ICD10CM, undotted) == expected
    assert codesets.condition_groups(ICD10CM, f" {undotted.lower()} ") == expected
    assert codesets.condition_groups(ICD_OID, code) == expected


@pytest.mark.parametrize(
    ("code", "group"),
    [
        ("443165006", "osteoporotic-vcf"),
        ("64859006", "osteoporosis"),
        ("185086009", "copd"),
        ("87433001", "emphysema"),
        ("91302008", "systemic-infection"),
    ],
)
def test_snomed_condition_codes_match_exactly(codesets: CodeSets, code: str, group: str) -> None:
    assert codesets.condition_groups(SNOMED, code) == frozenset({group})
    assert codesets.condition_groups(SNOMED, code + "1") == frozenset()
    assert code in codesets.condition_codes(SNOMED)


def test_unknown_systems_match_nothing(codesets: CodeSets) -> None:
    assert codesets.condition_groups("http://example.org/codes", "M80.08XA") == frozenset()
    assert codesets.condition_codes("http://example.org/codes") == frozenset()


# --------------------------------------------------------------------------- observations


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("6301-6", "inr"),
        ("777-3", "platelets"),
        ("72514-3", "pain-nrs"),
        ("19926-5", "fev1-fvc-ratio"),
        ("59408-5", "spo2"),
        ("38265-5", "t-score"),
        ("33914-3", "egfr"),
        ("35591-7", "creatinine-clearance"),
        ("2106-3", "hcg"),
        ("20150-9", None),  # FEV1 in litres is not % predicted
        ("2093-3", None),
    ],
)
def test_loinc_codes_give_their_lab_kind(codesets: CodeSets, code: str, kind: str | None) -> None:
    assert codesets.lab_kind(LOINC, code) == kind


def test_loinc_codes_are_sorted_and_unique(codesets: CodeSets) -> None:
    codes = codesets.loinc_codes()
    assert list(codes) == sorted(set(codes))
    assert "6301-6" in codes


# --------------------------------------------------------------------------- medications


@pytest.mark.parametrize(
    ("system", "code", "expected"),
    [
        (RXNORM, "11289", DrugInfo("warfarin", "vka", "rxnorm-ingredient")),
        (RXNORM, "1037042", DrugInfo("dabigatran", "doac-thrombin", "rxnorm-ingredient")),
        (RXNORM, "855332", DrugInfo("warfarin", "vka", "rxnorm-clinical-drug")),
        (RXNORM, "309362", DrugInfo("clopidogrel", "p2y12", "rxnorm-clinical-drug")),
        (RXNORM, "904419", DrugInfo("alendronate", "osteoporosis-therapy", "rxnorm-clinical-drug")),
        (ATC, "B01AF02", DrugInfo("apixaban", "doac-xa", "atc")),
        (
            ATC,
            "B01AF07",
            DrugInfo("direct factor Xa inhibitor", "doac-xa", "atc"),
        ),  # unlisted code, class prefix
        (ATC, "b01ac06", DrugInfo("aspirin", "aspirin", "atc")),
        (ATC, "N02BA01", DrugInfo("aspirin", "aspirin", "atc")),  # beats the N02B analgesic prefix
        (ATC, "N02BE01", DrugInfo("acetaminophen", "analgesic", "atc")),
        (ATC, "B01AX05", DrugInfo("fondaparinux", "fondaparinux", "atc")),
        (ATC, "B01AX01", None),  # defibrotide: only B01AX05 of B01AX is listed
        (RXNORM, "316672", None),  # simvastatin
    ],
)
def test_drug_codes_resolve_to_ingredient_and_class(
    codesets: CodeSets, system: str, code: str, expected: DrugInfo | None
) -> None:
    assert codesets.drug_by_code(system, code) == expected


@pytest.mark.parametrize(
    ("text", "ingredient", "drug_class"),
    [
        ("Eliquis 5 MG Oral Tablet", "apixaban", "doac-xa"),
        ("aspirin 81 MG", "aspirin", "aspirin"),
        ("ASA 81 mg daily", "aspirin", "aspirin"),
        ("COUMADIN 5mg", "warfarin", "vka"),
        ("enoxaparin 40 MG/0.4ML Injection", "enoxaparin", "lmwh"),
        ("Heparin sodium 5000 UNT/ML", "heparin", "heparin"),
        ("Aspirin 25 MG / Dipyridamole 200 MG [Aggrenox]", "dipyridamole", "other-antiplatelet"),
        ("Acetaminophen 325 MG / oxyCODONE Hydrochloride 5 MG Oral Tablet", "oxycodone", "analgesic"),
        ("Prolia 60 MG/ML", "denosumab", "osteoporosis-therapy"),
    ],
)
def test_medication_text_is_matched_by_generic_or_brand_name(
    codesets: CodeSets, text: str, ingredient: str, drug_class: str
) -> None:
    assert codesets.drug_by_name(text) == DrugInfo(ingredient, drug_class, "name")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["Simvastatin 20 MG Oral Tablet", "mesalamine (5-ASA) 800 MG", "Heparinoid cream"]
)
def test_medication_text_without_a_listed_name_matches_nothing(codesets: CodeSets, text: str) -> None:
    assert codesets.drug_by_name(text) is None


# --------------------------------------------------------------------------- procedures


@pytest.mark.parametrize(
    ("code", "kind", "region", "add_on"),
    [
        ("22510", "vertebroplasty", "cervicothoracic", False),
        ("22511", "vertebroplasty", "lumbosacral", False),
        ("22512", "vertebroplasty", None, True),
        ("22513", "kyphoplasty", "thoracic", False),
        ("22514", "kyphoplasty", "lumbar", False),
        ("22515", "kyphoplasty", None, True),
    ],
)
def test_augmentation_cpt_codes_give_kind_region_and_add_on(
    codesets: CodeSets, code: str, kind: str, region: str | None, add_on: bool
) -> None:
    found = codesets.procedure(CPT, code)
    assert found is not None
    assert (found.kind, found.region, found.add_on, found.demo_stand_in) == (kind, region, add_on, False)
    assert codesets.procedure(CPT_OID, code) == found


@pytest.mark.parametrize("code", ["72128", "72131", "72146", "72148"])
def test_spine_imaging_codes_are_only_demo_stand_ins(codesets: CodeSets, code: str) -> None:
    found = codesets.procedure(CPT, code)
    assert isinstance(found, ProcedureCode)
    assert found.demo_stand_in
    assert found.kind == "vertebral-augmentation"


def test_icd10pcs_and_hcpcs_codes_identify_augmentation(codesets: CodeSets) -> None:
    pcs = codesets.procedure("http://www.cms.gov/Medicare/Coding/ICD10", "0pu43jz")
    assert pcs is not None
    assert (pcs.kind, pcs.region) == ("vertebroplasty", "thoracic")
    device = codesets.procedure("http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "C1062")
    assert device is not None
    assert device.kind == "vertebral-augmentation"


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Kyphoplasty T12", "kyphoplasty"),
        ("Balloon kyphoplasty L1", "kyphoplasty"),
        ("Percutaneous vertebral augmentation with cavity creation, T11", "kyphoplasty"),
        ("VERTEBROPLASTY L2", "vertebroplasty"),
        ("Vertebral augmentation T12", "vertebral-augmentation"),
        ("Percutaneous cementoplasty", "vertebral-augmentation"),
        ("Vertebroplasty or kyphoplasty, operator to decide", "vertebral-augmentation"),
        ("MRI lumbar spine", None),
    ],
)
def test_procedure_text_tells_kyphoplasty_from_vertebroplasty(
    codesets: CodeSets, text: str, kind: str | None
) -> None:
    assert codesets.procedure_by_text(text) == kind


def test_vertebra_body_sites_give_levels(codesets: CodeSets) -> None:
    assert codesets.vertebra_level(SNOMED, "23215003") == "T12"
    assert codesets.vertebra_level(SNOMED, "66794005") == "L1"
    assert codesets.vertebra_level(SNOMED, "87391001") == "C7"
    assert codesets.vertebra_level(SNOMED, "51185008") is None  # thoracic structure (chest)


# --------------------------------------------------------------------------- imaging and allergies


@pytest.mark.parametrize(
    ("system", "code", "kind"),
    [
        (CPT, "72148", "mri-spine"),
        (CPT, "72131", "ct-spine"),
        (CPT, "77080", "dxa"),
        (SNOMED, "312681000", "dxa"),
    ],
)
def test_imaging_codes_give_their_kind(codesets: CodeSets, system: str, code: str, kind: str) -> None:
    assert codesets.imaging_kind(system, code) == kind


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("MRI lumbar spine without contrast", "mri-spine"),
        ("Thoracic spine MR w/o", "mri-spine"),
        ("CT L-spine", "ct-spine"),
        ("Bone density scan (procedure)", "dxa"),
        ("DEXA scan", "dxa"),
        ("Magnetic resonance imaging for measurement of brain volume (procedure)", None),
        ("CT thoracic angiogram", None),
        ("Chest X-ray", None),
    ],
)
def test_imaging_text_fallback(codesets: CodeSets, text: str, kind: str | None) -> None:
    assert codesets.imaging_kind_by_text(text) == kind


@pytest.mark.parametrize(
    ("text", "substance"),
    [
        ("Methyl methacrylate", "bone-cement"),
        ("PMMA bone cement", "bone-cement"),
        ("Iodinated contrast media", "iodinated-contrast"),
        ("Radiographic dye", "iodinated-contrast"),
        ("Iohexol", "iodinated-contrast"),
        ("Contrast media", "iodinated-contrast"),
        ("Gadolinium-based contrast agent", None),
        ("Dander (animal) allergy", None),
    ],
)
def test_allergy_text_fallback(codesets: CodeSets, text: str, substance: str | None) -> None:
    assert codesets.allergy_substance_by_text(text) == substance


# --------------------------------------------------------------------------- malformed files


@pytest.fixture
def broken_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "codesets"
    shutil.copytree(CODESET_DIR, folder)
    return folder


def _edit(folder: Path, name: str, change: str) -> None:
    path = folder / f"{name}.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    if change == "missing source":
        del data["entries"][3]["source"]
    elif change == "unknown group":
        data["entries"][0]["group"] = "broken-bones"
    elif change == "bad regex":
        data["text_patterns"][0]["pattern"] = "kypho(plast"
    elif change == "unknown source":
        data["entries"][0]["source"] = "S99"
    elif change == "verified X":
        data["entries"][0]["verified"] = "X"
    elif change == "duplicate":
        data["entries"].append(dict(data["entries"][0], code=data["entries"][0]["code"].replace(".", "")))
    elif change == "unknown drug class":
        data["entries"][0]["drug_class"] = "statin"
    elif change == "known wrong used":
        data["entries"].append(dict(data["entries"][0], system=SNOMED, code="392010000"))
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "change", "words"),
    [
        ("conditions", "missing source", ("entries[3]", "source")),
        ("conditions", "unknown group", ("entries[0]", "group")),
        ("procedures", "bad regex", ("text_patterns[0]", "invalid regex")),
        ("observations", "unknown source", ("entries[0]", "S99")),
        ("vertebrae", "verified X", ("entries[0]", "verified")),
        ("conditions", "duplicate", ("duplicate",)),
        ("medications", "unknown drug class", ("entries[0]", "drug_class")),
        ("procedures", "known wrong used", ("known_wrong",)),
    ],
)
def test_a_malformed_code_set_raises_an_error_naming_the_file_and_entry(
    broken_copy: Path, name: str, change: str, words: tuple[str, ...]
) -> None:
    _edit(broken_copy, name, change)
    with pytest.raises(CodeSetError) as raised:
        load_codesets(broken_copy)
    message = str(raised.value)
    assert f"{name}.json" in message
    for word in words:
        assert word in message


def test_a_missing_code_set_file_raises_code_set_error(broken_copy: Path) -> None:
    (broken_copy / "imaging.json").unlink()
    with pytest.raises(CodeSetError, match=r"imaging\.json"):
        load_codesets(broken_copy)


def test_invalid_json_raises_code_set_error(broken_copy: Path) -> None:
    (broken_copy / "allergies.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CodeSetError, match=r"allergies\.json.*invalid JSON"):
        load_codesets(broken_copy)


# --------------------------------------------------------------------------- the shared Synthea fixtures


def _medication_codings(folder: Path) -> Iterator[tuple[str, str, str]]:
    for path in sorted(folder.glob("*.json")):
        bundle = json.loads(path.read_text(encoding="utf-8"))
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") != "MedicationRequest":
                continue
            for coding in resource.get("medicationCodeableConcept", {}).get("coding", []):
                yield coding.get("system", ""), coding.get("code", ""), coding.get("display", "")


@pytest.mark.fixtures
def test_every_antithrombotic_medication_request_in_the_synthea_fixtures_resolves(
    codesets: CodeSets, synthea_dir: Path
) -> None:
    checked = 0
    for system, code, display in _medication_codings(synthea_dir):
        words = display.lower()
        named = [word for word in ANTITHROMBOTIC_WORDS if word in words]
        if not named:
            continue
        checked += 1
        by_code = codesets.drug_by_code(system, code)
        assert by_code is not None, f"{code} {display!r} has no code entry"
        assert by_code.matched_by == "rxnorm-clinical-drug"
        assert by_code.ingredient in named
        assert codesets.drug_by_name(display) is not None
    assert checked > 0, "expected warfarin/clopidogrel MedicationRequests in the fixtures"


@pytest.mark.fixtures
def test_every_synthea_sourced_medication_code_is_in_the_fixtures_with_its_display(
    codesets: CodeSets, synthea_dir: Path
) -> None:
    in_fixtures = {(system, code): display for system, code, display in _medication_codings(synthea_dir)}
    for set_name, entry in codesets.entries():
        if entry["source"] != "SYNTHEA":
            continue
        key = (str(entry["system"]), str(entry["code"]))
        assert key in in_fixtures, f"{set_name}: {key} not in the fixtures"
        assert str(entry["display"]).lower() == in_fixtures[key].lower()
