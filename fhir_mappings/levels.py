"""Vertebral levels in free text: one parser for every notation EHR users write.

Accepted: `T12`, `T 12`, `T-12`, `Th12`, `D12` (dorsal = thoracic), `L1`; ranges with `-`, `–`, `—`,
`to`, `thru`, `through` (`T11-L1`, `T11 thru L1`, `L1-3` = L1 to L3); lists joined by commas, `/`,
`and`, `&`. MRI sequence names that look like levels ("T2 STIR", "T1-weighted") are not levels.

Clauses about the past never add levels: a clause that starts at a history cue ("prior", "previous",
"s/p", "history of", "underwent", …) and runs to the next sentence break, or that carries a past
date ("in 2019", "(03/2021)"), is dropped before parsing. So "T12 kyphoplasty; prior L1 and L2
kyphoplasty 2019" names T12 only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_SEGMENT_COUNTS = {"C": 7, "T": 12, "L": 5, "S": 5}
_SEGMENT_ORDER = "CTLS"
_EVERY = [f"{s}{n}" for s in _SEGMENT_ORDER for n in range(1, _SEGMENT_COUNTS[s] + 1)]

# A level: segment letter(s), an optional hyphen or space, and the number. "Th" and "D" are thoracic.
_SEG = r"(?P<{name}>Th|[CTLSD])"
_LEVEL_A = _SEG.format(name="seg_a") + r"\s?-?\s?(?P<num_a>\d{1,2})"
_LEVEL_B = r"(?:" + _SEG.format(name="seg_b") + r"\s?-?\s?)?(?P<num_b>\d{1,2})"
_RANGE_WORD = r"\s*(?:-|–|—|to|thru|through)\s*"
_RANGE = re.compile(rf"(?<![A-Za-z0-9]){_LEVEL_A}{_RANGE_WORD}{_LEVEL_B}(?![0-9])", re.IGNORECASE)
_SINGLE = re.compile(r"(?<![A-Za-z0-9])(?P<seg>Th|[CTLSD])\s?-?\s?(?P<num>\d{1,2})(?![0-9])", re.IGNORECASE)
# MRI sequence names look like vertebrae ("T2/STIR edema", "T1-weighted"): drop them before parsing.
_MRI_SEQUENCE = re.compile(
    r"\b(?:STIR\s*/\s*)?T[12]\s*(?:-?\s*weighted|W\b|/\s*STIR|\s+STIR|\s+FLAIR|\s+(?:hyper|hypo|iso)?intens\w*"
    r"|\s+signal|\s+sequence\w*|\s+images?|\s+bright|\s+dark)",
    re.IGNORECASE,
)
_BREAK = r"[.;\n()\[\]]|\bnow\b|\btoday\b|\bthis (?:session|procedure|order)\b|\bcurrent(?:ly)?\b|\bnew\b"
_HISTORY_CUE = (
    r"\b(?:prior|previous(?:ly)?|past|earlier|old|remote|healed|history of|hx of|h/o|s/p|status post|"
    r"underwent|had (?:a |an )?(?:kyphoplasty|vertebroplasty|augmentation|fracture)|"
    r"already (?:treated|augmented|cemented)|(?:done|performed|treated) (?:in|on)|known old)\b"
)
_HISTORY = re.compile(rf"{_HISTORY_CUE}.*?(?={_BREAK}|$)", re.IGNORECASE | re.DOTALL)
_PAST_DATE = re.compile(
    r"\b(?:in|on|from|since)\s+(?:\d{1,2}/)?(?:\d{1,2}/)?(?:19|20)\d{2}\b|\(\s*(?:\d{1,2}/)?(?:\d{1,2}/)?"
    r"(?:19|20)\d{2}\s*\)",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[^.;\n()\[\]]+")


def _segment(raw: str) -> str:
    upper = raw.upper()
    return "T" if upper in ("TH", "D") else upper


def _valid(segment: str, number: int) -> str | None:
    return f"{segment}{number}" if 1 <= number <= _SEGMENT_COUNTS[segment] else None


def spine_position(level: str) -> tuple[int, int]:
    return _SEGMENT_ORDER.index(level[0]), int(level[1:])


def levels_between(start: str, end: str) -> list[str]:
    first, last = sorted((start, end), key=spine_position)
    return _EVERY[_EVERY.index(first) : _EVERY.index(last) + 1]


def without_history(words: str) -> str:
    """The text with clauses about past events removed (see the module docstring)."""
    current = " ; ".join(c for c in _CLAUSE.findall(words) if not _PAST_DATE.search(c))
    return _HISTORY.sub(" ", current)


def levels_in_text(words: str) -> list[str]:
    """Vertebrae named in free text, in the order written, history clauses excluded."""
    words = _MRI_SEQUENCE.sub(" ", without_history(words))
    found: list[str] = []
    for match in _RANGE.finditer(words):
        seg_a = _segment(match.group("seg_a"))
        seg_b = _segment(match.group("seg_b")) if match.group("seg_b") else seg_a
        start = _valid(seg_a, int(match.group("num_a")))
        end = _valid(seg_b, int(match.group("num_b")))
        if start and end:
            found.extend(levels_between(start, end))
    for match in _SINGLE.finditer(_RANGE.sub(" ", words)):
        level = _valid(_segment(match.group("seg")), int(match.group("num")))
        if level:
            found.append(level)
    return list(dict.fromkeys(found))


_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "single": 1}
_COUNT = re.compile(
    r"\b(?P<n>\d{1,2}|one|two|three|four|five|six|single)[- ](?:vertebral[- ])?(?:levels?|vertebrae)\b"
    r"|\blevels?\s*[:x×]\s*(?P<m>\d{1,2})\b",
    re.IGNORECASE,
)


def level_count_in_text(words: str) -> int | None:
    """A count of levels written without naming them ("3 levels", "two-level kyphoplasty", "levels: 2"),
    history clauses excluded; the largest when several are written."""
    found = []
    for match in _COUNT.finditer(without_history(words)):
        raw = (match.group("n") or match.group("m")).lower()
        number = _NUMBER_WORDS.get(raw) or int(raw)
        if 0 < number <= 30:
            found.append(number)
    return max(found) if found else None


def distinct_levels(levels: Sequence[str]) -> list[str]:
    return sorted(set(levels), key=spine_position)


# Order recognition by text: a vertebral site must be named, and other cementoplasties are not ours.
# Kyphoplasty and vertebroplasty name the spine by themselves; "cementoplasty" or "augmentation" do not.
_SPINAL_SITE = re.compile(
    r"\b(?:vertebra\w*|vertebro\w*|kyphoplast\w*|spine|spinal|thoracic|lumbar|thoracolumbar|VCF|"
    r"compression fracture)\b",
    re.I,
)
_OTHER_CEMENTOPLASTY = re.compile(
    r"\b(?:sacroplast\w*|sacr(?:um|al)|ilia(?:c|cum)|iliosacral|acetabul\w*|pelvi\w*|pubic|femor\w*|femur|"
    r"humer\w*|tibia\w*|rib|sternum|osteoplasty of (?:the )?(?!vertebra|spine))\b",
    re.I,
)


def names_vertebral_site(words: str) -> bool:
    """Whether order text names a vertebral level (C1–L5) or a spinal site."""
    if _SPINAL_SITE.search(words):
        return True
    return any(level[0] != "S" for level in levels_in_text(words))


def names_other_cementoplasty(words: str) -> bool:
    """Sacroplasty, or cement into a bone other than a vertebra (pelvis, femur, …)."""
    return bool(_OTHER_CEMENTOPLASTY.search(words))
