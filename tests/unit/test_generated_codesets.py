"""The generated code sets (`fhir_mappings/codesets/generated.json`): they agree with their sources, and every
code of the shipped value sets resolves to the ingredient, class, group or kind its display says.

The agreement test regenerates the file from `../shared/reference/value-sets` into a temporary folder
and compares: it skips (with the reason) where the shared reference is absent, and fails under CI=true.
The table tests read the value sets' own displays and check each code against them, independently of the
generator's classification code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fhir_mappings.codesets import ICD10CM, LOINC, RXNORM, SNOMED, CodeSets, default_codesets

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "scripts" / "codesets" / "generate.py"
GENERATED = ROOT / "fhir_mappings" / "codesets" / "generated.json"
VALUE_SETS = ROOT.parent / "shared" / "reference" / "value-sets"
SYSTEMS = {"RXNORM": RXNORM, "SNOMEDCT": SNOMED, "ICD10CM": ICD10CM, "LOINC": LOINC}


def _value_sets() -> Path:
    if VALUE_SETS.is_dir():
        return VALUE_SETS
    if os.environ.get("CI") == "true":
        pytest.fail(f"the shared value sets are missing at {VALUE_SETS}; CI must have them")
    pytest.skip(
        f"no shared value sets at {VALUE_SETS}: the generated file cannot be compared with its sources"
    )


def _codes(name: str) -> list[tuple[str, str, str]]:
    data = json.loads((_value_sets() / f"{name}.json").read_text(encoding="utf-8"))
    return [
        (SYSTEMS[s], c["code"], c["display"])
        for s, codes in data["codes"].items()
        if s in SYSTEMS
        for c in codes
    ]


@pytest.fixture(scope="module")
def codesets() -> CodeSets:
    return default_codesets()


def test_the_generated_file_is_what_the_generator_makes_of_its_sources(tmp_path: Path) -> None:
    value_sets = _value_sets()
    out = tmp_path / "generated.json"
    subprocess.run(
        [sys.executable, str(GENERATOR), "--value-sets", str(value_sets), "--out", str(out)], check=True
    )
    assert out.read_text(encoding="utf-8") == GENERATED.read_text(encoding="utf-8"), (
        "generated.json differs from its sources: run scripts/codesets/generate.py and review the diff"
    )


def test_every_source_list_records_its_oid_expansion_and_counts(codesets: CodeSets) -> None:
    data: dict[str, Any] = json.loads(GENERATED.read_text(encoding="utf-8"))
    for item in data["lists"]:
        assert re.fullmatch(r"[0-9.]+", item["oid"]), item["id"]
        assert item["expansion"], item["id"]
        assert item["definition_version"], item["id"]
        assert item["used_for"] != "not used" or item["why_not_used"], item["id"]
        assert item["mapped"] + item["excluded"] <= item["codes"]
    for source in data["curated_sources"].values():
        assert source["url"].startswith("https://")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source["read"])
    assert codesets.versions()["generated"] == data["version"]


# Each drug value set → the classes its products may have; each product's display names its ingredient.
DRUG_SETS = {
    "warfarin": {"vka"},
    "oral-factor-xa-inhibitor-for-vte-prophylaxis-or-vte-treatment": {"doac-xa"},
    "rivaroxaban-for-vte-prophylaxis": {"doac-xa"},
    "direct-thrombin-inhibitor": {"doac-thrombin", "parenteral-thrombin"},
    "low-molecular-weight-heparin-for-vte-prophylaxis": {"lmwh"},
    "injectable-factor-xa-inhibitor-for-vte-prophylaxis": {"fondaparinux"},
    "glycoprotein-iib-iiia-inhibitors": {"other-antiplatelet"},
    "dipyridamole-medications": {"other-antiplatelet"},
    "oral-anticoagulant-medications": {"vka", "doac-xa", "doac-thrombin"},
}


@pytest.mark.parametrize("name", sorted(DRUG_SETS))
def test_every_product_of_a_drug_class_value_set_resolves_to_its_class(codesets: CodeSets, name: str) -> None:
    for system, code, display in _codes(name):
        info = codesets.drug_by_code(system, code)
        assert info is not None, (name, code, display)
        assert info.drug_class in DRUG_SETS[name], (name, code, display, info)
        first_word = info.ingredient.split(" / ")[0]
        assert first_word.lower() in display.lower() or not re.search(r"\d", display), (code, display, info)


@pytest.mark.parametrize(
    "name",
    ["anticoagulant-medications", "antithrombotic-therapy-for-ischemic-stroke", "anticoagulant-therapy"],
)
def test_broad_antithrombotic_sets_classify_by_the_ingredient_in_the_display(
    codesets: CodeSets, name: str
) -> None:
    for system, code, display in _codes(name):
        info = codesets.drug_by_code(system, code)
        words = display.lower()
        if info is None:  # only line-care heparin is left out of these sets
            assert "heparin" in words, (code, display)
            continue
        if "aspirin" in words and info.drug_class == "aspirin":
            continue
        assert any(part in words for part in info.ingredient.split(" / ")) or not re.search(r"\d", words), (
            code,
            display,
            info,
        )


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("1362060", "2 mL heparin 100 units/mL prefilled syringe: lock flush"),
        ("1362062", "3 mL heparin 100 units/mL prefilled syringe: lock flush"),
        ("1658690", "1000 mL heparin 2 units/mL: arterial line patency"),
        ("1658692", "500 mL heparin 2 units/mL: arterial line patency"),
        ("1804799", "alteplase: thrombolytic, no drug class"),
    ],
)
def test_line_care_heparin_and_thrombolytics_are_not_antithrombotic_therapy(
    codesets: CodeSets, code: str, why: str
) -> None:
    assert codesets.drug_by_code(RXNORM, code) is None, why
    assert codesets.drug_by_name("heparin lock flush 100 units/mL") is None  # today's name rule holds


@pytest.mark.parametrize(
    ("code", "drug_class"),
    [("1658717", "heparin"), ("1361615", "heparin"), ("1361607", "heparin")],  # infusions and SC vials
)
def test_therapeutic_heparin_products_stay_anticoagulants(
    codesets: CodeSets, code: str, drug_class: str
) -> None:
    info = codesets.drug_by_code(RXNORM, code)
    assert info is not None
    assert info.drug_class == drug_class


def test_opioid_products_for_pain_are_analgesics_and_cough_products_are_not(codesets: CodeSets) -> None:
    for system, code, display in _codes("opioids-all"):
        info = codesets.drug_by_code(system, code)
        cough = re.search(
            r"guaifenesin|promethazine|chlorpheniramine|pseudoephedrine|homatropine", display, re.I
        )
        if cough:
            assert info is None or info.drug_class != "analgesic", (code, display)
        elif info is not None:
            assert info.drug_class in ("analgesic", "aspirin"), (code, display, info)


@pytest.mark.parametrize("name", ["pregnancy"])
def test_every_current_pregnancy_code_is_pregnancy(codesets: CodeSets, name: str) -> None:
    for system, code, display in _codes(name):
        if re.search(r"postpartum|puerper|abortion|miscarriage|delivered|following", display, re.I):
            continue
        assert "pregnancy" in codesets.condition_groups(system, code), (code, display)


def test_pregnancy_status_and_every_lab_value_set_resolve_to_their_kind(codesets: CodeSets) -> None:
    assert codesets.lab_kind(LOINC, "82810-3") == "pregnancy-status"
    for name, kind in (("inr", "inr"), ("estimated-glomerular-filtration-rate", "egfr")):
        for system, code, display in _codes(name):
            assert codesets.lab_kind(system, code) == kind, (code, display)
    for system, code, display in _codes("platelet-count-lab-test"):
        expected = None if "Large" in display else "platelets"
        assert codesets.lab_kind(system, code) == expected, (code, display)


def test_vertebral_osteoporotic_fractures_are_the_indication_and_others_are_not(codesets: CodeSets) -> None:
    for system, code, display in _codes("osteoporotic-fractures"):
        groups = codesets.condition_groups(system, code)
        if system == SNOMED and re.search(r"vertebra", display, re.I):
            assert groups == {"osteoporotic-vcf"}, (code, display)
        if system == SNOMED and re.search(r"femur|neck of femur", display, re.I):
            assert "osteoporotic-vcf" not in groups, (code, display)


@pytest.mark.parametrize(
    ("code", "group"),
    [
        ("313296004", "copd"),
        ("313297008", "copd"),
        ("313299006", "copd"),
        ("135836000", "copd"),
        ("195951007", "copd"),
        ("68328006", "emphysema"),
        ("4981000", "emphysema"),
        ("311890007", "osteoporotic-vcf"),
        ("203451004", "osteoporotic-vcf"),
        ("77386006", "pregnancy"),
        ("109989006", "myeloma"),
    ],
)
def test_snomed_concepts_without_a_value_set_here_resolve_to_their_group(
    codesets: CodeSets, code: str, group: str
) -> None:
    assert group in codesets.condition_groups(SNOMED, code)


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("O80", "encounter for full-term uncomplicated delivery"),
        ("O0381", "complication following spontaneous abortion"),
    ],
)
def test_ended_pregnancy_codes_are_not_generated_as_pregnancy(code: str, why: str) -> None:
    data = json.loads(GENERATED.read_text(encoding="utf-8"))
    generated = {(e["system"], e["code"]) for e in data["conditions"] if e["group"] == "pregnancy"}
    assert (ICD10CM, code) not in generated, why


def test_asthma_is_not_severe_lung_disease(codesets: CodeSets) -> None:
    for system, code, display in _codes("asthma"):
        assert not codesets.condition_groups(system, code) & {"copd", "emphysema", "severe-lung-other"}, (
            display
        )
