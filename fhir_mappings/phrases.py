"""Conditions named only in free text: curated phrases, with negation and history handled.

A small NegEx-style matcher (Chapman et al. 2001): the text is cut into clauses (sentence ends,
semicolons, "but"); a group's phrase counts only when no negation or history cue stands before it
in the same clause, and no closing cue ("… ruled out", "… resolved") follows it there. Phrases and
cues are data (`codesets/phrases.json`), so a clinician can review them without reading code.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_CLAUSE_BREAK = re.compile(r"[.;:\n!?]+|\bbut\b|\bhowever\b|,\s*(?=(?:and\s+)?(?:no|not|without)\b)", re.I)


def _cue_pattern(cues: list[str], *, at_end: bool) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(c).replace(r"\ ", r"\s+") for c in sorted(cues, key=len, reverse=True))
    return re.compile(rf"(?<![\w/])(?:{alternatives})(?![\w/])", re.I)


@dataclass(frozen=True)
class PhraseMatcher:
    groups: Mapping[str, tuple[re.Pattern[str], ...]]
    before: re.Pattern[str]
    after: re.Pattern[str]

    def groups_in(self, text: str) -> frozenset[str]:
        """The groups whose phrases the text asserts (not negated, not history)."""
        found: set[str] = set()
        for clause in _CLAUSE_BREAK.split(text):
            if not clause.strip():
                continue
            for group, patterns in self.groups.items():
                if group in found:
                    continue
                for pattern in patterns:
                    match = pattern.search(clause)
                    if match and self._asserted(clause, match.start(), match.end()):
                        found.add(group)
                        break
        return frozenset(found)

    def _asserted(self, clause: str, start: int, end: int) -> bool:
        return not self.before.search(clause[:start]) and not self.after.search(clause[end:])


def load_phrases(path: Path) -> PhraseMatcher:
    raw = json.loads(path.read_text(encoding="utf-8"))
    groups = {
        group: tuple(re.compile(p, re.I) for p in patterns) for group, patterns in raw["groups"].items()
    }
    before = _cue_pattern([*raw["negation_before"], *raw["history_before"]], at_end=False)
    return PhraseMatcher(groups=groups, before=before, after=_cue_pattern(raw["negation_after"], at_end=True))


@functools.cache
def default_phrases() -> PhraseMatcher:
    return load_phrases(Path(__file__).resolve().parent / "codesets" / "phrases.json")
