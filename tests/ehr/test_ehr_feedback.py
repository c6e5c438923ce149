"""Feedback as EHRs post it (feedback/: the CDS Hooks form, Epic's `overrideReasons` list and Epic's reason
extension, each citing its sources): each is stored like `overrideReason` (code, system, display; only the
presence of a comment) and counted in the override analytics, for a card the service really issued.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from cds_service.admin.analytics import Period, rule_statistics
from cds_service.storage.tables import FeedbackRow
from tests.support.app import client_for, make_app

HERE = Path(__file__).resolve().parent
FORMS = sorted(p.stem for p in (HERE / "feedback").glob("*.json"))


def form(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((HERE / "feedback" / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def issued(tmp_path: Path) -> Iterator[tuple[FastAPI, TestClient, dict[str, str]]]:
    """The app after Epic's order-select: the cards it issued, rule → card uuid."""
    app = make_app(tmp_path)
    fixture = json.loads((HERE / "fixtures" / "epic-order-select-long-ids.json").read_text(encoding="utf-8"))
    with client_for(app) as client:
        response = client.post(f"/cds-services/{fixture['service']}", json=fixture["request"])
        assert response.status_code == 200
        cards = {c["source"]["topic"]["code"]: c["uuid"] for c in response.json()["cards"]}
        app.state.flow.flush_records()
        yield app, client, cards


def stored(app: FastAPI) -> list[FeedbackRow]:
    with app.state.database.session() as session:
        return list(session.scalars(select(FeedbackRow).order_by(FeedbackRow.id)))


@pytest.mark.parametrize("name", FORMS)
def test_feedback_form_is_stored_and_counted(
    issued: tuple[FastAPI, TestClient, dict[str, str]], name: str
) -> None:
    app, client, cards = issued
    sent = form(name)
    card = cards["level-count-not-stated"]
    response = client.post(
        "/cds-services/vertebral-augmentation-select/feedback",
        json={"feedback": [{"card": card, **sent["item"]}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 1
    (row,) = stored(app)
    expect = sent["expect"]
    assert (row.override_reason_code, row.override_reason_system, row.override_reason_display) == (
        expect["code"],
        expect["system"],
        expect["display"],
    )
    assert row.has_user_comment is expect["comment"]
    assert row.rule == "level-count-not-stated"
    today = datetime.now(UTC).date()
    statistics = {s.rule: s for s in rule_statistics(app.state.database, Period(today, today))}
    counted = statistics["level-count-not-stated"]
    assert counted.overridden == 1
    assert dict(counted.override_reasons) == {expect["code"]: 1}


@pytest.mark.parametrize("name", FORMS)
def test_feedback_form_cites_its_sources(name: str) -> None:
    sent = form(name)
    assert sent["sources"]
    assert "inferred" in sent["description"].lower()


def test_the_comment_text_is_never_stored(issued: tuple[FastAPI, TestClient, dict[str, str]]) -> None:
    app, client, cards = issued
    item = form("epic-override-reasons-plural")["item"]
    comment = item["overrideReasons"][0]["userComment"]
    client.post(
        "/cds-services/vertebral-augmentation-select/feedback",
        json={"feedback": [{"card": cards["eligibility"], **item}]},
    )
    (row,) = stored(app)
    assert comment not in json.dumps(
        {c.name: str(getattr(row, c.name)) for c in FeedbackRow.__table__.columns}
    )


def test_the_spec_form_wins_over_the_plural_one(issued: tuple[FastAPI, TestClient, dict[str, str]]) -> None:
    """Both sent: `overrideReason` (the specification's) is the reason stored; a repeat is a duplicate."""
    app, client, cards = issued
    item = {
        **form("epic-override-reasons-plural")["item"],
        "overrideReason": form("cds-hooks-override-reason")["item"]["overrideReason"],
    }
    body = {"feedback": [{"card": cards["eligibility"], **item}]}
    assert (
        client.post("/cds-services/vertebral-augmentation-select/feedback", json=body).json()["stored"] == 1
    )
    again = client.post("/cds-services/vertebral-augmentation-select/feedback", json=body).json()
    assert again["duplicates"] == 1
    (row,) = stored(app)
    assert row.override_reason_code == "already-addressed"


@pytest.mark.parametrize(
    "bad",
    [
        {"overrideReasons": "3"},
        {"overrideReasons": [{"reason": {"code": "", "system": "x"}}]},
        {"overrideReasons": [{"reason": {"code": "3"}}] * 21},
    ],
    ids=["not a list", "empty code", "more than 20 reasons"],
)
def test_malformed_plural_reasons_are_a_400(
    issued: tuple[FastAPI, TestClient, dict[str, str]], bad: dict[str, Any]
) -> None:
    _, client, cards = issued
    item = {
        "card": cards["eligibility"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-11-21T09:00:00Z",
        **bad,
    }
    response = client.post("/cds-services/vertebral-augmentation-select/feedback", json={"feedback": [item]})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
