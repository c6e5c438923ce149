"""Service settings: environment variables prefixed `VCDS_`, optionally a YAML file, validated at start.

Built by `load_settings()` when the app is created, never at import time, so tests and workers each
get their own.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cds_service.trust.issuers import TrustedIssuer
from cds_service.web.url_policy import UrlRefused, base_url

Profile = Literal["dev", "sandbox", "production"]


class SettingsError(Exception):
    """Settings that cannot be used; the message says which and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VCDS_", extra="forbid", frozen=True)

    profile: Profile = Field("dev", description="dev, sandbox or production.")
    host: str = Field("127.0.0.1", description="Address to bind. dev binds 127.0.0.1 only.")
    port: int = Field(8080, ge=1, le=65535, description="Port to listen on.")
    public_base_url: str | None = Field(
        None, description="External base URL (behind proxies); used for absolute URLs and JWT `aud`."
    )
    database_url: str = Field(
        "sqlite:///./var/vertebral-cds.sqlite3",
        description="SQLAlchemy URL of the store for evaluations, feedback and thresholds.",
    )
    patient_hash_key: str | None = Field(
        None,
        description="Secret for the keyed hash of patient ids in stored rows. dev/sandbox: generated into "
        "var/patient-hash.key when unset; production: required.",
    )
    cors_origins: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Origins allowed by CORS on the CDS Hooks routes (browser clients such as the sandbox); "
        "the admin area never answers CORS.",
    )
    api_docs_enabled: bool | None = Field(
        None,
        description="Serve /docs and /openapi.json. Unset: on in dev and sandbox, off in production.",
    )
    trusted_issuers: list[TrustedIssuer] = Field(
        default_factory=list,
        description="JSON list of the CDS clients whose JWTs are accepted: "
        '[{"iss": …, "jku": [JWKS URLs], "jwks_file": …, "tenants": […]}]. dev and sandbox add the public '
        "CDS Hooks sandbox.",
    )
    jwt_required: bool | None = Field(
        None,
        description="Require a JWT on discovery, hook and feedback calls. Unset: by profile (dev no, sandbox "
        "and production yes). A JWT that is sent is always verified.",
    )
    jwt_leeway_seconds: int = Field(
        60, ge=0, le=300, description="Clock skew allowed on `exp`, `iat`, `nbf`."
    )
    jwt_max_lifetime_seconds: int = Field(
        3600,
        ge=60,
        le=86_400,
        description="Longest JWT lifetime (`exp` - `iat`) accepted; also the oldest `iat`.",
    )
    jwks_cache_seconds: int = Field(
        3600, ge=0, le=604_800, description="How long a fetched JWKS is used before it is fetched again."
    )
    jwks_refresh_cooldown_seconds: float = Field(
        30.0, ge=0, le=3600, description="Least time between two fetches of one JWKS URL (unknown `kid`)."
    )
    jwks_fetch_timeout_seconds: float = Field(3.0, gt=0, le=30, description="Timeout of one JWKS fetch.")
    redis_url: SecretStr | None = Field(
        None, description="Redis for the JWT `jti` replay cache shared by all workers. Unset: in-process."
    )
    tls_certfile: str | None = Field(
        None, description="TLS certificate (PEM) when the service ends TLS itself."
    )
    tls_keyfile: str | None = Field(None, description="TLS private key (PEM) for VCDS_TLS_CERTFILE.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses of the reverse proxies that end TLS and whose X-Forwarded-* headers are "
        "trusted (uvicorn forwarded_allow_ips).",
    )
    fhir_request_timeout_seconds: float = Field(
        4.0, gt=0, le=60, description="Timeout of one request to the EHR's FHIR server."
    )
    fetch_deadline_seconds: float = Field(
        6.0, gt=0, le=120, description="Overall deadline for fetching missing prefetch data."
    )
    fetch_max_pages: int = Field(20, ge=1, le=1000, description="Most `next` pages followed per query.")
    fetch_max_response_bytes: int = Field(
        20_000_000, ge=10_000, description="Largest FHIR response body read from the EHR."
    )
    fetch_workers: int = Field(16, ge=1, le=128, description="Threads for parallel FHIR fetches.")
    allowed_fhir_servers: list[str] = Field(
        default_factory=list,
        description="FHIR base URLs the service may fetch from (prefix match); empty allows any, except in "
        "production.",
    )
    max_request_bytes: int = Field(
        5_000_000, ge=1_000, description="Largest hook request body accepted (413)."
    )
    max_json_depth: int = Field(
        64, ge=8, le=512, description="Deepest JSON nesting accepted in a request body (400)."
    )
    max_json_values: int = Field(
        1_000_000, ge=1_000, description="Most JSON values (members and items) in a request body (413)."
    )
    max_bundle_entries: int = Field(
        10_000, ge=10, description="Most Bundle entries in a request body, draftOrders and prefetch (413)."
    )
    request_body_timeout_seconds: float = Field(
        15.0, gt=0, le=300, description="Time allowed to receive a request body (408)."
    )
    hook_deadline_seconds: float | None = Field(
        None,
        gt=0,
        le=300,
        description="Overall deadline of one hook call (503 past it). Unset: the fetch deadline plus 5 s.",
    )
    max_concurrent_hook_calls: int = Field(
        32,
        ge=1,
        le=1024,
        description="Hook calls evaluated at once per worker; more wait (within their deadline), so slow "
        "FHIR servers cannot starve the rest of the service.",
    )
    mapping_cache_entries: int = Field(
        256,
        ge=0,
        le=100_000,
        description="Mapped patient records each worker keeps in memory, so repeated order-select calls with "
        "the same data skip the mapping; 0 turns the cache off.",
    )
    mapping_cache_seconds: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="How long a mapped record is kept (memory only, never stored); 0 turns the cache off.",
    )
    answer_cache_entries: int = Field(
        256,
        ge=0,
        le=100_000,
        description="Answers each worker keeps in memory for calls that repeat an earlier one exactly (apart "
        "from hookInstance and token; fully prefetched calls only); 0 turns the cache off.",
    )
    answer_cache_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="How long an answer is kept for repeats (memory only, never stored); 0 turns it off.",
    )
    demo_imaging_stand_in: bool = Field(
        False, description="Sandbox demo: treat spine imaging orders as a stand-in augmentation order."
    )
    playground_enabled: bool | None = Field(
        None,
        description="Serve the playground page at /playground (demo patients, cards as an EHR shows them). "
        "Unset: on in dev and sandbox, off in production.",
    )
    sign_system_actions: bool = Field(
        True, description="On order-sign, propose a systemAction that notes the decision on the order."
    )
    thresholds_file: str | None = Field(None, description="YAML file to seed thresholds version 1 from.")
    thresholds_refresh_seconds: float = Field(
        1.0,
        ge=0,
        le=60,
        description="How often each worker checks the database for a newly saved thresholds version.",
    )
    admin_token: SecretStr | None = Field(
        None,
        description="Bearer token of admin editors (change thresholds, roll back). Unset: the admin API and "
        "page are closed.",
    )
    admin_viewer_token: SecretStr | None = Field(
        None, description="Bearer token of admin viewers (read thresholds, history, audit; run previews)."
    )
    admin_session_secret: SecretStr | None = Field(
        None,
        description="Key that signs admin page session cookies; the same on every worker and replica. Unset: "
        "derived from the admin tokens.",
    )
    admin_session_minutes: int = Field(480, ge=5, le=7 * 24 * 60, description="Admin page session lifetime.")
    what_if_cases_dir: str | None = Field(
        None,
        description="Folder of saved cases (hook requests or scenario files) for the admin what-if preview, "
        "besides the ones shipped in the package (a source checkout may name tests/scenarios/cases). Unset: "
        "the package's cases only.",
    )
    evaluation_retention_days: int = Field(
        365,
        ge=0,
        le=36500,
        description="Evaluation records and feedback older than this are deleted at start-up and by "
        "`vertebral-cds db purge`; 0 keeps them forever.",
    )
    codesets_dir: str | None = Field(
        None,
        description="A site's own copy of the code set files (same format as the shipped ones); validated "
        "at start-up, which stops with the file and entry at fault.",
    )
    log_level: str = Field("INFO", description="Logging level.")

    @field_validator("public_base_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/") if value else value

    @field_validator("allowed_fhir_servers")
    @classmethod
    def _fhir_bases(cls, value: list[str]) -> list[str]:
        """Each entry as the URL policy reads it (`HTTPS://Host:443/r4/` is `https://host/r4`)."""
        canonical = []
        for entry in value:
            try:
                canonical.append(base_url(entry).url)
            except UrlRefused as error:
                raise ValueError(f"{entry!r} is not a usable FHIR base URL: {error}") from error
        return canonical

    @model_validator(mode="after")
    def _admin_tokens_usable(self) -> Settings:
        editor, viewer = self.admin_token, self.admin_viewer_token
        for name, token in (("VCDS_ADMIN_TOKEN", editor), ("VCDS_ADMIN_VIEWER_TOKEN", viewer)):
            if token is not None and len(token.get_secret_value()) < 16:
                raise ValueError(f"{name} must be at least 16 characters")
        if editor and viewer and editor.get_secret_value() == viewer.get_secret_value():
            raise ValueError("VCDS_ADMIN_VIEWER_TOKEN must differ from VCDS_ADMIN_TOKEN")
        if viewer and not editor:
            raise ValueError("VCDS_ADMIN_VIEWER_TOKEN needs VCDS_ADMIN_TOKEN too")
        secret = self.admin_session_secret
        if secret is not None and len(secret.get_secret_value()) < 16:
            raise ValueError("VCDS_ADMIN_SESSION_SECRET must be at least 16 characters")
        return self

    @model_validator(mode="after")
    def _safe_for_profile(self) -> Settings:
        if self.profile == "production":
            missing = [
                name
                for name, value in (
                    ("VCDS_PUBLIC_BASE_URL", self.public_base_url),
                    ("VCDS_PATIENT_HASH_KEY", self.patient_hash_key),
                    ("VCDS_ALLOWED_FHIR_SERVERS", self.allowed_fhir_servers),
                    ("VCDS_TRUSTED_ISSUERS", self.trusted_issuers),
                    ("VCDS_ADMIN_TOKEN", self.admin_token),
                    (
                        "VCDS_TLS_CERTFILE and VCDS_TLS_KEYFILE, or VCDS_TRUSTED_PROXIES",
                        self.tls_certfile or self.trusted_proxies,
                    ),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"production profile requires {', '.join(missing)}")
            if self.demo_imaging_stand_in:
                raise ValueError("production profile must not enable VCDS_DEMO_IMAGING_STAND_IN")
            if self.playground_enabled:
                raise ValueError("production profile must not enable VCDS_PLAYGROUND_ENABLED")
            placeholders = [name for name, value in self._secrets() if _placeholder(value)]
            if placeholders:
                raise ValueError(
                    f"production profile refuses placeholder secrets: replace {', '.join(placeholders)}"
                )
            self._production_trust()
        if bool(self.tls_certfile) != bool(self.tls_keyfile):
            raise ValueError("VCDS_TLS_CERTFILE and VCDS_TLS_KEYFILE go together")
        return self

    def _secrets(self) -> list[tuple[str, str]]:
        values = [
            ("VCDS_PATIENT_HASH_KEY", self.patient_hash_key),
            ("VCDS_DATABASE_URL", self.database_url),
            ("VCDS_REDIS_URL", self.redis_url.get_secret_value() if self.redis_url else None),
            ("VCDS_ADMIN_TOKEN", self.admin_token.get_secret_value() if self.admin_token else None),
            (
                "VCDS_ADMIN_VIEWER_TOKEN",
                self.admin_viewer_token.get_secret_value() if self.admin_viewer_token else None,
            ),
            (
                "VCDS_ADMIN_SESSION_SECRET",
                self.admin_session_secret.get_secret_value() if self.admin_session_secret else None,
            ),
        ]
        return [(name, value) for name, value in values if value]

    @property
    def docs_served(self) -> bool:
        return self.api_docs_enabled if self.api_docs_enabled is not None else self.profile != "production"

    def _production_trust(self) -> None:
        if self.jwt_required is False:
            raise ValueError("production profile requires JWTs; unset VCDS_JWT_REQUIRED")
        if any(i.iss == "https://sandbox.cds-hooks.org" for i in self.trusted_issuers):
            raise ValueError(
                "production profile must not trust the public sandbox (its private key is public)"
            )
        jwks_urls = [url for issuer in self.trusted_issuers for url in issuer.jku]
        plain = [
            url
            for url in [self.public_base_url or "", *self.allowed_fhir_servers, *jwks_urls]
            if url.strip().lower().startswith("http:")
        ]
        if plain:
            raise ValueError(f"production profile requires https URLs, not {', '.join(plain)}")


# What shipped examples put where a secret goes (docker-compose.yml, deploy/kubernetes/secret.example.yaml)
_PLACEHOLDER = re.compile(
    r"change[-_ ]?me|placeholder|replace[-_ ]?me|your[-_]|<[^>]*>|^x+$|^(secret|password)$", re.I
)


def _placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.search(value))


def load_settings(settings_file: str | None = None, **overrides: Any) -> Settings:
    """Environment first, then the YAML file (VCDS_SETTINGS_FILE) for what the environment leaves unset."""
    path = settings_file or os.environ.get("VCDS_SETTINGS_FILE")
    file_values: dict[str, Any] = {}
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise SettingsError(f"cannot read settings file {path}: {error}") from error
        if not isinstance(loaded, dict):
            raise SettingsError(f"settings file {path} must hold a mapping of setting names to values")
        file_values = {k: v for k, v in loaded.items() if f"VCDS_{k.upper()}" not in os.environ}
    try:
        return Settings(**{**file_values, **overrides})
    except ValidationError as error:
        lines = [
            f"  VCDS_{'_'.join(str(p) for p in e['loc']).upper() or '(settings)'}: {e['msg']}"
            for e in error.errors()
        ]
        raise SettingsError("invalid settings:\n" + "\n".join(lines)) from error
