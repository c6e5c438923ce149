"""Checks of CDS Hooks 2.0 response rules, written from the conformance checklist (section 4) and
the Inferno CRD server kit's card validation (section 8). Each returns a list of problems."""

from __future__ import annotations

import re
import uuid
from typing import Any

UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def empty_values(value: Any, path: str = "$") -> list[str]:
    """Paths holding null, "", [] or {} (section 0); the top-level `cards: []` is the one exception."""
    problems: list[str] = []
    if value is None or value == "" or value == [] or value == {}:
        if path != "$.cards":
            problems.append(path)
        return problems
    if isinstance(value, dict):
        for key, item in value.items():
            problems.extend(empty_values(item, f"{path}.{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems.extend(empty_values(item, f"{path}[{index}]"))
    return problems


def is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def action_problems(action: dict[str, Any], where: str) -> list[str]:
    problems = []
    if action.get("type") not in ("create", "update", "delete"):
        problems.append(f"{where}: type {action.get('type')!r}")
    if not isinstance(action.get("description"), str) or not action["description"]:
        problems.append(f"{where}: description missing")
    if action.get("type") in ("create", "update") and not isinstance(action.get("resource"), dict):
        problems.append(f"{where}: {action.get('type')} without resource")
    if action.get("type") == "delete" and not re.match(
        r"^[A-Z][A-Za-z]+/[^/]+$", str(action.get("resourceId"))
    ):
        problems.append(f"{where}: delete without a Type/id resourceId")
    return problems


def card_problems(card: dict[str, Any], index: int) -> list[str]:
    where = f"cards[{index}]"
    problems: list[str] = []
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary or len(summary) >= 140:
        problems.append(f"{where}.summary must be a non-empty string under 140 characters")
    if card.get("indicator") not in ("info", "warning", "critical"):
        problems.append(f"{where}.indicator {card.get('indicator')!r}")
    source = card.get("source")
    if not isinstance(source, dict) or not source.get("label"):
        problems.append(f"{where}.source.label missing")
    else:
        topic = source.get("topic")
        if not isinstance(topic, dict) or not topic.get("code") or not topic.get("system"):
            problems.append(f"{where}.source.topic needs code and system (Inferno CRD)")
        if "url" in source and not str(source["url"]).startswith(("http://", "https://")):
            problems.append(f"{where}.source.url not absolute")
    if not is_uuid(card.get("uuid")):
        problems.append(f"{where}.uuid is not a UUID")
    suggestions = card.get("suggestions")
    if suggestions is not None:
        behaviour = card.get("selectionBehavior")
        if behaviour not in ("at-most-one", "any"):
            problems.append(f"{where}.selectionBehavior required with suggestions")
        recommended = sum(1 for s in suggestions if s.get("isRecommended"))
        if behaviour == "at-most-one" and recommended > 1:
            problems.append(f"{where}: more than one recommended suggestion with at-most-one")
        for s_index, suggestion in enumerate(suggestions):
            s_where = f"{where}.suggestions[{s_index}]"
            if not suggestion.get("label"):
                problems.append(f"{s_where}.label missing")
            if not is_uuid(suggestion.get("uuid")):
                problems.append(f"{s_where}.uuid is not a UUID")
            actions = suggestion.get("actions")
            if not isinstance(actions, list) or not actions:
                problems.append(f"{s_where}.actions must be a non-empty array")
            for a_index, action in enumerate(actions or []):
                problems.extend(action_problems(action, f"{s_where}.actions[{a_index}]"))
    for r_index, reason in enumerate(card.get("overrideReasons") or []):
        if not all(reason.get(k) for k in ("code", "system", "display")):
            problems.append(f"{where}.overrideReasons[{r_index}] needs code, system and display")
    for l_index, link in enumerate(card.get("links") or []):
        l_where = f"{where}.links[{l_index}]"
        if not link.get("label") or link.get("type") not in ("absolute", "smart"):
            problems.append(f"{l_where}: label and type absolute|smart required")
        if not str(link.get("url", "")).startswith(("http://", "https://")):
            problems.append(f"{l_where}.url not an absolute http(s) URL")
        if link.get("type") == "absolute" and "appContext" in link:
            problems.append(f"{l_where}: appContext only with smart links")
    return problems


def response_problems(body: dict[str, Any]) -> list[str]:
    problems = [f"empty or null value at {p}" for p in empty_values(body)]
    if not isinstance(body.get("cards"), list):
        return [*problems, "cards must be an array"]
    for index, card in enumerate(body["cards"]):
        problems.extend(card_problems(card, index))
    for index, action in enumerate(body.get("systemActions") or []):
        problems.extend(action_problems(action, f"systemActions[{index}]"))
    return problems
