"""A card's markdown detail: advice, the data used with dates, the thresholds compared, the source."""

from __future__ import annotations

from cards.markdown_text import code_text, markdown_text
from cards.wording import criterion_line
from rules.findings import Finding

_STENT_CAUTION = (
    "Hold only after prescriber or cardiology review; do not stop P2Y12 inhibitors within stent windows "
    "(about 6 weeks after a bare-metal stent, 6–12 months after a drug-eluting stent) without cardiology."
)
_SEE_COMBINED = "Combined with other antithrombotics: the combined antithrombotic card carries the plan."

ADVICE: dict[str, str] = {
    "anticoagulant-active": "Vertebral augmentation is a high bleeding-risk procedure (ASRA 2018, SIR 2019). "
    "Plan the interruption with the prescriber or anticoagulation clinic; bridging is rarely needed. "
    "Hold only after prescriber review.",
    "antiplatelet-active": _STENT_CAUTION,
    "multiple-antithrombotics": "Two or more antithrombotic groups add up their bleeding risk, and stopping "
    "any of them has its own thrombotic risk (stent, atrial fibrillation, valve). Agree one plan for all "
    "of them with cardiology and the prescribers before scheduling; hematology if the plan is unclear.",
    "inr-high": "Recheck the INR; correct it per the prescriber before the procedure (SIR 2019 target "
    "≤1.5–1.8 for high-risk procedures).",
    "platelets-low": "SIR 2019: consider platelet transfusion below 50 ×10⁹/L for high-risk procedures.",
    "coagulation-labs-missing": "SIR 2019 recommends an INR and a platelet count before high bleeding-risk "
    "procedures.",
    "bleeding-disorder": "An uncorrected coagulopathy is a contraindication (CMS LCD relative; SIR absolute "
    "if uncorrectable). Involve hematology.",
    "spinal-infection": "Active osteomyelitis or discitis at the target is an absolute contraindication "
    "(RAND/UCLA, CMS LCD).",
    "systemic-infection": "Untreated systemic infection is an absolute contraindication (RAND/UCLA); defer.",
    "pregnancy": "Pregnancy is an absolute exclusion in the CMS LCD.",
    "neurologic-compromise": "Neurological compromise, retropulsion or cord compression is a relative "
    "contraindication: ask for a spine surgery opinion.",
    "cement-contrast-allergy": "Allergy to bone cement (PMMA) or its opacifier is a contraindication in SIR "
    "guidance; plan premedication or an alternative with the operator.",
    "too-many-levels": "The CMS LCD lists more than three fractures per procedure as a relative "
    "contraindication. Consider staging the levels.",
    "copd-multilevel": "Cement embolism risk rises with the number of levels (OR 2.4 for three or more "
    "vs one, S12), and lung reserve is low. No society sets a COPD level limit: this limit is an "
    "institutional "
    "default. Consider staging, pre-procedure SpO2, and anesthesia and pulmonology review.",
    "upper-thoracic-level": "eviCore excludes T1–T4; check coverage before scheduling.",
    "level-count-not-stated": "The order names no level (no body site, quantity, add-on code or level in "
    "its text), so it was read as one level. The session limit of the CMS LCD and the lower limit for "
    "severe lung disease were not checked: state the levels on the order (body site or order detail) "
    "to have them checked.",
    "eligibility": "Coverage criteria (CMS LCD): imaging-confirmed acute or subacute fracture, pain despite "
    "optimal non-surgical management, no contraindication. Unknown means the record does not say, not "
    "that the criterion fails; not applicable is not counted. This card does not assess "
    "contraindications: those are the other cards.",
    "osteoporosis-follow-up": "CMS LCD and RAND/UCLA require bone density testing and osteoporosis treatment "
    "after an osteoporotic vertebral fracture.",
    "neoplastic-indication": "IMWG and NASS: consider biopsy during the procedure and coordinate radiation "
    "or systemic therapy with oncology.",
    "data-unavailable": "The EHR's data could not be read for some checks. Those checks were not made: "
    "their absence from these cards does not mean they passed.",
    "other-patient-data": "The EHR sent resources whose subject is another patient than the one of this "
    "order. They were not used: the checks rest only on this patient's data. Report it to the EHR team; "
    "if the order itself was opened on the wrong chart, stop and reopen it on the right one.",
    "patient-deceased": "The patient record says the patient has died. An order for a deceased patient "
    "points to a wrong chart or a wrong record: check before going on.",
}

_ASPIRIN_ALONE = (
    "Aspirin is usually continued for vertebral augmentation, above all when cardiovascular risk is high. "
    "Stop it only after the prescriber's review; no hold is advised by default."
)
_OTHER_ANTIPLATELET = "Hold only after the prescriber's review."
_CERVICAL = (
    "Payer policies cover thoracic and lumbar fractures (eviCore excludes T1–T4); cervical and upper "
    "thoracic levels are also technically harder. Check coverage before scheduling."
)
_METASTATIC_UNCERTAIN = (
    "Metastatic cancer is on record without a bone site, and the new vertebral fracture is coded as "
    "osteoporotic or collapsed: it may be a metastasis, or not. A biopsy during the procedure can settle "
    "it (IMWG, NASS); tell the patient's oncology team."
)


def _advice(finding: Finding) -> str:
    """The card's opening advice; a drug card in a combination leaves the plan to the combined card."""
    values = finding.values
    if finding.rule == "antiplatelet-active":
        if values.get("aspirin_only"):
            return f"{_ASPIRIN_ALONE} {_SEE_COMBINED}" if values.get("combined") else _ASPIRIN_ALONE
        advice = _STENT_CAUTION if values.get("p2y12") else _OTHER_ANTIPLATELET
        return _SEE_COMBINED if values.get("combined") else advice
    if finding.rule == "multiple-antithrombotics" and values.get("p2y12"):
        return f"{ADVICE[finding.rule]} {_STENT_CAUTION}"
    if finding.rule == "anticoagulant-active" and values.get("combined"):
        return (
            "Vertebral augmentation is a high bleeding-risk procedure (ASRA 2018, SIR 2019). " + _SEE_COMBINED
        )
    if finding.rule == "upper-thoracic-level" and values.get("cervical"):
        return _CERVICAL
    if finding.rule == "neoplastic-indication" and values.get("uncertain"):
        return _METASTATIC_UNCERTAIN
    return ADVICE[finding.rule]


def _timing_line(finding: Finding) -> str | None:
    """The planned date against the hold: room, too early by how much, or passed."""
    planned = finding.values.get("planned_date")
    if not planned or finding.values.get("room_for_hold") is None:
        return None
    if finding.values.get("planned_passed"):
        return f"The planned date {planned} has passed: reschedule after the hold."
    if finding.values.get("room_for_hold") is False:
        return (
            f"The planned date {planned} is {finding.values.get('hold_shortfall')} for a hold of "
            f"{finding.values.get('hold')} starting today: reschedule, or decide with the prescriber."
        )
    return f"Planned date {planned} leaves room for the hold."


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _evidence_lines(finding: Finding) -> list[str]:
    lines = []
    for evidence in finding.evidence:
        when = f" ({evidence.recorded.isoformat()})" if evidence.recorded else ""
        lines.append(f"- {markdown_text(evidence.display)}{when} — `{code_text(evidence.reference)}`")
    return lines


def render_detail(finding: Finding, thresholds_version: int, demo_stand_in: bool) -> str:
    """Advice, what was found and used, the thresholds. The sources are the card's `source` and
    `links` (shown once there, not repeated here), and no link is inline: EHRs open those in the
    card's own frame."""
    parts = [_advice(finding)]
    if finding.rule == "anticoagulant-active":
        parts.append(f"Hold interval chosen by: {markdown_text(finding.values.get('hold_basis'))}.")
        timing = _timing_line(finding)
        if timing:
            parts.append(timing)
        elif not finding.values.get("planned_date"):
            parts.append("No planned date on the order: schedule the procedure after the hold.")
    if finding.rule == "antiplatelet-active":
        timing = _timing_line(finding)
        if timing:
            parts.append(timing)
    if finding.rule == "coagulation-labs-missing" and finding.values.get("stale_critical"):
        parts.append(
            f"Critical result outside the look-back window: {finding.values.get('stale_critical')}. "
            "Recheck before the procedure."
        )
    if finding.values.get("levels_counted"):
        parts.append(f"Levels counted: {finding.values['levels_counted']}.")
    if finding.rule == "data-unavailable":
        if finding.values.get("checks"):
            parts.append(f"Not checked: {markdown_text(finding.values.get('checks'))}.")
            parts.append(f"Why: {markdown_text(finding.values.get('reasons'))}.")
        if finding.values.get("skipped"):
            parts.append(
                f"Skipped as unreadable ({finding.values.get('skipped_count')}): "
                f"{markdown_text(finding.values.get('skipped'))}. "
                "Fix these records in the EHR; what they say was not considered."
            )
        if finding.values.get("unreadable"):
            parts.append(
                f"Could not be read ({finding.values.get('unreadable_kinds')}): "
                f"{finding.values.get('unreadable')}. "
                "No older value was used in their place; check them in the EHR."
            )
    if finding.criteria:
        parts.append(
            "\n".join(
                criterion_line(c.criterion, c.outcome, markdown_text(c.explanation)) for c in finding.criteria
            )
        )
    evidence = _evidence_lines(finding)
    if evidence:
        parts.append("**Data used**\n" + "\n".join(evidence))
    if finding.thresholds_used:
        used = ", ".join(f"`{name}` = {_number(value)}" for name, value in finding.thresholds_used.items())
        parts.append(f"**Thresholds** (version {thresholds_version}, set by your administrator): {used}")
    if demo_stand_in:
        parts.append(
            "_Demo mapping: a spine imaging order was treated as a stand-in for vertebral augmentation "
            "(sandbox demo, not a real augmentation order)._"
        )
    return "\n\n".join(parts)
