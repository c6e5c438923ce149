"""Nothing from the record is rendered as markup: every display and text of the sample's record carries
HTML, a markdown link, an image, a bare URL and block syntax, and every card's `detail`, rendered the way
an EHR renders it (CommonMark with GFM's bare-URL links), has no element and no link but the service's
own (its source catalogue)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from cards.markdown_text import markdown_text
from rules.sources import SOURCES
from tests.support.app import client_for, make_app, sample

HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "![x](https://evil.example.net/x.png)",
    "<script>alert(1)</script>",
    "https://evil.example.net/phish",
    "www.evil.example.net",
    "<https://evil.example.net>",
    "&lt;b&gt;",
    "\n# heading\n| a | b |\n|---|---|\n```\ncode",
    "`code` **bold** _it_ ~~gone~~",
    "[ref]: https://evil.example.net",
]
CATALOGUE = {s.url for s in SOURCES.values() if s.url}
RENDER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_BARE_URL = re.compile(r"(?i)(\b(https?|ftp|javascript|data):|\bwww\.)")
SELECT = "/cds-services/vertebral-augmentation-select"
SIGN = "/cds-services/vertebral-augmentation-sign"


def _poison(node: Any, payload: str) -> Any:
    """Every human-readable string of the record (text, display, note, names) gets the payload."""
    if isinstance(node, dict):
        return {
            k: (
                f"{v} {payload}"
                if k in ("text", "display", "valueString", "conclusion", "description") and isinstance(v, str)
                else _poison(v, payload)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_poison(v, payload) for v in node]
    return node


def _html_of(detail: str) -> str:
    return RENDER.render(detail)


def _links(html: str) -> set[str]:
    return set(re.findall(r'<a href="([^"]*)"', html))


def _bare_urls(html: str) -> list[str]:
    """What GFM would link by itself in the text (markdown-it here has no linkify: checked directly)."""
    text = re.sub(r"<a href=\"[^\"]*\">", "", html)
    return [m.group(0) for m in _BARE_URL.finditer(re.sub(r"<[^>]*>", "", text))]


@pytest.mark.parametrize("payload", HOSTILE)
@pytest.mark.parametrize(("path", "body_name"), [(SELECT, "order-select.json"), (SIGN, "order-sign.json")])
def test_record_text_is_never_markup_in_any_card(
    tmp_path: Path, payload: str, path: str, body_name: str
) -> None:
    body = sample(body_name)
    body["prefetch"] = _poison(body["prefetch"], payload)
    with client_for(make_app(tmp_path)) as client:
        response = client.post(path, json=body)
    assert response.status_code == 200
    cards = response.json()["cards"]
    assert cards
    for card in cards:
        html = _html_of(card.get("detail", ""))
        assert not re.search(r"<(?!/?(p|ul|ol|li|strong|em|code|a|br)\b)[a-z]", html), html
        assert _links(html) <= CATALOGUE, html
        assert _bare_urls(html) == [], html


def test_the_helper_leaves_plain_words_alone_and_neutralises_markup() -> None:
    assert markdown_text("Apixaban 5 MG Oral Tablet (Eliquis)") == "Apixaban 5 MG Oral Tablet (Eliquis)"
    assert "<img" not in _html_of(markdown_text("<img src=x onerror=alert(1)>"))
    linked = _html_of(markdown_text("[x](javascript:alert(1)) https://evil.example.net"))
    assert _links(linked) == set()
    assert _bare_urls(linked) == []
    assert _html_of("- " + markdown_text("a\n# b")).count("<h1>") == 0
