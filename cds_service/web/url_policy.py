"""The one policy every outgoing request of the service passes: FHIR bases, paging links, JWKS URLs.

A URL is first *normalised*, the way a client library would end up sending it (WHATWG URL parsing and
RFC 3986 §6.2.2), and only then compared, so that no spelling reaches another place than it appears to:

- leading and trailing spaces and C0 controls are stripped, tabs and newlines inside are dropped (what
  browsers and several clients do); any other space, control character or backslash is refused;
- the scheme is compared case-insensitively (`HTTPS://` is `https://`) and must be http or https;
- scheme-relative (`//host/…`) and relative (`../../x`, `?q`) links are resolved against the URL they
  came from, never trusted as they stand;
- percent-encoded unreserved characters are decoded (`%2e` is `.`) and dot segments removed, so
  `/fhir/%2e%2e/admin` is `/admin`; an encoded slash or backslash in the path is refused, since servers
  disagree about it;
- an empty query or fragment (`…/fhir?`, `…/fhir#`) is dropped; a base URL with a non-empty one is refused;
- the host is lower-cased, a trailing dot dropped, IPv4 in any inet_aton spelling (`2852039166`,
  `0xa9.0xfe.0xa9.0xfe`) written as a dotted quad; credentials in the URL are refused.

Then a URL is allowed only when its scheme, host, port and path are under an allowed base (path
segment by segment: `/r4` does not allow `/r4evil`). Whatever the allow-list says, no request goes to a
link-local, unspecified, multicast or cloud-metadata address, however spelled (IPv4-mapped,
IPv4-compatible, 6to4 and NAT64 IPv6 included); the HTTP client checks the same again on the address it
actually connected to (`outgoing.py`), so a name that resolves there is refused too. A paging link must
be under the request's `fhirServer`: only there does the EHR's access token go.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_STRIP = "".join(chr(c) for c in range(0x21))  # C0 controls and space (WHATWG "C0 control or space")
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")
_HOST_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$")
_IPV4_SPELLING = re.compile(r"^[0-9a-fx.]+$")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

# Cloud instance-metadata endpoints by name. Their addresses: 169.254.169.254 (AWS, Azure, GCP, Oracle,
# DigitalOcean, OpenStack) and 169.254.170.2 (AWS ECS) are link-local; the others are listed below.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",  # GCP
        "metadata.goog",  # GCP
        "instance-data",  # AWS
        "instance-data.ec2.internal",  # AWS
        "metadata.azure.internal",  # Azure
        "metadata.tencentyun.com",  # Tencent Cloud
        "metadata.platformequinix.com",  # Equinix Metal
        "metadata.packet.net",  # Equinix Metal (former Packet)
    }
)
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud (classic)
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
        ipaddress.ip_address("fd20:ce::254"),  # GCP metadata over IPv6
    }
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlRefused(Exception):
    """A URL the service will not request. The message names the rule, never the URL's query."""


@dataclass(frozen=True)
class Target:
    """A normalised http(s) URL, the only form the outgoing client accepts."""

    scheme: str
    host: str  # lower case; IPv6 without brackets; IPv4 as a dotted quad
    port: int
    path: str  # absolute, dot segments removed
    query: str = ""

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{host}{port}{self.path}{query}"

    @property
    def directory(self) -> Target:
        """This URL as a base for relative references: its path with one trailing slash, no query."""
        return Target(self.scheme, self.host, self.port, self.path.rstrip("/") + "/")

    def under(self, base: Target) -> bool:
        """Same scheme, host and port, and a path at or below the base's path, segment by segment."""
        if (self.scheme, self.host, self.port) != (base.scheme, base.host, base.port):
            return False
        prefix = base.path.rstrip("/")
        path = self.path.rstrip("/")
        return path == prefix or path.startswith(prefix + "/")


def _normalise_percent(path: str) -> str:
    """Decode percent-encoded unreserved characters and upper-case the rest (RFC 3986 §6.2.2.2)."""

    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    return _PERCENT.sub(one, path)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, on an absolute path; `..` above the root stays at the root."""
    output: list[str] = []
    segments = path.split("/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if output:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/" + "/".join(output)


def _merge(base: Target, reference_path: str) -> str:
    """RFC 3986 §5.2.3: a relative path against the base's directory."""
    return base.path[: base.path.rfind("/") + 1] + reference_path


def _ipv4(host: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any spelling inet_aton (and so the resolver) accepts, else None."""
    if not _IPV4_SPELLING.match(host) or not any(c.isdigit() for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except OSError:
        return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries: IPv4-mapped, IPv4-compatible, 6to4 or NAT64."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # ::a.b.c.d (deprecated IPv4-compatible)
        return ipaddress.IPv4Address(int(address))
    return None


def guarded_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether no request may go to this address: link-local, unspecified, multicast or cloud metadata."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return True
        inner = _embedded_ipv4(address)
        if inner is not None and guarded_address(inner):
            return True
    return (
        address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address in METADATA_ADDRESSES
        or (
            isinstance(address, ipaddress.IPv4Address) and address == ipaddress.IPv4Address("255.255.255.255")
        )
    )


def _host(raw_host: str) -> str:
    """The canonical host, or UrlRefused: IPv6 literal, IPv4 in any spelling, or a DNS name."""
    if raw_host.startswith("["):
        if not raw_host.endswith("]"):
            raise UrlRefused("malformed IPv6 host")
        try:
            v6 = ipaddress.IPv6Address(raw_host[1:-1])
        except ValueError as error:
            raise UrlRefused("malformed IPv6 host") from error
        if guarded_address(v6):
            raise UrlRefused("link-local or cloud-metadata address")
        return str(v6)
    host = raw_host.lower()
    if "%" in host:
        raise UrlRefused("percent-encoded host")
    v4 = _ipv4(host)
    if v4 is not None:
        if guarded_address(v4):
            raise UrlRefused("link-local or cloud-metadata address")
        return str(v4)
    host = host[:-1] if host.endswith(".") else host  # `example.org.` is `example.org`
    if not _HOST_NAME.match(host):
        raise UrlRefused("host is not a DNS name or an IP address")
    if host in METADATA_HOSTS:
        raise UrlRefused("cloud-metadata host")
    return host


def _authority(netloc: str, scheme: str) -> tuple[str, int]:
    if "@" in netloc:
        raise UrlRefused("credentials in the URL")
    match = re.fullmatch(r"(\[[^\]]*\]|[^:\[\]]*)(?::([0-9]*))?", netloc)
    if match is None or not match.group(1):
        raise UrlRefused("malformed host or port")
    port_text = match.group(2)
    port = int(port_text) if port_text else _DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise UrlRefused("port out of range")
    return _host(match.group(1)), port


def normalise(raw: object, base: Target | None = None) -> Target:
    """The URL `raw` means, resolved against `base` when relative, or UrlRefused."""
    if not isinstance(raw, str):
        raise UrlRefused("not a string")
    if len(raw) > 8192:
        raise UrlRefused("longer than 8192 characters")
    text = _TAB_NEWLINE.sub("", raw.strip(_STRIP))
    if not text or _FORBIDDEN.search(text):
        raise UrlRefused("empty, or a space, control character or backslash in the URL")
    try:
        parts = urlsplit(text)
    except ValueError as error:
        raise UrlRefused("unparseable URL") from error
    scheme = parts.scheme.lower()
    if scheme and scheme not in _DEFAULT_PORTS:
        raise UrlRefused("only http and https URLs")
    if not scheme and base is None:
        raise UrlRefused("relative URL without a base")
    if scheme and not parts.netloc:
        raise UrlRefused("no host")
    query = parts.query
    if scheme or text.startswith("//"):  # absolute or scheme-relative: a new authority
        scheme = scheme or (base.scheme if base else "")
        host, port = _authority(parts.netloc, scheme)
        path = parts.path or "/"
    else:
        assert base is not None
        scheme, host, port = base.scheme, base.host, base.port
        if parts.path.startswith("/"):
            path = parts.path
        elif parts.path:
            path = _merge(base, parts.path)
        else:
            path = base.path
            query = query if text.startswith("?") else base.query
    path = _normalise_percent(path)
    if re.search(r"%(?:2F|5C|00)", path):
        raise UrlRefused("encoded slash, backslash or NUL in the path")
    return Target(scheme, host, port, _remove_dot_segments(path), query)


def base_url(raw: object) -> Target:
    """A FHIR base or an allow-list entry: an absolute URL without a (non-empty) query or fragment."""
    if isinstance(raw, str) and not raw.strip(_STRIP).lower().startswith(("http://", "https://")):
        raise UrlRefused("a base URL must be absolute http(s)")
    target = normalise(raw)
    assert isinstance(raw, str)
    parts = urlsplit(_TAB_NEWLINE.sub("", raw.strip(_STRIP)))
    if parts.query or parts.fragment:
        raise UrlRefused("a base URL has no query or fragment")
    return Target(target.scheme, target.host, target.port, target.path.rstrip("/") or "/")


@dataclass(frozen=True)
class UrlPolicy:
    """`allowed`: the allowed bases; empty allows any http(s) URL the guards let through (dev, sandbox)."""

    allowed: tuple[Target, ...] = ()

    @classmethod
    def from_list(cls, allowed: Iterable[str]) -> UrlPolicy:
        """The policy of an allow-list; an entry that is not a usable base URL is an error (at start-up)."""
        return cls(tuple(base_url(entry) for entry in allowed))

    def permits(self, target: Target) -> bool:
        return not self.allowed or any(target.under(base) for base in self.allowed)

    def fhir_base(self, fhir_server: object) -> Target:
        """The request's `fhirServer`, normalised and allowed, or UrlRefused."""
        target = base_url(fhir_server)
        if not self.permits(target):
            raise UrlRefused("not on the list of allowed FHIR servers")
        return target

    def fhir_url(self, link: object, fhir_server: Target) -> Target:
        """A query or paging link of a call (relative to `fhirServer`), allowed only under `fhirServer`."""
        target = normalise(link, fhir_server.directory)
        if not target.under(fhir_server):
            raise UrlRefused("link outside the request's fhirServer")
        if not self.permits(target):
            raise UrlRefused("not on the list of allowed FHIR servers")
        return target

    def configured_url(self, url: object) -> Target:
        """A URL the configuration names (a JWKS endpoint): normalised and guarded, not allow-listed."""
        if isinstance(url, str) and not url.strip(_STRIP).lower().startswith(("http://", "https://")):
            raise UrlRefused("must be an absolute http(s) URL")
        return normalise(url)


def token_applies(target: Target, fhir_server: Target | None) -> bool:
    """The EHR's access token is sent only to URLs under the request's `fhirServer`."""
    return fhir_server is not None and target.under(fhir_server)
