"""Verify the JWT a CDS client sends (CDS Hooks 2.0 §"Trusting CDS Clients", cds-hooks/docs best practices).

Order of checks: algorithm (ES384/RS384/ES256/RS256 only), `iss` on the allow-list, `jku` on that
issuer's list, the key for `kid` (refreshed once on an unknown `kid`), signature, `aud` = the exact
external URL called, `exp` (with leeway), `iat`, lifetime, `tenant` if the issuer restricts it, and
last the `jti` replay cache, so only genuine JWTs take a place in it. `sub` is not required (2.0 has
none). Every refusal is the same to the caller (a bare 401); the reason code is for the log only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from cds_service.trust.issuers import TrustedIssuer
from cds_service.trust.jwks import (
    SUPPORTED_ALGORITHMS,
    JsonObject,
    RemoteKeySets,
    load_jwks_file,
    verification_key,
)
from cds_service.trust.replay import ReplayCache, ReplayStoreUnavailable

MAX_TOKEN_CHARS = 16_384
MAX_JTI_CHARS = 256
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti"]


class Untrusted(Exception):
    """A JWT refused. `reason` is a short code, safe to log; the caller is told nothing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerifiedClient:
    """What may be logged about a trusted call: `iss`, `jti` and `tenant` (never the JWT)."""

    iss: str
    jti: str
    tenant: str | None


@dataclass(frozen=True)
class _IssuerTrust:
    issuer: TrustedIssuer
    static_keys: Mapping[str, JsonObject] | None


def _claim_time(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Untrusted(f"{name}-not-numeric")
    return float(value)


def _checked_header(header: object) -> tuple[str, str]:
    """`alg` and `kid` of a JOSE header whose members have the JSON types RFC 7515 gives them: any
    other shape (a list or an object for `alg`, …) is refused before a value is used, never a 500."""
    if not isinstance(header, dict):
        raise Untrusted("malformed")
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm not in SUPPORTED_ALGORITHMS:
        raise Untrusted("algorithm")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
        raise Untrusted("typ")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        raise Untrusted("kid")
    jku = header.get("jku")
    if jku is not None and not isinstance(jku, str):
        raise Untrusted("jku")
    return algorithm, kid


class JwtVerifier:
    def __init__(
        self,
        issuers: Sequence[TrustedIssuer],
        key_sets: RemoteKeySets,
        replay: ReplayCache,
        *,
        leeway_seconds: float,
        max_lifetime_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuers = {
            i.iss: _IssuerTrust(i, load_jwks_file(i.jwks_file) if i.jwks_file else None) for i in issuers
        }
        self._key_sets = key_sets
        self._replay = replay
        self.leeway_seconds = leeway_seconds
        self.max_lifetime_seconds = max_lifetime_seconds
        self._clock = clock

    @property
    def issuers(self) -> list[str]:
        return list(self._issuers)

    def verify(self, token: str, audiences: Sequence[str]) -> VerifiedClient:
        """The verified client, or `Untrusted`. `audiences`: the endpoint's exact external URL(s)."""
        if len(token) > MAX_TOKEN_CHARS:
            raise Untrusted("too-long")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except PyJWTError as error:
            raise Untrusted("malformed") from error
        algorithm, kid = _checked_header(header)
        iss = unverified.get("iss") if isinstance(unverified, dict) else None
        trust = self._issuers.get(iss) if isinstance(iss, str) else None
        if trust is None:
            raise Untrusted("issuer")
        key = verification_key(self._jwk(trust, header.get("jku"), kid), algorithm)
        if key is None:
            raise Untrusted("key-algorithm")
        accepted = [
            *audiences,
            *trust.issuer.audiences,
        ]  # the endpoint's URL(s), then the issuer's own extras
        claims = self._decode(token, key, algorithm, accepted, trust.issuer.iss)
        return self._accept(trust, claims)

    def _jwk(self, trust: _IssuerTrust, jku: object, kid: str) -> JsonObject:
        if jku is not None and (not isinstance(jku, str) or jku not in trust.issuer.jku):
            raise Untrusted("jku")
        if trust.static_keys is not None:
            found = trust.static_keys.get(kid)
        else:
            url = jku if isinstance(jku, str) else trust.issuer.jku[0]
            found = self._key_sets.key(url, kid)
        if found is None:
            raise Untrusted("unknown-kid")
        return found

    def _decode(
        self, token: str, key: jwt.PyJWK, algorithm: str, audiences: Sequence[str], iss: str
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=list(audiences),
                issuer=iss,
                leeway=self.leeway_seconds,
                options={
                    "require": _REQUIRED_CLAIMS,
                    "verify_sub": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except ExpiredSignatureError as error:
            raise Untrusted("expired") from error
        except ImmatureSignatureError as error:
            raise Untrusted("not-yet-valid") from error
        except InvalidAudienceError as error:
            raise Untrusted("audience") from error
        except MissingRequiredClaimError as error:
            raise Untrusted("missing-claim") from error
        except InvalidSignatureError as error:
            raise Untrusted("signature") from error
        except PyJWTError as error:
            raise Untrusted("invalid") from error
        return claims

    def _accept(self, trust: _IssuerTrust, claims: dict[str, Any]) -> VerifiedClient:
        issued, expires = _claim_time(claims, "iat"), _claim_time(claims, "exp")
        now = self._clock()
        longest = trust.issuer.max_lifetime_seconds or self.max_lifetime_seconds
        if expires - issued > longest or issued < now - longest:
            raise Untrusted("lifetime")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
            raise Untrusted("jti")
        tenant = claims.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise Untrusted("tenant")
        if trust.issuer.tenants is not None and tenant not in trust.issuer.tenants:
            raise Untrusted("tenant")
        try:
            first = self._replay.first_use(trust.issuer.iss, jti, expires + self.leeway_seconds - now)
        except ReplayStoreUnavailable as error:
            raise Untrusted("replay-store") from error
        if not first:
            raise Untrusted("replayed")
        return VerifiedClient(iss=trust.issuer.iss, jti=jti, tenant=tenant)
