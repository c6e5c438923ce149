"""CDS Hooks 2.0 response wire models (cards, suggestions, actions, links).

Serialise with `by_alias=True, exclude_none=True`: the spec forbids `null` and empty values, so
optional fields are None (omitted) rather than empty.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SUMMARY_MAX_CHARS = 139  # the spec says "<140"; Inferno fails a card at 140 or more


class WireModel(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")


class Coding(WireModel):
    system: str
    code: str
    display: str | None = None


class Source(WireModel):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(WireModel):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resource_id: str | None = Field(default=None, alias="resourceId")

    @model_validator(mode="after")
    def _complete(self) -> Action:
        if self.type in ("create", "update") and not self.resource:
            raise ValueError(f"a {self.type} action needs a resource")
        if self.type == "delete" and not self.resource_id:
            raise ValueError("a delete action needs a resourceId")
        return self


class Suggestion(WireModel):
    label: str
    uuid: str | None = None
    is_recommended: bool | None = Field(default=None, alias="isRecommended")
    actions: tuple[Action, ...] | None = None


class Link(WireModel):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    app_context: str | None = Field(default=None, alias="appContext")

    @field_validator("url")
    @classmethod
    def _absolute(cls, url: str) -> str:
        if not url.startswith(("https://", "http://")):
            raise ValueError("link urls must be absolute http(s) URLs")
        return url


class OverrideReason(Coding):
    display: str


class Card(WireModel):
    uuid: str | None = None
    summary: str = Field(max_length=SUMMARY_MAX_CHARS, min_length=1)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: tuple[Suggestion, ...] | None = None
    selection_behavior: Literal["at-most-one", "any"] | None = Field(default=None, alias="selectionBehavior")
    override_reasons: tuple[OverrideReason, ...] | None = Field(default=None, alias="overrideReasons")
    links: tuple[Link, ...] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _selection_behaviour_with_suggestions(self) -> Card:
        if self.suggestions and self.selection_behavior is None:
            raise ValueError("selectionBehavior is required when there are suggestions")
        return self


class CdsResponse(WireModel):
    cards: tuple[Card, ...] = ()
    system_actions: tuple[Action, ...] | None = Field(default=None, alias="systemActions")
    extension: dict[str, Any] | None = None

    def to_json(self) -> bytes:
        """The response body. `cards` is always there, `[]` when empty: the one empty value the spec
        allows (exclude_none drops None, never an empty tuple)."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode("utf-8")
