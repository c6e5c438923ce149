"""The outgoing-URL policy, one row per form: FHIR bases, paging links and their cousins, every guard.

Each row says what the policy must answer for one spelling. `fhir_url` rows resolve a link the way
a page from (or a prefetch of) the FHIR server at BASE would be followed; `fhir_base` rows check a
request's `fhirServer`; the guards apply with an empty allow-list too (dev, sandbox).
"""

from __future__ import annotations

import pytest

from cds_service.web.url_policy import Target, UrlPolicy, UrlRefused, token_applies

ALLOWED = UrlPolicy.from_list(["https://fhir.example.org/r4", "http://127.0.0.1:9090/fhir"])
OPEN = UrlPolicy()  # dev and sandbox: an empty allow-list
BASE = ALLOWED.fhir_base("https://fhir.example.org/r4")
REFUSED = None

# (link as written in a Bundle, the URL it is fetched at, or REFUSED)
LINKS = [
    ("https://fhir.example.org/r4/Observation?page=2", "https://fhir.example.org/r4/Observation?page=2"),
    ("Observation?patient=1&_count=50", "https://fhir.example.org/r4/Observation?patient=1&_count=50"),
    ("/r4/Observation?page=3", "https://fhir.example.org/r4/Observation?page=3"),
    ("?page=4", "https://fhir.example.org/r4/?page=4"),
    ("https://fhir.example.org:443/r4/Condition", "https://fhir.example.org/r4/Condition"),
    ("https://FHIR.Example.ORG/r4/Condition", "https://fhir.example.org/r4/Condition"),
    ("https://fhir.example.org./r4/Condition", "https://fhir.example.org/r4/Condition"),
    ("https://fhir.example.org/r4/./Condition", "https://fhir.example.org/r4/Condition"),
    ("https://fhir.example.org/r4/x/../Condition", "https://fhir.example.org/r4/Condition"),
    ("https://fhir.example.org/r4/Condition#frag", "https://fhir.example.org/r4/Condition"),
    ("https://fhir.example.org/r4/Condition?", "https://fhir.example.org/r4/Condition"),
    ("https://fhir.example.org/r4/%43ondition", "https://fhir.example.org/r4/Condition"),
    ("  https://fhir.example.org/r4/Condition\n", "https://fhir.example.org/r4/Condition"),
    ("https://fhir.exa\tmple.org/r4/Condition", "https://fhir.example.org/r4/Condition"),
    ("HTTPS://fhir.example.org/r4/Condition", "https://fhir.example.org/r4/Condition"),
    ("//fhir.example.org/r4/Condition", "https://fhir.example.org/r4/Condition"),
    # another host, however spelled
    ("//evil.example.net/r4/Condition", REFUSED),
    ("HTTPS://evil.example.net/r4/Condition", REFUSED),
    ("HTTP://evil.example.net/r4/Condition", REFUSED),
    ("hTtPs://evil.example.net/", REFUSED),
    (" https://evil.example.net/r4/Condition", REFUSED),
    ("\thttps://evil.example.net/r4/Condition", REFUSED),
    ("\x00https://evil.example.net/", REFUSED),
    ("https://evil.example.net/r4", REFUSED),
    ("https://fhir.example.org.evil.net/r4/Condition", REFUSED),
    ("https://fhir.example.org@evil.example.net/r4", REFUSED),
    ("https://user:pw@fhir.example.org/r4/Condition", REFUSED),
    ("https:\\\\evil.example.net\\r4", REFUSED),
    ("https:evil.example.net/r4", REFUSED),
    ("https:/evil.example.net/r4", REFUSED),
    ("///evil.example.net/r4", REFUSED),
    # same host, another scheme or port
    ("http://fhir.example.org/r4/Condition", REFUSED),
    ("HTTP://fhir.example.org/r4/Condition", REFUSED),
    ("//fhir.example.org:8443/r4/Condition", REFUSED),
    ("https://fhir.example.org:8443/r4/Condition", REFUSED),
    ("https://fhir.example.org:0/r4", REFUSED),
    ("https://fhir.example.org:99999/r4", REFUSED),
    ("https://fhir.example.org:x/r4", REFUSED),
    # same origin, outside the allowed path
    ("../../elsewhere/Condition", REFUSED),
    ("../elsewhere/Condition", REFUSED),
    ("/elsewhere/Condition", REFUSED),
    ("/r4evil/Condition", REFUSED),
    ("https://fhir.example.org/r4evil/Condition", REFUSED),
    ("https://fhir.example.org/r4/../admin", REFUSED),
    ("https://fhir.example.org/r4/%2e%2e/admin", REFUSED),
    ("https://fhir.example.org/r4/%2E%2E/admin", REFUSED),
    ("https://fhir.example.org/r4/.%2e/admin", REFUSED),
    ("https://fhir.example.org/r4%2f..%2fadmin", REFUSED),
    ("https://fhir.example.org/r4/..%5cadmin", REFUSED),
    ("https://fhir.example.org/", REFUSED),
    ("https://fhir.example.org", REFUSED),
    # other schemes, nothing at all
    ("ftp://fhir.example.org/r4/Condition", REFUSED),
    ("file:///etc/passwd", REFUSED),
    ("javascript:alert(1)", REFUSED),
    ("data:text/plain,x", REFUSED),
    ("gopher://fhir.example.org/r4", REFUSED),
    ("", REFUSED),
    ("   ", REFUSED),
    ("https://fhir.example.org/r4/Con dition", REFUSED),
    ("https://fhir.example.org/r4/\x7fx", REFUSED),
    ("https://fhír.example.org/r4", REFUSED),
    (42, REFUSED),
    (None, REFUSED),
    (["https://fhir.example.org/r4"], REFUSED),
    ({"url": "https://fhir.example.org/r4"}, REFUSED),
]


@pytest.mark.parametrize(("link", "expected"), LINKS, ids=[repr(link)[:60] for link, _ in LINKS])
def test_a_paging_link_is_followed_only_under_the_fhir_server(link: object, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(UrlRefused):
            ALLOWED.fhir_url(link, BASE)
    else:
        target = ALLOWED.fhir_url(link, BASE)
        assert target.url == expected
        assert token_applies(target, BASE)


# Every guard holds with an empty allow-list (dev, sandbox) and, with a list, whatever it names.
GUARDED = [
    "http://169.254.169.254/latest/meta-data",
    "http://169.254.170.2/v2/credentials",
    "http://[fe80::1]/fhir",
    "http://[fe80::1%25eth0]/fhir",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[0:0:0:0:0:ffff:169.254.169.254]/",
    "http://[::169.254.169.254]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[64:ff9b::169.254.169.254]/",
    "http://[fd00:ec2::254]/latest",
    "http://[fd20:ce::254]/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://169.254.169.254./",
    "http://100.100.100.200/latest/meta-data",
    "http://192.0.0.192/",
    "http://metadata.google.internal/computeMetadata/v1",
    "http://METADATA.GOOGLE.INTERNAL./computeMetadata/v1",
    "http://metadata.goog/",
    "http://metadata/",
    "http://instance-data/latest",
    "http://metadata.tencentyun.com/latest",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
]


@pytest.mark.parametrize("url", GUARDED)
def test_link_local_and_metadata_addresses_are_refused_in_every_profile(url: str) -> None:
    with pytest.raises(UrlRefused):
        OPEN.fhir_base(url)
    with pytest.raises(UrlRefused):
        OPEN.configured_url(url)  # a JWKS URL too


# (fhirServer, allowed?) under ALLOWED, and under the empty list
BASES = [
    ("https://fhir.example.org/r4", True, True),
    ("https://fhir.example.org/r4/", True, True),
    ("https://FHIR.example.org/r4", True, True),
    ("HTTPS://fhir.example.org/r4", True, True),
    (" https://fhir.example.org/r4", True, True),
    ("https://fhir.example.org/r4?", True, True),
    ("https://fhir.example.org/r4#", True, True),
    ("https://fhir.example.org/r4/tenant-a", True, True),
    ("https://fhir.example.org:443/r4", True, True),
    ("http://127.0.0.1:9090/fhir", True, True),
    ("http://2130706433:9090/fhir", True, True),
    ("http://0x7f.1:9090/fhir", True, True),
    ("https://fhir.example.org/r4?x=1", False, False),
    ("https://fhir.example.org/r4#/../../admin", False, False),
    ("https://fhir.example.org/r4/..", False, True),
    ("https://fhir.example.org/r4/%2e%2e/admin", False, True),
    ("https://fhir.example.org.evil.net/r4", False, True),
    ("https://fhir.example.org/r4evil", False, True),
    ("https://fhir.example.org/", False, True),
    ("http://fhir.example.org/r4", False, True),
    ("https://fhir.example.org:8443/r4", False, True),
    ("https://user:pw@fhir.example.org/r4", False, False),
    ("http://127.0.0.1:9091/fhir", False, True),
    ("//fhir.example.org/r4", False, False),
    ("fhir.example.org/r4", False, False),
    ("Condition", False, False),
    ("ftp://fhir.example.org/r4", False, False),
    ("file:///etc/passwd", False, False),
    ("https://fhir.example.org:notaport/r4", False, False),
]


@pytest.mark.parametrize(("fhir_server", "allowed", "open_allowed"), BASES)
def test_a_fhir_server_is_allowed_only_under_an_allowed_base(
    fhir_server: str, allowed: bool, open_allowed: bool
) -> None:
    for policy, expected in ((ALLOWED, allowed), (OPEN, open_allowed)):
        if expected:
            assert isinstance(policy.fhir_base(fhir_server), Target)
        else:
            with pytest.raises(UrlRefused):
                policy.fhir_base(fhir_server)


def test_a_fhir_server_ending_in_a_question_mark_cannot_move_the_queries_out_of_its_path() -> None:
    base = ALLOWED.fhir_base("https://fhir.example.org/r4?")
    assert (
        ALLOWED.fhir_url("Condition?patient=1", base).url == "https://fhir.example.org/r4/Condition?patient=1"
    )


def test_the_token_goes_only_under_the_requests_fhir_server() -> None:
    tenant = OPEN.fhir_base("https://fhir.example.org/r4/tenant-a")
    assert token_applies(OPEN.fhir_url("Condition", tenant), tenant)
    other_tenant = OPEN.fhir_base("https://fhir.example.org/r4/tenant-b")
    assert not token_applies(OPEN.fhir_url("Condition", other_tenant), tenant)
    assert not token_applies(OPEN.fhir_url("Condition", tenant), None)
    with pytest.raises(UrlRefused):  # a link out of the request's fhirServer is never followed
        OPEN.fhir_url("../tenant-b/Condition", tenant)


def test_an_unusable_allow_list_entry_is_an_error_at_start_up() -> None:
    with pytest.raises(UrlRefused):
        UrlPolicy.from_list(["https://fhir.example.org:bad/r4"])
    with pytest.raises(UrlRefused):
        UrlPolicy.from_list(["https://fhir.example.org/r4?tenant=a"])
