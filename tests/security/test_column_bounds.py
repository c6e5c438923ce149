"""Every string a caller sends that reaches a column is bounded by the request model at the column's
length: one character more is a 400 naming the field, on SQLite and on PostgreSQL alike (SQLite would
store a megabyte; PostgreSQL would refuse it with a 500)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import String

from cds_service.hooks.models import AcceptedSuggestion, FeedbackCoding, FeedbackItem
from cds_service.storage.tables import FeedbackRow
from tests.support.app import client_for, make_app, sample

FEEDBACK = "/cds-services/vertebral-augmentation-select/feedback"

# (request model, its field, the column the value is stored in)
STORED: list[tuple[type[BaseModel], str, str]] = [
    (FeedbackCoding, "code", "override_reason_code"),
    (FeedbackCoding, "system", "override_reason_system"),
    (FeedbackItem, "card", "card_uuid"),
]


def _max_length(model: type[BaseModel], field: str) -> int | None:
    for item in model.model_fields[field].metadata:
        if hasattr(item, "max_length"):
            return int(item.max_length)
    return None


def _column_length(column: str) -> int:
    kind = FeedbackRow.__table__.c[column].type
    assert isinstance(kind, String)
    assert kind.length is not None
    return int(kind.length)


@pytest.mark.parametrize(("model", "field", "column"), STORED)
def test_every_stored_request_string_is_bounded_at_its_columns_length(
    model: type[BaseModel], field: str, column: str
) -> None:
    bound = _max_length(model, field)
    assert bound is not None
    assert bound <= _column_length(column)


def test_accepted_suggestion_ids_are_bounded() -> None:
    assert _max_length(AcceptedSuggestion, "id") is not None


def _feedback(code: str = "already-addressed", system: str = "http://example.org/reasons") -> dict[str, Any]:
    body = copy.deepcopy(sample("feedback.json"))
    body["feedback"][0]["card"] = "00000000-0000-4000-8000-000000000001"
    body["feedback"][0]["overrideReason"]["reason"] = {"code": code, "system": system}
    return body


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    settings: dict[str, Any] = {}
    if request.param == "postgresql":
        settings["database_url"] = request.getfixturevalue("pg_url")
    with client_for(make_app(tmp_path, **settings)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("field", "column"), [("code", "override_reason_code"), ("system", "override_reason_system")]
)
def test_a_reason_one_character_longer_than_its_column_is_a_400_and_at_the_limit_is_stored(
    client: TestClient, field: str, column: str
) -> None:
    limit = _column_length(column)
    too_long = client.post(FEEDBACK, json=_feedback(**{field: "x" * (limit + 1)}))
    assert too_long.status_code == 400
    assert field in str(too_long.json()["issue"][0]["expression"])
    at_limit = client.post(FEEDBACK, json=_feedback(**{field: "y" * limit}))
    assert at_limit.status_code == 200
    assert at_limit.json()["stored"] == 1


def test_a_megabyte_reason_code_is_refused_not_stored(client: TestClient) -> None:
    assert client.post(FEEDBACK, json=_feedback(code="z" * 1_000_000)).status_code in (400, 413)
