"""Card wording over every scenario: short, advice-first summaries and details that a clinician reads
once — no emoji status marks, no inline links, no source repeated from the card's `source`/`links`.

Issue 16: EHRs without an emoji font show boxes; a link in `detail` opens in the card's own frame;
a source belongs in `source` and `links`, once. Each summary starts with the advice it gives.
"""

from __future__ import annotations

import re
import statistics
from typing import Any

import pytest

from rules.thresholds import RULE_IDS
from tests.scenarios.test_clinical_scenarios import all_scenarios, run_scenario

SUMMARY_LIMIT = 139  # CDS Hooks: "<140 characters"
TYPICAL_DETAIL_LINES = 12
LONGEST_DETAIL_LINES = 16

# The advice each rule's summary opens with (one of these words, at the start).
ADVICE_VERBS: dict[str, tuple[str, ...]] = {
    "anticoagulant-active": ("Hold",),
    "antiplatelet-active": ("Review", "Continue"),
    "multiple-antithrombotics": ("Plan",),
    "inr-high": ("Recheck",),
    "platelets-low": ("Correct",),
    "coagulation-labs-missing": ("Order",),
    "level-count-not-stated": ("State",),
    "bleeding-disorder": ("Correct",),
    "spinal-infection": ("Defer",),
    "systemic-infection": ("Defer",),
    "pregnancy": ("Do not proceed",),
    "neurologic-compromise": ("Get a spine surgery opinion",),
    "cement-contrast-allergy": ("Plan",),
    "too-many-levels": ("Consider staging",),
    "copd-multilevel": ("Limit",),
    "upper-thoracic-level": ("Check",),
    "eligibility": ("Review",),
    "osteoporosis-follow-up": ("Plan",),
    "neoplastic-indication": ("Consider biopsy",),
    "data-unavailable": ("Check",),
    "other-patient-data": ("Verify",),
    "patient-deceased": ("Verify",),
}

# Pictographs, dingbats (✅ ❌ ❔ ✔), symbols and the emoji variation selector.
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u2705\u274c\u2753-\u2755]")
INLINE_LINK = re.compile(r"\]\(|https?://|www\.", re.IGNORECASE)


def _responses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {
        s.name: run_scenario(s, tmp_path_factory.mktemp(s.name)) for s in all_scenarios() if s.xfail is None
    }


@pytest.fixture(scope="module")
def responses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return _responses(tmp_path_factory)


def _cards(responses: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, card) for name, response in responses.items() for card in response["cards"]]


def test_every_rule_declares_its_advice_verb() -> None:
    assert set(ADVICE_VERBS) == set(RULE_IDS)


def test_summaries_fit_and_open_with_their_advice(responses: dict[str, dict[str, Any]]) -> None:
    problems = []
    for name, card in _cards(responses):
        rule, summary = card["source"]["topic"]["code"], card["summary"]
        if len(summary) > SUMMARY_LIMIT:
            problems.append(f"{name}/{rule}: {len(summary)} characters")
        if not summary.startswith(ADVICE_VERBS[rule]):
            problems.append(f"{name}/{rule}: does not open with {ADVICE_VERBS[rule]}: {summary!r}")
        if "…" in summary and summary.index("…") < len(summary.split(":")[0]):
            problems.append(f"{name}/{rule}: cut inside the advice: {summary!r}")
    assert problems == []


def test_details_have_no_emoji_no_inline_link_and_no_repeated_source(
    responses: dict[str, dict[str, Any]],
) -> None:
    problems = []
    for name, card in _cards(responses):
        rule, detail = card["source"]["topic"]["code"], card["detail"]
        if EMOJI.search(detail):
            problems.append(f"{name}/{rule}: emoji {EMOJI.findall(detail)}")
        if INLINE_LINK.search(detail):
            problems.append(f"{name}/{rule}: inline link")
        cited = [card["source"]["label"], *(link["label"] for link in card.get("links", ()))]
        cited += [card["source"].get("url", ""), *(link["url"] for link in card.get("links", ()))]
        problems += [f"{name}/{rule}: repeats {c!r}" for c in cited if c and c in detail]
    assert problems == []


def test_links_name_the_document_the_source_names(responses: dict[str, dict[str, Any]]) -> None:
    """Label and link always name the same document: the link to the card's source carries its label."""
    for name, card in _cards(responses):
        source = card["source"]
        same_url = [link for link in card.get("links", ()) if link["url"] == source.get("url")]
        assert [link["label"] for link in same_url] == [source["label"]], name


def test_details_are_short(responses: dict[str, dict[str, Any]]) -> None:
    lengths = {
        f"{name}/{card['source']['topic']['code']}": sum(
            1 for line in card["detail"].splitlines() if line.strip()
        )
        for name, card in _cards(responses)
    }
    assert statistics.median(lengths.values()) < TYPICAL_DETAIL_LINES
    assert {k: v for k, v in lengths.items() if v > LONGEST_DETAIL_LINES} == {}


def test_the_wording_checks_see_every_rule(responses: dict[str, dict[str, Any]]) -> None:
    """The checks above are only as good as the cards they read: every rule appears at least once."""
    seen = {card["source"]["topic"]["code"] for _, card in _cards(responses)}
    assert seen == set(RULE_IDS)
