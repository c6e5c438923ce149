"""Condition → ConditionFact: active, not refuted, in one of the code-set groups the rules use.

A condition is read from its codes first; when none of them is known, its free text is read with the
curated phrases of `fhir_mappings.phrases` (negation and history handled) and the fact says so
("recorded as free text: …"), because text carries less certainty than a code. An active entry with
neither a code nor any text is listed as unreadable. Abatement is kept on the fact: whether it is in
the past depends on the clock of the call (`fhir_mappings.record.facts_from`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from fhir_mappings.codesets import CodeSets
from fhir_mappings.json_access import (
    JsonObject,
    codings,
    concept_text,
    first_date,
    obj,
    parse_date,
    reference_of,
    status_code,
)
from fhir_mappings.parsing import validation_problem
from fhir_mappings.phrases import PhraseMatcher, default_phrases
from rules.facts import ConditionFact, Evidence, ParseIssue, Unreadable

ACTIVE_CLINICAL_STATUSES = frozenset({"active", "recurrence", "relapse"})
EXCLUDED_VERIFICATION_STATUSES = frozenset({"refuted", "entered-in-error"})
FREE_TEXT_PREFIX = "recorded as free text: "
_TEXT_MAX = 120  # quoted in a card summary: keep it short


def is_current(condition: JsonObject) -> bool:
    """Active/recurrent/relapsed and not refuted. A missing clinicalStatus counts as active unless abated."""
    verification = status_code(condition.get("verificationStatus"))
    if verification in EXCLUDED_VERIFICATION_STATUSES:
        return False
    clinical = status_code(condition.get("clinicalStatus"))
    if clinical is None:
        return not any(key.startswith("abatement") for key in condition)
    return clinical in ACTIVE_CLINICAL_STATUSES


def abated_on(condition: JsonObject) -> date | None:
    """When the condition abated: abatementDateTime, abatementPeriod (end, else start); date.min for an
    abatement without a date (abatementString, Age, Range, Boolean true): it abated at some point."""
    found = parse_date(condition.get("abatementDateTime"))
    if found is not None:
        return found
    period = obj(condition.get("abatementPeriod"))
    if period:
        return parse_date(period.get("end")) or parse_date(period.get("start")) or date.min
    if any(k in condition for k in ("abatementString", "abatementAge", "abatementRange")):
        return date.min
    return date.min if condition.get("abatementBoolean") is True else None


def _short(words: str) -> str:
    words = " ".join(words.split())
    return words if len(words) <= _TEXT_MAX else words[: _TEXT_MAX - 1].rsplit(" ", 1)[0] + "…"


def map_conditions(
    resources: Iterable[JsonObject],
    codesets: CodeSets,
    issues: list[ParseIssue],
    unreadable: list[Unreadable] | None = None,
    phrases: PhraseMatcher | None = None,
) -> tuple[ConditionFact, ...]:
    matcher = phrases if phrases is not None else default_phrases()
    facts: list[ConditionFact] = []
    for resource in resources:
        code_concept = obj(resource.get("code"))
        coded = list(codings(code_concept))
        matched = [(s, c, d, codesets.condition_groups(s, c)) for s, c, d in coded]
        matched = [m for m in matched if m[3]]
        from_text = False
        groups: frozenset[str] = frozenset()
        if matched:
            groups = frozenset().union(*(m[3] for m in matched))
        else:
            words = concept_text(code_concept)
            if not words and not coded:
                if unreadable is not None and is_current(resource):
                    unreadable.append(
                        Unreadable(
                            kind="condition",
                            reference=reference_of(resource),
                            what="condition entry with neither a code nor text",
                        )
                    )
                continue
            groups = matcher.groups_in(words) if words else frozenset()
            from_text = bool(groups)
        if not groups or not is_current(resource):
            continue
        problem = validation_problem(resource)
        if problem is not None:
            issues.append(problem)
            continue
        if from_text:
            system, code = "text", ""
            words = FREE_TEXT_PREFIX + _short(concept_text(code_concept))
        else:
            system, code, display, _ = matched[0]
            words = display or concept_text(code_concept) or code
        onset = first_date(resource, "onsetDateTime", "onsetPeriod", "recordedDate")
        facts.append(
            ConditionFact(
                groups=groups,
                code=code,
                system=system,
                display=words,
                onset=onset,
                abated=abated_on(resource),
                from_text=from_text,
                evidence=Evidence(reference=reference_of(resource), display=words, recorded=onset),
            )
        )
    return tuple(facts)
