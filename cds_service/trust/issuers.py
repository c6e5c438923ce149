"""Who may call: an allow-list of JWT issuers, each with its key source (settings model).

An issuer's keys come either from a static JWKS file shared out of band, or from JWKS URLs on its
own `jku` allow-list. Naming `iss` and `jku` together matters: a JWT that could name any `jku` would
vouch for itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _absolute_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise ValueError(f"{value!r} must not carry credentials or a fragment")
    return value


class TrustedIssuer(BaseModel):
    """One CDS client (EHR) this service trusts; `VCDS_TRUSTED_ISSUERS` is a JSON list of these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1, description="The `iss` claim, compared exactly.")
    jku: list[str] = Field(
        default_factory=list,
        description="JWKS URLs this issuer's JWTs may name in `jku` (exact match); the first is used for "
        "JWTs that name none. Keys are fetched only from these.",
    )
    jwks_file: str | None = Field(
        None, description="A JWKS file shared out of band; when set, keys come from it alone (no fetch)."
    )
    tenants: list[str] | None = Field(
        None, description="Allowed `tenant` values; when set, a JWT must carry one of them."
    )
    audiences: list[str] = Field(
        default_factory=list,
        description="More `aud` values accepted from this issuer beside the exact endpoint URL, compared "
        "exactly (Epic's `aud` is typed by an analyst: e.g. the service's base URL).",
    )
    max_lifetime_seconds: int | None = Field(
        None,
        ge=1,
        le=7 * 24 * 3600,
        description="Longest JWT lifetime (`exp` - `iat`, also the oldest `iat`) accepted from this issuer; "
        "unset: VCDS_JWT_MAX_LIFETIME_SECONDS (the Da Vinci CRD request generator signs 1-day JWTs).",
    )

    @field_validator("jku")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return [_absolute_url(url) for url in value]

    @field_validator("audiences")
    @classmethod
    def _audiences(cls, value: list[str]) -> list[str]:
        # absolute URLs only: an `aud` that names no endpoint (say "*") would accept any endpoint's JWT
        return [_absolute_url(url) for url in value]

    @model_validator(mode="after")
    def _has_keys(self) -> TrustedIssuer:
        if not self.jku and not self.jwks_file:
            raise ValueError(f"trusted issuer {self.iss!r} needs `jku` URLs or a `jwks_file`")
        return self
