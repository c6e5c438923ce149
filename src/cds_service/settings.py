"""Service settings: environment variables prefixed `VCDS_`, optionally a YAML file, validated at start.

Built by `load_settings()` when the app is created, never at import time, so tests and workers each
get their own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
        description="Origins allowed by CORS (browser clients such as the sandbox).",
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
    demo_imaging_stand_in: bool = Field(
        False, description="Sandbox demo: treat spine imaging orders as a stand-in augmentation order."
    )
    sign_system_actions: bool = Field(
        True, description="On order-sign, propose a systemAction that notes the decision on the order."
    )
    thresholds_file: str | None = Field(None, description="YAML file to seed thresholds version 1 from.")
    log_level: str = Field("INFO", description="Logging level.")

    @field_validator("public_base_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _safe_for_profile(self) -> Settings:
        if self.profile == "production":
            missing = [
                name
                for name, value in (
                    ("VCDS_PUBLIC_BASE_URL", self.public_base_url),
                    ("VCDS_PATIENT_HASH_KEY", self.patient_hash_key),
                    ("VCDS_ALLOWED_FHIR_SERVERS", self.allowed_fhir_servers),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"production profile requires {', '.join(missing)}")
            if self.demo_imaging_stand_in:
                raise ValueError("production profile must not enable VCDS_DEMO_IMAGING_STAND_IN")
        return self


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
