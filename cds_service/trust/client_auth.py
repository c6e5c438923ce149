"""The JWT check at the edge: one `ClientAuthenticator` per app, used by the CDS Hooks routes.

The `aud` a JWT must carry is the exact external URL of the endpoint called:
`{VCDS_PUBLIC_BASE_URL or the request's base URL}/cds-services[/{id}[/feedback]]`. A trailing slash
is tolerated. Any failure is a bare 401; the reason goes to the log, the JWT never does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fastapi import Request

from cds_service.settings import Settings, SettingsError
from cds_service.trust.jwks import KeySetError, RemoteKeySets
from cds_service.trust.jwt_verifier import JwtVerifier, Untrusted, VerifiedClient
from cds_service.trust.profiles import ProfileError, jwt_required, startup_warnings, trusted_issuers
from cds_service.trust.replay import MemoryReplayCache, RedisReplayCache, ReplayCache
from cds_service.web.errors import Unauthorized

log = logging.getLogger("vertebral_cds.trust")


@dataclass
class ClientAuthenticator:
    verifier: JwtVerifier
    required: bool
    public_base_url: str | None

    def audience(self, request: Request, path: str) -> str:
        base = self.public_base_url or str(request.base_url).rstrip("/")
        return f"{base}{path}"

    def authenticate(self, authorization: str | None, audience: str) -> VerifiedClient | None:
        """The verified client; None when no JWT was sent and none is required; else `Unauthorized`."""
        if authorization is None:
            if self.required:
                log.info("client JWT missing", extra={"error_code": "missing"})
                raise Unauthorized("")
            return None
        scheme, _, token = authorization.strip().partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Untrusted("not-bearer")
            client = self.verifier.verify(token.strip(), [audience, audience + "/"])
        except Untrusted as refused:
            log.warning("client JWT refused", extra={"error_code": refused.reason})
            raise Unauthorized("") from None
        log.debug("client JWT accepted", extra={"iss": client.iss, "jti": client.jti})
        return client


def authenticate(request: Request, path: str) -> VerifiedClient | None:
    """For route dependencies: check the request's JWT against the endpoint at `path`."""
    auth: ClientAuthenticator = request.app.state.client_auth
    return auth.authenticate(request.headers.get("authorization"), auth.audience(request, path))


def build_client_authenticator(settings: Settings) -> ClientAuthenticator:
    """The profile's issuers, key sets, replay cache and verifier; start-up warnings logged once."""
    try:
        issuers = trusted_issuers(settings)
        replay: ReplayCache = (
            RedisReplayCache.from_url(settings.redis_url.get_secret_value())
            if settings.redis_url
            else MemoryReplayCache()
        )
        verifier = JwtVerifier(
            issuers,
            RemoteKeySets(
                cache_seconds=settings.jwks_cache_seconds,
                cooldown_seconds=settings.jwks_refresh_cooldown_seconds,
                timeout_seconds=settings.jwks_fetch_timeout_seconds,
                on_error=lambda message: log.warning("JWKS refresh failed: %s", message),
            ),
            replay,
            leeway_seconds=settings.jwt_leeway_seconds,
            max_lifetime_seconds=settings.jwt_max_lifetime_seconds,
        )
    except (ProfileError, KeySetError, ImportError) as error:
        raise SettingsError(f"cannot set up JWT verification: {error}") from error
    for note in startup_warnings(settings, issuers):
        log.warning(note)
    return ClientAuthenticator(verifier, jwt_required(settings), settings.public_base_url)
