"""Record text as literal markdown text: the one helper every card uses where text from the record (or
from anything the service did not write itself) enters a markdown `detail`.

An EHR renders `detail` as (GitHub-flavoured) CommonMark, so a medication text such as `<img src=x
onerror=…>` or `[x](javascript:…)` would be markup. Here it is text:
- the characters that open markup anywhere in a line are backslash-escaped (CommonMark §2.4): `\\`,
  `` ` ``, `*`, `_`, `[`, `]`, `<`, `>`, `&`, `|`, `~` (with `[`/`]` escaped, no `(…)` can be a link
  destination and no `!` an image; with `<`/`&` escaped, no HTML tag or entity);
- line breaks become spaces, so record text never starts a block (a heading, a list, a table, a fence);
- bare URLs, which GFM links by itself (`https://…`, `www.…`), get a zero-width space after the scheme
  or `www`, so they stay text: the only links in a card are the service's own (its source catalogue).
"""

from __future__ import annotations

import re

_SPECIALS = re.compile(r"([\\`*_\[\]<>&|~])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
_BARE_URL = re.compile(r"(?i)\b(https?|ftp|mailto|javascript|data)(:)|\b(www)(\.)")
_ZERO_WIDTH_SPACE = "\u200b"


def markdown_text(value: object) -> str:
    """`value` as text that renders literally inside a markdown line."""
    text = _LINE_BREAKS.sub(" ", str(value))
    text = _SPECIALS.sub(r"\\\1", text)
    return _BARE_URL.sub(
        lambda m: f"{m.group(1) or m.group(3)}{_ZERO_WIDTH_SPACE}{m.group(2) or m.group(4)}", text
    )


def code_text(value: object) -> str:
    """`value` inside a code span (`` `…` ``), where escapes do not work: no backtick, no line break."""
    return _LINE_BREAKS.sub(" ", str(value)).replace("`", "'")
