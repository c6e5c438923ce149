"""Every threshold has a unit, bounds, a description and a cited source, and the README says so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from rules.sources import SOURCES
from rules.thresholds import DEFAULT_THRESHOLDS, RULE_IDS, HoldIntervals, Thresholds

README = Path(__file__).resolve().parents[2] / "README.md"
NUMERIC_SKIP = {"hold_intervals", "rules", "procedure_snomed_codes"}


def documented_fields() -> list[tuple[str, type[BaseModel], str]]:
    fields = [
        (name, Thresholds, name)
        for name in Thresholds.model_fields
        if name not in ("hold_intervals", "rules")
    ]
    fields += [(name, HoldIntervals, f"hold_intervals.{name}") for name in HoldIntervals.model_fields]
    return fields


@pytest.mark.parametrize(
    ("name", "model", "path"), documented_fields(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_threshold_has_unit_description_and_a_known_source(
    name: str, model: type[BaseModel], path: str
) -> None:
    field = model.model_fields[name]
    extra = field.json_schema_extra
    assert isinstance(extra, dict)
    assert extra["unit"]
    assert extra["source"] in SOURCES
    assert extra["verification"] in ("verified", "partial", "unverified")
    assert field.description


@pytest.mark.parametrize(
    ("name", "model", "path"), documented_fields(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_numeric_threshold_has_bounds_and_a_unit_in_its_name(
    name: str, model: type[BaseModel], path: str
) -> None:
    if name in NUMERIC_SKIP:
        return
    metadata = model.model_fields[name].metadata
    assert any(hasattr(m, "ge") for m in metadata), f"{path} has no lower bound"
    assert any(hasattr(m, "le") for m in metadata), f"{path} has no upper bound"
    assert re.search(
        r"_(days|hours|weeks|levels|percent|percent_predicted|ml_per_min|per_l|max|min|nrs_min_\w+)$|session$|lung$",
        name,
    ) or name.endswith(("_max", "_min")), name


@pytest.mark.parametrize(
    ("name", "model", "path"), documented_fields(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_the_readme_table_lists_every_threshold_with_its_unit_and_source(
    name: str, model: type[BaseModel], path: str
) -> None:
    extra = model.model_fields[name].json_schema_extra
    assert isinstance(extra, dict)
    rows = [
        line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith(f"| `{path}` |")
    ]
    assert len(rows) == 1, f"README has no row for {path}"
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    default = model.model_fields[name].get_default(call_default_factory=True)
    assert cells[1] == (", ".join(default) or "(empty)" if isinstance(default, tuple) else str(default))
    assert cells[2] == extra["unit"]
    assert cells[4].startswith(str(extra["source"]))


def test_rule_settings_cover_every_rule_and_default_to_enabled() -> None:
    assert set(DEFAULT_THRESHOLDS.rules) == set(RULE_IDS)
    assert all(setting.enabled and setting.indicator is None for setting in DEFAULT_THRESHOLDS.rules.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"inr_warning_max": 2.0, "inr_critical_max": 1.8},
            "inr_critical_max must be at least inr_warning_max",
        ),
        (
            {"max_levels_severe_lung": 4, "max_levels_per_session": 3},
            "max_levels_severe_lung must not exceed",
        ),
        ({"pain_nrs_min_inpatient": 4}, "pain_nrs_min_inpatient must be at least"),
        ({"rules": {"no-such-rule": {"enabled": False}}}, "unknown rule ids"),
        ({"procedure_snomed_codes": ["abc"]}, "is not a SNOMED CT concept id"),
        ({"hold_intervals": {"warfarin_hold_days": -1}}, "greater than or equal to 0"),
        ({"max_levels_per_session": 0}, "greater than or equal to 1"),
    ],
)
def test_inconsistent_or_out_of_bounds_thresholds_are_refused(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Thresholds.model_validate({**DEFAULT_THRESHOLDS.model_dump(), **change})


def test_thresholds_are_frozen() -> None:
    with pytest.raises(ValidationError):
        DEFAULT_THRESHOLDS.max_levels_severe_lung = 5  # type: ignore[misc]


def test_defaults_match_the_clinical_reference() -> None:
    t = DEFAULT_THRESHOLDS
    assert (t.max_levels_per_session, t.max_levels_severe_lung) == (3, 2)
    assert (t.inr_warning_max, t.inr_critical_max, t.platelets_min_10e9_per_l) == (1.5, 1.8, 50)
    assert (t.pain_nrs_min_outpatient, t.pain_nrs_min_inpatient) == (5, 8)
    assert (t.imaging_lookback_days, t.fracture_age_warning_days, t.dxa_lookback_days) == (180, 180, 730)
    assert (t.hold_intervals.warfarin_hold_days, t.hold_intervals.apixaban_hold_days) == (5, 2)
