"""Evaluation → CDS Hooks cards, one per finding, most severe first."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from cards.detail import render_detail
from cards.models import Card, Coding, Link, OverrideReason, Source, Suggestion
from cards.suggestions import OrderContext, suggestions_for
from cards.wording import summary_for
from rules.findings import Evaluation, Finding
from rules.sources import source

RULE_CODE_SYSTEM = "http://vertebral-cds.org/fhir/CodeSystem/rule"
OVERRIDE_REASON_SYSTEM = "http://vertebral-cds.org/fhir/CodeSystem/override-reason"
# CDS Hooks 3.0 (ballot) codes override reasons from the non-adherence reason codes (value set
# http://terminology.hl7.org/ValueSet/non-adherence-reason; codes from the AHRQ CDSiC override taxonomy).
# Where one fits, a reason is sent with that system and code; where none does, the service's own code
# stays. A 2.0 client reads any Coding, so the change is invisible to it.
NON_ADHERENCE_SYSTEM = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
EXTENSION_KEY = "vertebral-cds"

# our reason → (system, code, display shown to the clinician)
_REASONS: dict[str, tuple[str, str, str]] = {
    # "Recipient assessment of risk/benefit ratio"
    "benefit-outweighs-risk": (NON_ADHERENCE_SYSTEM, "risk-benefit-ratio", "Benefit outweighs risk"),
    # "Recommended action was already completed"
    "already-addressed": (NON_ADHERENCE_SYSTEM, "action-completed", "Already addressed"),
    # "Patient refuses/declines (no context given)"
    "patient-declined": (NON_ADHERENCE_SYSTEM, "patient-refuses", "Patient declined"),
    # no 3.0 code says the record is wrong, or that the problem will be handled before the procedure
    "record-incorrect": (OVERRIDE_REASON_SYSTEM, "record-incorrect", "Record is incorrect or out of date"),
    "will-address-before-procedure": (
        OVERRIDE_REASON_SYSTEM,
        "will-address-before-procedure",
        "Will address before the procedure",
    ),
}
_REASONS_BY_RULE: dict[str, tuple[str, ...]] = {
    "anticoagulant-active": ("already-addressed", "will-address-before-procedure", "record-incorrect"),
    "antiplatelet-active": ("benefit-outweighs-risk", "already-addressed", "record-incorrect"),
    "multiple-antithrombotics": ("already-addressed", "will-address-before-procedure", "record-incorrect"),
    "eligibility": ("already-addressed", "record-incorrect", "benefit-outweighs-risk"),
    "data-unavailable": ("already-addressed", "will-address-before-procedure"),
}
_DEFAULT_REASONS = ("benefit-outweighs-risk", "already-addressed", "record-incorrect", "patient-declined")

IdFactory = Callable[[], str]


@functools.cache
def override_reasons(rule: str) -> tuple[OverrideReason, ...]:
    """The reasons offered for overriding a rule's card (fixed per rule; the models are frozen)."""
    reasons = (_REASONS[name] for name in _REASONS_BY_RULE.get(rule, _DEFAULT_REASONS))
    return tuple(
        OverrideReason(system=system, code=code, display=display) for system, code, display in reasons
    )


def _extension(finding: Finding, evaluation: Evaluation) -> dict[str, Any]:
    if finding.criteria:
        findings = [
            {
                "criterion": c.criterion,
                "outcome": c.outcome,
                "explanation": c.explanation,
                "evidence": [e.reference for e in c.evidence],
            }
            for c in finding.criteria
        ]
    else:
        findings = [
            {"criterion": finding.rule, "outcome": "met", "evidence": [e.reference for e in finding.evidence]}
        ]
    for item in findings:
        if not item["evidence"]:
            del item["evidence"]  # the spec forbids empty arrays, extensions included
    extension: dict[str, Any] = {
        "rule": finding.rule,
        "findings": findings,
        "thresholdsVersion": evaluation.thresholds_version,
    }
    if finding.thresholds_used:
        extension["thresholds"] = dict(finding.thresholds_used)
    return {EXTENSION_KEY: extension}


@functools.cache
def _link(source_id: str) -> Link | None:
    """A card link to a source with a public address (fixed per source; the model is frozen). The
    label is the source's whole label, the same words as the card's `source`: a cut label named a
    different-looking document than the one the link opens."""
    cited = source(source_id)
    return Link(label=cited.label, url=cited.url, type="absolute") if cited.url else None


def _with_ids(suggestions: list[Suggestion], new_id: IdFactory) -> tuple[Suggestion, ...]:
    return tuple(s.model_copy(update={"uuid": new_id()}) for s in suggestions)


def render_card(
    finding: Finding, evaluation: Evaluation, ctx: OrderContext, new_id: IdFactory, demo_stand_in: bool
) -> Card:
    linked = [source(s) for s in finding.sources if source(s).url]
    primary = linked[0] if linked else source("S17")
    suggestions = _with_ids(suggestions_for(finding, ctx), new_id)
    return Card(
        uuid=new_id(),
        summary=summary_for(finding),
        detail=render_detail(finding, evaluation.thresholds_version, demo_stand_in),
        indicator=finding.indicator,
        source=Source(
            label=primary.label,
            url=primary.url,
            topic=Coding(system=RULE_CODE_SYSTEM, code=finding.rule, display=finding.rule.replace("-", " ")),
        ),
        suggestions=suggestions or None,
        selection_behavior=("any" if len(suggestions) > 1 else "at-most-one") if suggestions else None,
        override_reasons=override_reasons(finding.rule),
        links=tuple(link for link in map(_link, finding.sources) if link is not None) or None,
        extension=_extension(finding, evaluation),
    )


def render_cards(
    evaluation: Evaluation, ctx: OrderContext, new_id: IdFactory, demo_stand_in: bool = False
) -> tuple[Card, ...]:
    return tuple(render_card(f, evaluation, ctx, new_id, demo_stand_in) for f in evaluation.findings)
