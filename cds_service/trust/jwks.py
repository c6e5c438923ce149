"""JSON Web Key Sets of trusted issuers: from a file, or fetched from allow-listed URLs and cached.

A fetched set is kept for `cache_seconds`. A JWT naming a `kid` the cached set lacks (the issuer
rotated its keys) triggers one refresh, but at most one fetch per URL per `cooldown_seconds`, so a
stream of made-up `kid`s cannot turn the service into a fetcher. A failed refresh keeps the keys
already known. Only URLs from the configuration are ever fetched; redirects are not followed.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from cds_service.web.outgoing import OutgoingClient, OutgoingFailed
from cds_service.web.url_policy import UrlPolicy, UrlRefused

JsonObject = dict[str, Any]

# The algorithms CDS Hooks 2.0 allows a client to sign with: ES384 and RS384 are recommended;
# `none` and the symmetric HS* are never accepted.
_KEY_TYPE_OF_ALGORITHM = {"ES256": "EC", "ES384": "EC", "RS256": "RSA", "RS384": "RSA"}
_CURVE_OF_ALGORITHM = {"ES256": "P-256", "ES384": "P-384"}
SUPPORTED_ALGORITHMS = frozenset(_KEY_TYPE_OF_ALGORITHM)
# Public members of EC and RSA keys; private ones (d, p, q, …) are dropped if a set carries them.
_PUBLIC_MEMBERS = frozenset({"kty", "kid", "use", "key_ops", "alg", "crv", "x", "y", "n", "e"})
MAX_JWKS_BYTES = 256_000


class KeySetError(Exception):
    """A key set that cannot be read; the message names the source, never key material."""


def public_keys(document: object) -> dict[str, JsonObject]:
    """The signature-verification keys of a JWKS document, by `kid`: RSA and EC public parts only."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeySetError("not a JWK Set (an object with a `keys` array)")
    keys: dict[str, JsonObject] = {}
    for raw in document["keys"]:
        if not isinstance(raw, dict):
            continue
        kid = raw.get("kid")
        ops = raw.get("key_ops")
        if (
            not isinstance(kid, str)
            or not kid
            or raw.get("kty") not in ("EC", "RSA")
            or raw.get("use") not in (None, "sig")
            or (ops is not None and (not isinstance(ops, list) or "verify" not in ops))
        ):
            continue
        keys[kid] = {name: value for name, value in raw.items() if name in _PUBLIC_MEMBERS}
    return keys


def verification_key(jwk: JsonObject, algorithm: str) -> PyJWK | None:
    """The key bound to `algorithm`, or None when key and algorithm do not fit together."""
    if _KEY_TYPE_OF_ALGORITHM.get(algorithm) != jwk.get("kty") or jwk.get("alg") not in (None, algorithm):
        return None
    if algorithm in _CURVE_OF_ALGORITHM and jwk.get("crv") != _CURVE_OF_ALGORITHM[algorithm]:
        return None
    try:
        return PyJWK(jwk, algorithm=algorithm)
    except (PyJWTError, ValueError, TypeError):
        return None


def load_jwks_file(path: str | Path) -> dict[str, JsonObject]:
    try:
        document = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise KeySetError(f"cannot read the JWKS file {path}: {error}") from error
    try:
        keys = public_keys(document)
    except KeySetError as error:
        raise KeySetError(f"JWKS file {path}: {error}") from error
    if not keys:
        raise KeySetError(f"JWKS file {path} holds no EC or RSA signature key with a kid")
    return keys


@functools.cache
def _default_client() -> OutgoingClient:
    """The JWKS fetches' pooled session (one per process, made on first use)."""
    return OutgoingClient(pool_size=4)


def fetch_jwks(
    url: str, timeout_seconds: float, client: OutgoingClient | None = None
) -> dict[str, JsonObject]:
    """GET one allow-listed JWKS URL through the outgoing client and the URL policy: no redirects, no
    link-local or metadata address, a size cap, one deadline for the whole read. No token is sent."""
    try:
        target = UrlPolicy().configured_url(url)
    except UrlRefused as error:
        raise KeySetError(f"JWKS {url} refused by the URL policy ({error})") from error
    try:
        answer = (client or _default_client()).get(
            target,
            headers={"Accept": "application/jwk-set+json, application/json"},
            timeout=timeout_seconds,
            deadline=time.monotonic() + timeout_seconds,
            max_bytes=MAX_JWKS_BYTES,
        )
    except OutgoingFailed as error:
        raise KeySetError(f"JWKS {url}: {error}") from error
    if answer.status != 200:
        raise KeySetError(f"JWKS {url} answered HTTP {answer.status}")
    try:
        return public_keys(orjson.loads(answer.body))
    except orjson.JSONDecodeError as error:
        raise KeySetError(f"JWKS {url} is not JSON") from error


@dataclass
class _Cached:
    keys: dict[str, JsonObject]
    fetched_at: float | None  # when the keys were last fetched successfully
    attempted_at: float  # when a fetch was last tried, successful or not


Fetch = Callable[[str, float], dict[str, JsonObject]]


class RemoteKeySets:
    """Key sets fetched from URLs the caller has already checked against the allow-list.

    A refresh never blocks verification with a key already known: a stale set is refreshed in the
    background while its keys keep serving, and only a call whose `kid` is unknown waits (at most the
    fetch timeout) for the one refresh in flight for that URL, which every such call shares."""

    def __init__(
        self,
        *,
        cache_seconds: float,
        cooldown_seconds: float,
        timeout_seconds: float,
        fetch: Fetch = fetch_jwks,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.cache_seconds = cache_seconds
        self.cooldown_seconds = cooldown_seconds
        self.timeout_seconds = timeout_seconds
        self._fetch = fetch
        self._clock = clock
        self._on_error = on_error
        self._cached: dict[str, _Cached] = {}
        self._inflight: dict[str, threading.Event] = {}
        self._guard = threading.Lock()
        self.fetches = 0  # fetches started (observability and tests)

    def key(self, url: str, kid: str) -> JsonObject | None:
        """The key `kid` of the set at `url`, refreshing a stale set or one that lacks `kid`."""
        now = self._clock()
        with self._guard:
            cached = self._cached.get(url)
            if cached is not None and kid in cached.keys:
                stale = cached.fetched_at is None or now - cached.fetched_at >= self.cache_seconds
                if stale and url not in self._inflight and now - cached.attempted_at >= self.cooldown_seconds:
                    done = self._begin(url, cached, now)
                    threading.Thread(
                        target=self._refresh, args=(url, done), name="jwks-refresh", daemon=True
                    ).start()
                return cached.keys[kid]
            waiting = self._inflight.get(url)
            mine = None
            if waiting is None and (cached is None or now - cached.attempted_at >= self.cooldown_seconds):
                mine = self._begin(url, cached, now)
        if mine is not None:
            self._refresh(url, mine)
        elif waiting is not None:
            waiting.wait(self.timeout_seconds)
        with self._guard:
            cached = self._cached.get(url)
            return cached.keys.get(kid) if cached is not None else None

    def _begin(self, url: str, cached: _Cached | None, now: float) -> threading.Event:
        """Mark a refresh of `url` as started (under the guard): one at a time per URL."""
        self.fetches += 1
        self._cached[url] = _Cached(
            cached.keys if cached else {}, cached.fetched_at if cached else None, attempted_at=now
        )
        done = threading.Event()
        self._inflight[url] = done
        return done

    def _refresh(self, url: str, done: threading.Event) -> None:
        keys: dict[str, JsonObject] | None = None
        try:
            keys = self._fetch(url, self.timeout_seconds)
        except KeySetError as error:
            if self._on_error is not None:
                self._on_error(str(error))
            # keep what was known: an issuer's JWKS endpoint being down must not lock out
        finally:
            with self._guard:
                if keys is not None:
                    now = self._clock()
                    self._cached[url] = _Cached(keys, fetched_at=now, attempted_at=now)
                self._inflight.pop(url, None)
            done.set()
