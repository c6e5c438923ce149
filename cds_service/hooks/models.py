"""CDS Hooks 2.0 request wire models: what an EHR sends to a hook and to feedback.

Lenient where real clients differ from the letter (unknown fields, a draftOrders Bundle without
`type`), strict where a wrong value would mislead (hook, ids, references, fhirAuthorization).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from fhir_mappings.parsing import MAX_ID_CHARS

# FHIR limits ids to 64 characters, but Epic's unsigned-order ids are about 194-216 (`[A-Za-z0-9.-]`): ids
# and references are read up to MAX_ID_CHARS, in FHIR's character set, everywhere the service reads them.
_ID_CHARS = rf"[A-Za-z0-9\-.]{{1,{MAX_ID_CHARS}}}"
_ID = re.compile(rf"^{_ID_CHARS}$")
_USER_REFERENCE = re.compile(rf"^(Practitioner|PractitionerRole|Patient|RelatedPerson)/{_ID_CHARS}$")
_RELATIVE_REFERENCE = re.compile(rf"^[A-Z][A-Za-z]+/{_ID_CHARS}$")


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class FhirAuthorization(_Lenient):
    access_token: str = Field(repr=False)
    """May be empty: the Da Vinci CRD request generator sends `""` when its FHIR server needs no token
    (read as "no token", see `HookRequest.access_token`)."""
    token_type: Literal["Bearer", "bearer"]
    expires_in: int = Field(ge=0)
    scope: str
    subject: str
    patient: str | None = None

    @field_validator("expires_in", mode="before")
    @classmethod
    def _integer(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("expires_in must be an integer number of seconds")
        return value


class OrderContext(_Lenient):
    user_id: str = Field(alias="userId")
    patient_id: str = Field(alias="patientId")
    encounter_id: str | None = Field(default=None, alias="encounterId")
    selections: list[str] | None = None
    draft_orders: dict[str, Any] = Field(alias="draftOrders")

    @field_validator("user_id")
    @classmethod
    def _user_reference(cls, value: str) -> str:
        if not _USER_REFERENCE.match(value):
            raise ValueError("userId must be a reference such as Practitioner/123 or PractitionerRole/123")
        return value

    @field_validator("patient_id", "encounter_id")
    @classmethod
    def _bare_id(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            raise ValueError(f"must be a bare FHIR id (letters, digits, '-', '.'; at most {MAX_ID_CHARS})")
        return value

    @field_validator("selections")
    @classmethod
    def _references(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if not _RELATIVE_REFERENCE.match(item):
                raise ValueError(
                    f"selections must be relative references such as ServiceRequest/123, not {item!r}"
                )
        return value

    @field_validator("draft_orders")
    @classmethod
    def _bundle(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Bundle.type is often missing (the spec's own examples, the sandbox): accepted on purpose.
        if value.get("resourceType") != "Bundle":
            raise ValueError("draftOrders must be a FHIR Bundle")
        entries = value.get("entry", [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("draftOrders.entry must be a list of entries")
        return value


class HookRequest(_Lenient):
    hook: str
    hook_instance: str = Field(alias="hookInstance")
    fhir_server: HttpUrl | None = Field(default=None, alias="fhirServer")
    fhir_authorization: FhirAuthorization | None = Field(default=None, alias="fhirAuthorization", repr=False)
    context: OrderContext
    prefetch: dict[str, Any] | None = None

    @field_validator("hook_instance")
    @classmethod
    def _uuid(cls, value: str) -> str:
        try:
            uuid.UUID(value)
        except ValueError as error:
            raise ValueError("hookInstance must be a UUID") from error
        return value

    @model_validator(mode="after")
    def _server_with_authorization(self) -> HookRequest:
        if self.fhir_authorization is not None and self.fhir_server is None:
            raise ValueError("fhirServer is required when fhirAuthorization is present")
        return self

    @property
    def fhir_base(self) -> str | None:
        return str(self.fhir_server).rstrip("/") if self.fhir_server else None

    @property
    def access_token(self) -> str | None:
        """The bearer token for `fhirServer`; an empty one is no token (the request goes without one)."""
        return (self.fhir_authorization.access_token or None) if self.fhir_authorization else None


# Every string that reaches a column is bounded here, at the column's length (tables.py): a longer one is
# a 400 that names the field, on every backend (SQLite would store it whole, PostgreSQL would refuse it).
class FeedbackCoding(_Lenient):
    code: str = Field(min_length=1, max_length=128)  # FeedbackRow.override_reason_code
    system: str = Field(min_length=1, max_length=256)  # FeedbackRow.override_reason_system
    display: str | None = Field(default=None, max_length=4096)  # the sandbox sends code and system only


class OverrideReason(_Lenient):
    reason: FeedbackCoding | None = None
    user_comment: str | None = Field(default=None, alias="userComment", repr=False)


class AcceptedSuggestion(_Lenient):
    id: str = Field(min_length=1, max_length=128)


def _coding(value: object) -> FeedbackCoding | None:
    """A Coding (code and system) in whatever an extension holds: itself, `valueCoding`, `reason`, or the
    first coding of a CodeableConcept (`valueCodeableConcept`, `coding`)."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("code"), str) and isinstance(value.get("system"), str):
        try:
            return FeedbackCoding.model_validate(value)
        except ValueError:
            return None
    for name in ("valueCoding", "reason", "overrideReason", "valueCodeableConcept"):
        found = _coding(value.get(name))
        if found is not None:
            return found
    codings = value.get("coding")
    if isinstance(codings, list):
        return next((c for c in map(_coding, codings) if c is not None), None)
    return None


def _comment(value: object) -> str | None:
    """A free-text comment next to an extension's reason (`userComment`, `comment`, `valueString`)."""
    if isinstance(value, dict):
        for name in ("userComment", "comment", "valueString"):
            found = value.get(name)
            if isinstance(found, str) and found.strip():
                return found
        for nested in value.values():
            if isinstance(nested, dict | list) and (found := _comment(nested)):
                return found
    if isinstance(value, list):
        return next((c for c in map(_comment, value) if c), None)
    return None


def _extension_reason(extension: object) -> OverrideReason | None:
    """Epic's override reason built as a feedback extension. Its exact name is site- and version-specific
    (inferred, not documented publicly): the first member of the `extension` object, or the first
    FHIR-style `{url, valueCoding}` entry, that holds a Coding is read; a comment anywhere in it sets the
    comment flag."""
    members: list[object] = []
    if isinstance(extension, dict):
        members = list(extension.values())
    elif isinstance(extension, list):
        members = list(extension)
    entries = [e for m in members for e in (m if isinstance(m, list) else [m])]
    coding = next((c for c in map(_coding, entries) if c is not None), None)
    comment = _comment(extension)
    if coding is None and comment is None:
        return None
    return OverrideReason(reason=coding, userComment=comment)


class FeedbackItem(_Lenient):
    card: str = Field(min_length=1, max_length=128)
    outcome: Literal["accepted", "overridden"]
    accepted_suggestions: list[AcceptedSuggestion] | None = Field(
        default=None, alias="acceptedSuggestions", max_length=100
    )
    override_reason: OverrideReason | None = Field(default=None, alias="overrideReason")
    override_reasons: list[OverrideReason] | None = Field(
        default=None, alias="overrideReasons", max_length=20
    )
    """Epic's plural form, `[{reason, userComment}]` (CDS Hooks names only the singular)."""
    extension: dict[str, Any] | list[Any] | None = None
    outcome_timestamp: str = Field(alias="outcomeTimestamp", max_length=64)

    @field_validator("outcome_timestamp")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as error:
            raise ValueError("outcomeTimestamp must be an RFC 3339 date-time") from error
        return value

    @model_validator(mode="after")
    def _accepted_has_suggestions(self) -> FeedbackItem:
        if self.outcome == "accepted" and not self.accepted_suggestions:
            raise ValueError("acceptedSuggestions is required when outcome is accepted")
        return self

    @property
    def reason(self) -> OverrideReason | None:
        """The override reason however the EHR sent it: `overrideReason` (CDS Hooks), else the first coded
        `overrideReasons` item (Epic), else a coded reason in `extension` (Epic's reason extension). The
        comment flag is set when any of them carries a comment."""
        candidates = [self.override_reason, *(self.override_reasons or ())]
        if self.extension is not None:
            candidates.append(_extension_reason(self.extension))
        present = [c for c in candidates if c is not None]
        coded = next((c for c in present if c.reason is not None), None)
        commented = next((c.user_comment for c in present if c.user_comment), None)
        if coded is None and commented is None:
            return None
        return OverrideReason(reason=coded.reason if coded else None, userComment=commented)


class FeedbackRequest(_Lenient):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=500)
