"""What each profile trusts: `dev` (JWT optional), `sandbox` (the public sandbox's key), `production`.

The public CDS Hooks sandbox signs with ES384, kid 44823f3d-…, `iss` https://sandbox.cds-hooks.org.
Its JWKS ships in `cds_service/keys/sandbox-jwks.json` because that host may be unreachable from
where the service runs. The sandbox's private key is published in its repository, so a sandbox JWT
proves nothing about who called: it is trusted in `dev` and `sandbox` only, never in production.
"""

from __future__ import annotations

from pathlib import Path

from cds_service.settings import Settings
from cds_service.trust.issuers import TrustedIssuer

SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
SANDBOX_JWKS_FILE = Path(__file__).resolve().parents[1] / "keys" / "sandbox-jwks.json"


class ProfileError(Exception):
    """The profile cannot start as configured."""


def jwt_required(settings: Settings) -> bool:
    """`VCDS_JWT_REQUIRED`, else by profile: optional in dev, required in sandbox and production."""
    return settings.jwt_required if settings.jwt_required is not None else settings.profile != "dev"


def sandbox_issuer(jwks_file: Path = SANDBOX_JWKS_FILE) -> TrustedIssuer:
    return TrustedIssuer(iss=SANDBOX_ISSUER, jku=[SANDBOX_JKU], jwks_file=str(jwks_file))


def trusted_issuers(settings: Settings, jwks_file: Path = SANDBOX_JWKS_FILE) -> list[TrustedIssuer]:
    """The configured issuers, plus the public sandbox in dev (when its key file is there) and sandbox."""
    issuers = list(settings.trusted_issuers)
    if settings.profile == "production" or any(i.iss == SANDBOX_ISSUER for i in issuers):
        return issuers
    if jwks_file.is_file():
        issuers.append(sandbox_issuer(jwks_file))
    elif settings.profile == "sandbox":
        raise ProfileError(
            f"the sandbox profile trusts the public CDS Hooks sandbox through {jwks_file}, which is missing"
        )
    return issuers


def startup_warnings(settings: Settings, issuers: list[TrustedIssuer]) -> list[str]:
    """What an operator must hear once at start-up."""
    notes: list[str] = []
    if not jwt_required(settings):
        notes.append(
            "JWT NOT REQUIRED (dev profile): calls without an Authorization header are accepted; a "
            "JWT that is present is still verified. Never expose this service beyond 127.0.0.1."
        )
    if any(i.iss == SANDBOX_ISSUER for i in issuers):
        notes.append(
            "trusting the public CDS Hooks sandbox (iss https://sandbox.cds-hooks.org): its private key is "
            "public, so its JWTs prove nothing about the caller. For testing only."
        )
    if settings.profile != "production" and not settings.allowed_fhir_servers:
        notes.append(
            "VCDS_ALLOWED_FHIR_SERVERS is empty: the service fetches from any fhirServer a caller names."
        )
    if settings.profile != "dev" and settings.public_base_url is None:
        notes.append(
            "VCDS_PUBLIC_BASE_URL is unset: the JWT `aud` is checked against the Host the request names."
        )
    return notes
