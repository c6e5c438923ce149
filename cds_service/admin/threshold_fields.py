"""The thresholds as an admin sees them: fields with their metadata, flat paths, readable errors, diffs.

Everything here is derived from `rules.thresholds`, so a field added to the model shows up on the admin
page, in the API's schema and in diffs without further work.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from rules.sources import SOURCES
from rules.thresholds import RULE_IDS, HoldIntervals, Thresholds

FieldKind = Literal["int", "float", "codes"]
INDICATORS = ("info", "warning", "critical")
FORM_ERROR = "_form"

# Page sections, in the order a clinician thinks about an order. A field missing here lands in "Other".
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Levels treated in one session", ("max_levels_per_session", "max_levels_severe_lung")),
    (
        "Severe lung disease",
        ("fev1_severe_percent_predicted", "spo2_severe_percent", "lung_function_lookback_days"),
    ),
    (
        "Coagulation and kidney labs",
        (
            "inr_warning_max",
            "inr_critical_max",
            "platelets_min_10e9_per_l",
            "inr_lookback_days",
            "platelets_lookback_days",
            "renal_lookback_days",
        ),
    ),
    (
        "Pain and conservative care",
        (
            "pain_nrs_min_outpatient",
            "pain_nrs_min_inpatient",
            "pain_lookback_days",
            "conservative_care_min_weeks",
        ),
    ),
    (
        "Imaging and fracture age",
        ("imaging_lookback_days", "fracture_age_warning_days", "kyphoplasty_height_restoration_days"),
    ),
    ("Bone health follow-up", ("dxa_lookback_days", "t_score_osteoporosis_max")),
    (
        "Hold intervals before the procedure",
        tuple(f"hold_intervals.{name}" for name in HoldIntervals.model_fields),
    ),
    ("Procedure codes", ("procedure_snomed_codes",)),
)
_NOT_FIELDS = ("hold_intervals", "rules")


@dataclass(frozen=True)
class FieldSpec:
    """One editable figure with everything the page, the API schema and the README show about it."""

    path: str
    label: str
    description: str
    unit: str
    kind: FieldKind
    ge: float | None
    le: float | None
    default: Any
    source: str
    source_label: str
    source_url: str
    verification: str
    group: str

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "label": self.label,
            "description": self.description,
            "unit": self.unit,
            "type": self.kind,
            "minimum": self.ge,
            "maximum": self.le,
            "default": self.default,
            "source": {"id": self.source, "label": self.source_label, "url": self.source_url},
            "verification": self.verification,
            "group": self.group,
        }


def _bound(info: FieldInfo, name: str) -> float | None:
    for item in info.metadata:
        value = getattr(item, name, None)
        if value is not None:
            return float(value)
    return None


def _label(path: str) -> str:
    name = path.rsplit(".", 1)[-1]
    words = name.replace("_", " ")
    for unit in (
        " days",
        " hours",
        " weeks",
        " ml per min",
        " 10e9 per l",
        " percent predicted",
        " percent",
    ):
        if words.endswith(unit):
            words = words[: -len(unit)]
    words = re.sub(r"\binr\b", "INR", words)
    words = re.sub(r"\bnrs\b", "NRS", words)
    words = re.sub(r"\bdxa\b", "DXA", words)
    words = re.sub(r"\bfev1\b", "FEV1", words)
    words = re.sub(r"\bspo2\b", "SpO2", words)
    words = re.sub(r"\bcrcl\b", "CrCl", words)
    words = re.sub(r"\blmwh\b", "LMWH", words)
    return words[:1].upper() + words[1:]


def _spec(path: str, info: FieldInfo, group: str) -> FieldSpec:
    extra = info.json_schema_extra
    assert isinstance(extra, dict), path
    source = SOURCES.get(str(extra["source"]))
    annotation = info.annotation
    kind: FieldKind = "int" if annotation is int else "float" if annotation is float else "codes"
    default = info.get_default(call_default_factory=True)
    return FieldSpec(
        path=path,
        label=_label(path),
        description=info.description or "",
        unit=str(extra["unit"]),
        kind=kind,
        ge=_bound(info, "ge"),
        le=_bound(info, "le"),
        default=list(default) if isinstance(default, tuple) else default,
        source=str(extra["source"]),
        source_label=source.label if source else str(extra["source"]),
        source_url=(source.url or "") if source else "",
        verification=str(extra["verification"]),
        group=group,
    )


def _all_infos() -> dict[str, FieldInfo]:
    infos = {name: info for name, info in Thresholds.model_fields.items() if name not in _NOT_FIELDS}
    infos.update({f"hold_intervals.{name}": info for name, info in HoldIntervals.model_fields.items()})
    return infos


def field_specs() -> tuple[FieldSpec, ...]:
    """Every editable figure (rule switches aside), grouped for the page."""
    infos = _all_infos()
    specs: list[FieldSpec] = []
    placed: set[str] = set()
    for group, paths in GROUPS:
        for path in paths:
            if path in infos:
                specs.append(_spec(path, infos[path], group))
                placed.add(path)
    specs += [_spec(path, info, "Other") for path, info in infos.items() if path not in placed]
    return tuple(specs)


def path_label(path: str) -> str:
    """A readable name for a field path, as a diff shows it."""
    if path.startswith("rules."):
        rule_id, _, part = path.removeprefix("rules.").rpartition(".")
        return f"Rule {rule_id}: " + ("on" if part == "enabled" else "indicator")
    return _label(path)


def grouped_specs() -> list[tuple[str, list[FieldSpec]]]:
    groups: dict[str, list[FieldSpec]] = {}
    for spec in field_specs():
        groups.setdefault(spec.group, []).append(spec)
    return list(groups.items())


def schema_json() -> dict[str, Any]:
    return {
        "fields": [spec.as_json() for spec in field_specs()],
        "rules": {"ids": list(RULE_IDS), "indicators": list(INDICATORS)},
    }


# --------------------------------------------------------------------------- flat views and diffs


def flatten(thresholds: Thresholds) -> dict[str, Any]:
    """`path -> value` for every field and rule switch; lists for code lists (JSON-friendly)."""
    dumped = thresholds.model_dump(mode="json")
    flat: dict[str, Any] = {}
    for spec in field_specs():
        value: Any = dumped
        for part in spec.path.split("."):
            value = value[part]
        flat[spec.path] = value
    for rule_id in RULE_IDS:
        setting = thresholds.rule(rule_id)
        flat[f"rules.{rule_id}.enabled"] = setting.enabled
        flat[f"rules.{rule_id}.indicator"] = setting.indicator
    return flat


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any

    def as_json(self) -> dict[str, Any]:
        return {"field": self.path, "from": self.before, "to": self.after}


def diff(before: Thresholds, after: Thresholds) -> list[Change]:
    old, new = flatten(before), flatten(after)
    return [Change(path, old.get(path), new.get(path)) for path in new if old.get(path) != new.get(path)]


# --------------------------------------------------------------------------- the page's form


def split_codes(text: str) -> list[str]:
    return [code for code in re.split(r"[\s,;]+", text) if code]


def values_from_form(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The nested values a form describes, and the errors found before validation (empty fields).

    Checkboxes are absent from a form when unchecked, so a rule is enabled only when its box is sent.
    """
    values: dict[str, Any] = {"hold_intervals": {}, "rules": {}}
    errors: dict[str, list[str]] = {}
    for spec in field_specs():
        raw = (form.get(spec.path) or "").strip()
        value: Any
        if spec.kind == "codes":
            value = split_codes(raw)
        elif not raw:
            errors[spec.path] = ["required: enter a value"]
            continue
        else:
            value = raw
        if spec.path.startswith("hold_intervals."):
            values["hold_intervals"][spec.path.split(".", 1)[1]] = value
        else:
            values[spec.path] = value
    for rule_id in RULE_IDS:
        indicator = (form.get(f"rules.{rule_id}.indicator") or "").strip()
        values["rules"][rule_id] = {
            "enabled": f"rules.{rule_id}.enabled" in form,
            "indicator": indicator or None,
        }
    return values, errors


def missing_fields(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """A replacement must name every figure: a forgotten field would silently fall back to its default."""
    message = "required: a replacement must give every value (start from GET /admin/api/thresholds)"
    missing = {name: [message] for name in Thresholds.model_fields if name not in values and name != "rules"}
    holds = values.get("hold_intervals")
    if isinstance(holds, Mapping):
        missing.update(
            {f"hold_intervals.{name}": [message] for name in HoldIntervals.model_fields if name not in holds}
        )
    return missing


# --------------------------------------------------------------------------- readable errors


def _friendly(item: Mapping[str, Any], spec: FieldSpec | None) -> str:
    kind = item["type"]
    unit = f" {spec.unit}" if spec else ""
    ctx = item.get("ctx") or {}
    if kind == "greater_than_equal":
        return f"must be at least {_number(ctx.get('ge'))}{unit}"
    if kind == "less_than_equal":
        return f"must be at most {_number(ctx.get('le'))}{unit}"
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return "enter a whole number"
    if kind in ("float_parsing", "float_type"):
        return "enter a number"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown setting"
    if kind == "literal_error":
        return "choose one of: " + ", ".join(INDICATORS)
    message: str = item["msg"]
    return message.removeprefix("Value error, ")


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def field_errors(error: ValidationError) -> dict[str, list[str]]:
    """Messages per field path; the model's cross-field checks are attached to the field they name."""
    specs = {spec.path: spec for spec in field_specs()}
    known = [*specs, "rules"]
    errors: dict[str, list[str]] = {}
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        if loc:
            path = ".".join(loc)
            errors.setdefault(path, []).append(_friendly(item, specs.get(path)))
            continue
        for problem in str(item["msg"]).removeprefix("Value error, ").split("; "):
            # a check of a pair names both fields: the message goes to each (the form marks both)
            named = [p for p in known if re.search(rf"(?<![\w.]){re.escape(p)}(?![\w.])", problem)]
            for path in sorted(named, key=problem.find) or [FORM_ERROR]:
                errors.setdefault(path, []).append(problem)
    return errors


def errors_json(errors: Mapping[str, list[str]]) -> list[dict[str, str]]:
    return [{"field": path, "message": message} for path, messages in errors.items() for message in messages]
