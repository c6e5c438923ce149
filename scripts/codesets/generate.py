#!/usr/bin/env python3
"""Generate `fhir_mappings/codesets/generated.json` from the VSAC value sets and the curated additions.

    .venv/bin/python scripts/codesets/generate.py [--value-sets DIR] [--out FILE]

Inputs: the eCQM value-set expansions in `../shared/reference/value-sets/*.json` (see its README) and
`scripts/codesets/curated.json` (lists for groups without a value set, each with its source and date).
Drug products are classified by the ingredients their RxNorm display names, with the name patterns of
`fhir_mappings/codesets/medications.json` plus the curated ones: never by the value set they sit in, because
several sets are broader than their names. Condition and lab sets map to one group or kind each, with the
exceptions below (each written to `excluded` with its reason). The output is deterministic: running it
twice on the same inputs gives the same bytes, which the test `tests/unit/test_codesets.py` relies on.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VALUE_SETS = ROOT.parent / "shared" / "reference" / "value-sets"
CURATED = Path(__file__).resolve().parent / "curated.json"
MEDICATIONS = ROOT / "fhir_mappings" / "codesets" / "medications.json"
OUT = ROOT / "fhir_mappings" / "codesets" / "generated.json"

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
SYSTEMS = {"RXNORM": RXNORM, "SNOMEDCT": SNOMED, "ICD10CM": ICD10CM, "LOINC": LOINC}

# When one product names several ingredients, the class that matters most for bleeding risk wins.
CLASS_PRIORITY = (
    "vka",
    "doac-xa",
    "doac-thrombin",
    "parenteral-thrombin",
    "lmwh",
    "fondaparinux",
    "heparin",
    "p2y12",
    "other-antiplatelet",
    "aspirin",
    "osteoporosis-therapy",
    "analgesic",
)
DRUG_SETS = (
    "anticoagulant-medications",
    "anticoagulant-therapy",
    "anticoagulants-for-all-indications",
    "antithrombotic-therapy-for-ischemic-stroke",
    "dipyridamole-medications",
    "direct-thrombin-inhibitor",
    "glycoprotein-iib-iiia-inhibitors",
    "injectable-factor-xa-inhibitor-for-vte-prophylaxis",
    "low-dose-unfractionated-heparin-for-vte-prophylaxis",
    "low-molecular-weight-heparin-for-vte-prophylaxis",
    "oral-anticoagulant-medications",
    "oral-factor-xa-inhibitor-for-vte-prophylaxis-or-vte-treatment",
    "rivaroxaban-for-vte-prophylaxis",
    "unfractionated-heparin",
    "warfarin",
    "opioids-all",
    "thrombolytic-tpa-therapy",
    "fibrinolytic-therapy",
)
THROMBOLYTIC = re.compile(r"\b(alteplase|reteplase|tenecteplase|streptokinase|urokinase)\b", re.I)
# Antitussive and decongestant combinations with an opioid treat cough, not pain; buprenorphine with
# naloxone treats opioid use disorder. Neither is conservative pain care.
NOT_PAIN_CARE = re.compile(
    r"\b(guaifenesin|promethazine|chlorpheniramine|pseudoephedrine|phenylephrine|brompheniramine|"
    r"homatropine|pyrilamine|dexchlorpheniramine|dexbrompheniramine|triprolidine|chlorcyclizine|"
    r"naloxone|naltrexone)\b",
    re.I,
)
OPIOID_INGREDIENT = re.compile(r"([a-z][a-z -]*?)(?: hydrochloride| sulfate| bitartrate| tartrate| phosphate"
                               r"| citrate| polistirex| terephthalate| liposomal)*\s+\d", re.I)
_LEADING_AMOUNTS = re.compile(r"^[{(\s]*(?:\d+(?:\.\d+)?\s+(?:HR|ML|ACTUAT|DAY)?\s*|Abuse-Deterrent\s+)*", re.I)
_VOLUME = re.compile(r"(?:^|\(|\{|/ )\s*(\d+(?:\.\d+)?) ML heparin", re.I)
_CONCENTRATION = re.compile(r"heparin sodium[^/]*?(\d+(?:\.\d+)?) UNT/ML", re.I)

CONDITION_SETS: dict[str, str] = {
    "pregnancy": "pregnancy",
    "pregnancy-or-other-related-diagnoses": "pregnancy",
    "osteoporosis": "osteoporosis",
    "osteoporotic-fractures": "osteoporotic-vcf",
    "malignant-neoplasm-of-lymphatic-and-hematopoietic-tissue": "myeloma",
    "cancer": "bone-metastasis",
}
NOT_USED_SETS: dict[str, str] = {
    "asthma": "asthma is not among the severe lung diseases of the lung limit (clinical-rules.md section 2)",
    "chronic-kidney-disease-stage-5": "renal function is read from eGFR/CrCl results, not diagnoses",
    "end-stage-renal-disease": "renal function is read from eGFR/CrCl results, not diagnoses",
    "kidney-failure": "renal function is read from eGFR/CrCl results, not diagnoses",
    "chronic-liver-disease": "no rule reads liver disease (coagulopathy is read from its own codes and the INR)",
    "osteopenia": "osteopenia is not osteoporosis; no rule reads it",
    "creatinine-lab-test": "no LabKind for creatinine (CrCl needs weight and age)",
    "creatinine-mass-per-volume": "no LabKind for creatinine (CrCl needs weight and age)",
    "hemoglobin-lab-test": "no rule reads hemoglobin",
    "bone-scan": "a bone scan is not the MRI/CT confirmation the rules ask for",
    "dexa-bone-density-for-urology-care": "DXA results are read as T-scores (observations.json)",
}
LAB_SETS: dict[str, str] = {
    "inr": "inr",
    "platelet-count-lab-test": "platelets",
    "estimated-glomerular-filtration-rate": "egfr",
    "pregnancy-test": "hcg",
}
# Pregnancy value sets hold ended pregnancies too; these no longer mean "pregnant now".
ENDED_PREGNANCY = re.compile(
    r"\b(postpartum|puerper|following (?:complete|incomplete|failed|ectopic|molar)|abortion|miscarriage|"
    r"lactation|delivered|encounter for (?:care|full-term)|sequelae|after delivery)\b",
    re.I,
)
ENDED_PREGNANCY_ICD = ("O03", "O04", "O07", "O08", "O80", "O82", "O85", "O86", "O87", "O89", "O90", "O91",
                       "O92", "O94")
BONE_METASTASIS = re.compile(r"(secondary|metasta)\w*[^,]*\b(bone|vertebra|spine|spinal column)\b", re.I)
PRIMARY_SPINE = re.compile(r"\bmalignant neoplasm of (vertebral column|vertebra)", re.I)
MYELOMA = re.compile(r"\b(multiple myeloma|plasmacytoma|plasma cell leuk|myelomatosis)\b", re.I)
VERTEBRAL = re.compile(r"\bvertebra", re.I)
FRACTURE = re.compile(r"\b(fracture|collapse)", re.I)


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _tty(display: str) -> str:
    """RxNorm term type as the display's form shows it (the value sets do not carry it)."""
    if display.startswith("{") or display.endswith(" Pack") or "} Pack" in display:
        return "BPCK" if display.rstrip().endswith("]") else "GPCK"
    if not re.search(r"\d", display):
        return "BN" if display[:1].isupper() and " " not in display.strip() else "IN"
    return "SBD" if display.rstrip().endswith("]") else "SCD"


class Classifier:
    def __init__(self, names: list[dict[str, Any]]) -> None:
        self.names = [(re.compile(n["pattern"], re.I), n["ingredient"], n["drug_class"]) for n in names]

    def __call__(self, display: str) -> tuple[str, str] | None:
        found: dict[str, str] = {}
        for pattern, ingredient, drug_class in self.names:
            if pattern.search(display) and ingredient not in found:
                found[ingredient] = drug_class
        if not found:
            return None
        best = min(found.values(), key=CLASS_PRIORITY.index)
        ingredients = sorted(i for i, c in found.items() if c == best)
        return " / ".join(ingredients), best


def heparin_flush(display: str) -> str | None:
    """Why a heparin product is a catheter flush or patency solution rather than anticoagulation."""
    if "heparin" not in display.lower():
        return None
    if re.search(r"\b(flush|lock)\b", display, re.I):
        return "heparin lock flush: keeps a line open, not systemic anticoagulation"
    concentration = _CONCENTRATION.search(display)
    if concentration is None:
        return None
    units_per_ml = float(concentration.group(1))
    volume = _VOLUME.search(display)
    if units_per_ml <= 10:
        return "heparin <=10 units/mL: catheter patency solution, not systemic anticoagulation"
    if units_per_ml <= 100 and volume is not None and float(volume.group(1)) <= 10:
        return "heparin <=100 units/mL in <=10 mL: lock flush syringe, not systemic anticoagulation"
    return None


def _drug(
    set_id: str, code: str, display: str, classify: Callable[[str], tuple[str, str] | None]
) -> tuple[dict[str, Any] | None, str | None]:
    if THROMBOLYTIC.search(display):
        return None, "thrombolytic: no drug class for it (given acutely in hospital, not a hold decision)"
    flush = heparin_flush(display)
    if flush is not None:
        return None, flush
    found = classify(display)
    if found is None and set_id == "opioids-all":
        if NOT_PAIN_CARE.search(display):
            return None, "opioid in a cough/cold or opioid-use-disorder product: not conservative pain care"
        match = OPIOID_INGREDIENT.search(_LEADING_AMOUNTS.sub("", display))
        found = ((match.group(1).strip().lower() if match else display.lower()), "analgesic")
    if found is None:
        return None, "no known ingredient in the display"
    if set_id == "opioids-all" and found[1] == "analgesic" and NOT_PAIN_CARE.search(display):
        return None, "opioid in a cough/cold or opioid-use-disorder product: not conservative pain care"
    ingredient, drug_class = found
    return {
        "system": RXNORM,
        "code": code,
        "display": display,
        "ingredient": ingredient,
        "drug_class": drug_class,
        "tty": _tty(display),
    }, None


def _condition(set_id: str, system: str, code: str, display: str) -> tuple[str | None, str | None]:
    group = CONDITION_SETS[set_id]
    if group == "pregnancy":
        if ENDED_PREGNANCY.search(display) or (system == ICD10CM and code.startswith(ENDED_PREGNANCY_ICD)):
            return None, "an ended pregnancy (abortive outcome, delivery or puerperium), not pregnancy now"
        return group, None
    if set_id == "osteoporosis" and VERTEBRAL.search(display) and FRACTURE.search(display):
        set_id, group = "osteoporotic-fractures", "osteoporotic-vcf"  # also in that set: same answer
    if set_id == "osteoporotic-fractures":
        if not VERTEBRAL.search(display):
            return None, "an osteoporotic fracture of a bone other than a vertebra"
        if system == ICD10CM and code.endswith("S"):
            return "healed-fracture", None  # 7th character S: sequela (clinical-rules.md section 2)
        return group, None
    if set_id == "malignant-neoplasm-of-lymphatic-and-hematopoietic-tissue":
        return (group, None) if MYELOMA.search(display) else (None, None)  # other blood cancers: not listed
    if set_id == "cancer":
        if PRIMARY_SPINE.search(display):
            return "primary-spine-tumor", None
        if BONE_METASTASIS.search(display):
            return "bone-metastasis", None
        return None, None  # most of the cancer set: not a spine indication, not listed one by one
    return group, None


def _lab(set_id: str, display: str) -> tuple[str | None, str | None]:
    kind = LAB_SETS[set_id]
    if kind == "platelets" and re.search(r"\bLarge\b", display):
        return None, "large-platelet measure, not a platelet count"
    if kind == "hcg" and re.search(r"Cord blood|Moles/volume|Mass/volume|Mass/time|24 hour", display):
        return None, "hCG in a unit or specimen the 5 mIU/mL cut-off does not apply to"
    return kind, None


def generate(value_sets: Path) -> dict[str, Any]:
    curated = _load(CURATED)
    names = _load(MEDICATIONS)["names"] + curated["drug_names"]
    classify = Classifier(names)
    lists: list[dict[str, Any]] = []
    medications: dict[str, dict[str, Any]] = {}
    conditions: dict[tuple[str, str], dict[str, Any]] = {}
    observations: dict[str, dict[str, Any]] = {}
    excluded: dict[tuple[str, str], dict[str, Any]] = {}

    def exclude(system: str, code: str, display: str, set_id: str, reason: str) -> None:
        entry = excluded.setdefault((system, code), {"system": system, "code": code, "display": display,
                                                     "reason": reason, "lists": []})
        if set_id not in entry["lists"]:
            entry["lists"].append(set_id)

    for path in sorted(value_sets.glob("*.json")):
        set_id = path.stem
        vs = _load(path)
        counts = {"codes": 0, "mapped": 0, "excluded": 0}
        use = ("medications" if set_id in DRUG_SETS else "conditions" if set_id in CONDITION_SETS
               else "observations" if set_id in LAB_SETS else "not used")
        for system_name, codes in sorted(vs["codes"].items()):
            system = SYSTEMS.get(system_name)
            for item in codes:
                counts["codes"] += 1
                code, display = item["code"], item["display"]
                if use == "not used" or system is None:
                    continue
                reason: str | None = None
                if use == "medications":
                    entry, reason = _drug(set_id, code, display, classify)
                    if entry is not None:
                        entry = medications.setdefault(code, {**entry, "lists": []})
                        entry["lists"].append(set_id)
                elif use == "conditions":
                    group, reason = _condition(set_id, system, code, display)
                    if group is not None:
                        key = (system, code)
                        previous = conditions.get(key)
                        if previous is not None and previous["group"] != group:
                            raise SystemExit(f"{set_id}: {system}|{code} in two groups")
                        entry = conditions.setdefault(key, {"system": system, "code": code, "display": display,
                                                            "group": group, "lists": []})
                        entry["lists"].append(set_id)
                else:
                    kind, reason = _lab(set_id, display)
                    if kind is not None:
                        entry = observations.setdefault(code, {"system": system, "code": code, "display": display,
                                                               "kind": kind, "lists": []})
                        entry["lists"].append(set_id)
                if reason is not None:
                    exclude(system, code, display, set_id, reason)
                    counts["excluded"] += 1
                elif use != "conditions" or (system, code) in conditions:
                    counts["mapped"] += 1
        lists.append({
            "id": set_id,
            "name": vs["name"],
            "oid": vs["oid"],
            "url": vs.get("url"),
            "definition_version": vs.get("definition_version"),
            "expansion": vs.get("expansion"),
            "source": "VSAC",
            "used_for": use,
            "why_not_used": NOT_USED_SETS.get(set_id),
            **counts,
        })
    for item in curated["conditions"]:
        key = (item["system"], item["code"])
        entry = conditions.setdefault(key, {**{k: item[k] for k in ("system", "code", "display", "group")},
                                            "lists": []})
        entry["lists"].append(f"curated:{item['source']}")
    for item in curated["observations"]:
        entry = observations.setdefault(item["code"], {**{k: item[k] for k in ("system", "code", "display", "kind")},
                                                       "lists": []})
        entry["lists"].append(f"curated:{item['source']}")
    for entry in medications.values():
        excluded.pop((RXNORM, entry["code"]), None)  # classified through another list
    return {
        "name": "generated",
        "version": max((str(x["expansion"]) for x in lists), default=""),
        "description": "Generated by scripts/codesets/generate.py from the VSAC eCQM value sets in "
        "../shared/reference/value-sets and scripts/codesets/curated.json. Do not edit by hand: change the "
        "inputs and run the script again (a test compares). Entries here are looked up after the hand-curated "
        "sets, which win for any code they also list.",
        "lists": lists,
        "curated_sources": curated["sources"],
        "medications": sorted(medications.values(), key=lambda e: (e["drug_class"], e["ingredient"], e["code"])),
        "conditions": sorted(conditions.values(), key=lambda e: (e["group"], e["system"], e["code"])),
        "observations": sorted(observations.values(), key=lambda e: (e["kind"], e["code"])),
        "excluded": sorted(excluded.values(), key=lambda e: (e["system"], e["code"])),
    }


def dumps(data: dict[str, Any]) -> str:
    """One entry per line: readable diffs, stable bytes."""
    lines = ["{"]
    keys = list(data)
    for index, key in enumerate(keys):
        comma = "," if index < len(keys) - 1 else ""
        value = data[key]
        if isinstance(value, list):
            lines.append(f"  {json.dumps(key)}: [")
            lines.extend(
                f"    {json.dumps(item, ensure_ascii=False)}{',' if i < len(value) - 1 else ''}"
                for i, item in enumerate(value)
            )
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--value-sets", type=Path, default=DEFAULT_VALUE_SETS)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not args.value_sets.is_dir():
        print(f"no value sets at {args.value_sets}", file=sys.stderr)
        return 2
    args.out.write_text(dumps(generate(args.value_sets)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
