"""JSON Web Key Sets of trusted issuers: from a file, or fetched from allow-listed URLs and cached.

A fetched set is kept for `cache_seconds`. A JWT naming a `kid` the cached set lacks (the issuer
rotated its keys) triggers one refresh, but at most one fetch per URL per `cooldown_seconds`, so a
stream of made-up `kid`s cannot turn the service into a fetcher. A failed refresh keeps the keys
already known. Only URLs from the configuration are ever fetched; redirects are not followed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import requests
from jwt import PyJWK
from jwt.exceptions import PyJWTError

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


def fetch_jwks(url: str, timeout_seconds: float) -> dict[str, JsonObject]:
    """GET one allow-listed JWKS URL: no redirects, a size cap, one deadline for the whole read."""
    deadline = time.monotonic() + timeout_seconds
    try:
        with requests.get(
            url,
            headers={"Accept": "application/jwk-set+json, application/json"},
            timeout=timeout_seconds,
            allow_redirects=False,
            stream=True,
        ) as response:
            if response.status_code != 200:
                raise KeySetError(f"JWKS {url} answered HTTP {response.status_code}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(chunk_size=8192):
                size += len(chunk)
                if size > MAX_JWKS_BYTES or time.monotonic() > deadline:
                    raise KeySetError(f"JWKS {url} too large or too slow")
                chunks.append(chunk)
    except requests.RequestException as error:
        raise KeySetError(f"JWKS {url} unreachable ({type(error).__name__})") from error
    try:
        return public_keys(orjson.loads(b"".join(chunks)))
    except orjson.JSONDecodeError as error:
        raise KeySetError(f"JWKS {url} is not JSON") from error


@dataclass
class _Cached:
    keys: dict[str, JsonObject]
    fetched_at: float | None  # when the keys were last fetched successfully
    attempted_at: float  # when a fetch was last tried, successful or not


Fetch = Callable[[str, float], dict[str, JsonObject]]


class RemoteKeySets:
    """Key sets fetched from URLs the caller has already checked against the allow-list."""

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
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.fetches = 0  # fetches attempted (observability and tests)

    def _lock(self, url: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(url, threading.Lock())

    def key(self, url: str, kid: str) -> JsonObject | None:
        """The key `kid` of the set at `url`, refreshing a stale set or one that lacks `kid`."""
        with self._lock(url):
            cached = self._cached.get(url)
            now = self._clock()
            fresh = (
                cached is not None
                and cached.fetched_at is not None
                and now - cached.fetched_at < self.cache_seconds
            )
            if cached is not None and fresh and kid in cached.keys:
                return cached.keys[kid]
            if cached is None or now - cached.attempted_at >= self.cooldown_seconds:
                cached = self._refresh(url, cached, now)
            return cached.keys.get(kid)

    def _refresh(self, url: str, cached: _Cached | None, now: float) -> _Cached:
        self.fetches += 1
        try:
            updated = _Cached(self._fetch(url, self.timeout_seconds), fetched_at=now, attempted_at=now)
        except KeySetError as error:
            if self._on_error is not None:
                self._on_error(str(error))
            # keep what was known: an issuer's JWKS endpoint being down must not lock its clients out
            updated = _Cached(
                cached.keys if cached else {}, cached.fetched_at if cached else None, attempted_at=now
            )
        self._cached[url] = updated
        return updated
