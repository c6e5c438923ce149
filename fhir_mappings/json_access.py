"""Small typed readers over raw FHIR JSON, used before (and instead of) full model access.

Raw JSON is read first so that the thousands of resources a rule does not care about cost a dict
lookup each; only the few that match a code set are validated with the R4B models.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

JsonObject = dict[str, Any]


def obj(value: object) -> JsonObject:
    return value if isinstance(value, dict) else {}


def objects(value: object) -> list[JsonObject]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def codings(concept: object) -> Iterator[tuple[str, str, str | None]]:
    """(system, code, display) of each coding of a CodeableConcept that has a system and a code."""
    for coding in objects(obj(concept).get("coding")):
        system, code = text(coding.get("system")), text(coding.get("code"))
        if system and code:
            yield system, code.strip(), text(coding.get("display"))


def concept_text(concept: object) -> str:
    """The human words of a CodeableConcept: its text, else its codings' displays."""
    c = obj(concept)
    words = [text(c.get("text"))] + [text(coding.get("display")) for coding in objects(c.get("coding"))]
    return " / ".join(dict.fromkeys(w for w in words if w))


def status_code(concept: object) -> str | None:
    """The code of a status CodeableConcept (Condition.clinicalStatus and friends)."""
    for coding in objects(obj(concept).get("coding")):
        code = text(coding.get("code"))
        if code:
            return code
    return None


def parse_date(value: object) -> date | None:
    """A FHIR date, dateTime or instant to a date; partial dates (YYYY, YYYY-MM) take the first day."""
    raw = text(value)
    if raw is None:
        return None
    try:
        if len(raw) == 4:
            return date(int(raw), 1, 1)
        if len(raw) == 7:
            return date(int(raw[:4]), int(raw[5:7]), 1)
        if len(raw) == 10:
            return date.fromisoformat(raw)
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def first_date(resource: JsonObject, *fields: str) -> date | None:
    """The first parseable date among fields; `xPeriod` fields use their start."""
    for field in fields:
        value = resource.get(field)
        if isinstance(value, dict):
            value = value.get("start")
        found = parse_date(value)
        if found is not None:
            return found
    return None


def reference_of(resource: JsonObject) -> str:
    kind = text(resource.get("resourceType")) or "Resource"
    rid = text(resource.get("id"))
    return f"{kind}/{rid}" if rid else f"{kind}/(no id)"
