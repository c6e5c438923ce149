"""Feedback analytics per rule over a period, on a seeded store, with exact counts; CSV export; the page."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cds_service.storage.tables import CardRow, EvaluationRow, FeedbackRow
from tests.admin.conftest import EDITOR, VIEWER, make_admin_app
from tests.admin.test_admin_pages import logged_in
from tests.support.app import client_for, sample

OVERRIDE = "http://vertebral-cds.org/fhir/CodeSystem/override-reason"
# (evaluation day, [(card uuid, rule, indicator, feedback outcome or None, reason code or None)])
SEED = [
    (
        "2026-11-02",
        [("c1", "copd-multilevel", "warning", "accepted", None), ("c2", "eligibility", "info", None, None)],
    ),
    (
        "2026-11-05",
        [
            ("c3", "copd-multilevel", "warning", "overridden", "benefit-outweighs-risk"),
            ("c4", "anticoagulant-active", "warning", "overridden", "already-addressed"),
            ("c5", "eligibility", "warning", "overridden", None),
        ],
    ),
    (
        "2026-11-10",
        [
            ("c6", "copd-multilevel", "warning", "overridden", "benefit-outweighs-risk"),
            ("c7", "spinal-infection", "critical", "accepted", None),
        ],
    ),
    ("2026-10-20", [("c8", "copd-multilevel", "warning", "accepted", None)]),  # before the period
]


def seed(app: FastAPI) -> None:
    with app.state.database.session() as session:
        for index, (day, cards) in enumerate(SEED):
            created = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)
            evaluation_id = f"00000000-0000-4000-8000-{index:012d}"
            session.add(
                EvaluationRow(
                    id=evaluation_id,
                    created_at=created,
                    service_id="vertebral-augmentation-select",
                    hook="order-select",
                    hook_instance=f"h{index}",
                    patient_hash="x" * 64,
                    thresholds_version=1,
                    procedure="kyphoplasty",
                    level_count=3,
                    rules_run=[],
                    outcomes=[],
                    data={},
                    timings_ms={},
                )
            )
            session.flush()
            for card, rule, indicator, outcome, reason in cards:
                session.add(
                    CardRow(
                        uuid=card,
                        evaluation_id=evaluation_id,
                        rule=rule,
                        indicator=indicator,
                        suggestion_uuids=[],
                    )
                )
                if outcome is None:
                    continue
                session.add(
                    FeedbackRow(
                        dedupe_key=f"k-{card}",
                        received_at=created,
                        service_id="vertebral-augmentation-select",
                        card_uuid=card,
                        evaluation_id=evaluation_id,
                        rule=rule,
                        outcome=outcome,
                        accepted_suggestions=["s"] if outcome == "accepted" else [],
                        override_reason_system=OVERRIDE if reason else None,
                        override_reason_code=reason,
                        has_user_comment=False,
                        outcome_timestamp=created,
                    )
                )


@pytest.fixture
def seeded(tmp_path: Path) -> FastAPI:
    app = make_admin_app(tmp_path)
    seed(app)
    return app


def test_analytics_counts_firing_acceptance_and_override_reasons_per_rule(seeded: FastAPI) -> None:
    with client_for(seeded) as api:
        body = api.get("/admin/api/analytics?from=2026-11-01&to=2026-11-30", headers=VIEWER).json()
    rules = {row["rule"]: row for row in body["rules"]}
    assert body["from"] == "2026-11-01"
    assert body["to"] == "2026-11-30"
    assert [row["rule"] for row in body["rules"]] == [
        "copd-multilevel",
        "eligibility",
        "anticoagulant-active",
        "spinal-infection",
    ]
    assert rules["copd-multilevel"] == {
        "rule": "copd-multilevel",
        "fired": 3,
        "byIndicator": {"warning": 3},
        "cardsWithFeedback": 3,
        "accepted": 1,
        "overridden": 2,
        "acceptanceRate": pytest.approx(1 / 3),
        "overrideReasons": {"benefit-outweighs-risk": 2},
    }
    assert rules["eligibility"]["fired"] == 2
    assert rules["eligibility"]["byIndicator"] == {"info": 1, "warning": 1}
    assert rules["eligibility"]["overrideReasons"] == {"(no reason given)": 1}
    assert rules["anticoagulant-active"]["overrideReasons"] == {"already-addressed": 1}
    assert rules["spinal-infection"]["acceptanceRate"] == 1.0


def test_the_period_limits_what_counts(seeded: FastAPI) -> None:
    with client_for(seeded) as api:
        narrow = api.get("/admin/api/analytics?from=2026-11-05&to=2026-11-05", headers=VIEWER).json()
        october = api.get("/admin/api/analytics?from=2026-10-01&to=2026-10-31", headers=VIEWER).json()
        empty = api.get("/admin/api/analytics?from=2026-01-01&to=2026-01-31", headers=VIEWER).json()
    assert {r["rule"]: r["fired"] for r in narrow["rules"]} == {
        "anticoagulant-active": 1,
        "copd-multilevel": 1,
        "eligibility": 1,
    }
    assert october["rules"] == [
        {
            "rule": "copd-multilevel",
            "fired": 1,
            "byIndicator": {"warning": 1},
            "cardsWithFeedback": 1,
            "accepted": 1,
            "overridden": 0,
            "acceptanceRate": 1.0,
            "overrideReasons": {},
        }
    ]
    assert empty["rules"] == []


def test_the_csv_export_has_one_row_per_rule_with_the_same_counts(seeded: FastAPI) -> None:
    with client_for(seeded) as api:
        response = api.get("/admin/api/analytics.csv?from=2026-11-01&to=2026-11-30", headers=EDITOR)
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    copd = next(r for r in rows if r["rule"] == "copd-multilevel")
    assert copd == {
        "rule": "copd-multilevel",
        "fired": "3",
        "critical": "0",
        "warning": "3",
        "info": "0",
        "cards_with_feedback": "3",
        "accepted": "1",
        "overridden": "2",
        "acceptance_rate": "0.333",
        "override_reasons": "benefit-outweighs-risk=2",
    }
    assert len(rows) == 4


def test_analytics_needs_an_admin_token_and_refuses_a_reversed_period(seeded: FastAPI) -> None:
    with client_for(seeded) as api:
        assert api.get("/admin/api/analytics").status_code == 401
        assert api.get("/admin/api/analytics.csv").status_code == 401
        assert (
            api.get("/admin/api/analytics?from=2026-11-30&to=2026-11-01", headers=VIEWER).status_code == 422
        )


def test_the_analytics_page_shows_the_table_and_the_csv_link(seeded: FastAPI) -> None:
    client = logged_in(seeded)
    page = client.get("/admin/analytics?from=2026-11-01&to=2026-11-30")
    assert page.status_code == 200
    html = page.text
    assert 'data-rule="copd-multilevel"' in html
    assert "benefit-outweighs-risk × 2" in html
    assert "/admin/api/analytics.csv?from=2026-11-01&amp;to=2026-11-30" in html
    assert "33 %" in html


def test_analytics_from_real_hook_calls_and_feedback(tmp_path: Path) -> None:
    app = make_admin_app(tmp_path, fixed_clock=False)
    with client_for(app) as client:
        cards = client.post(
            "/cds-services/vertebral-augmentation-select", json=sample("order-select.json")
        ).json()
        copd = next(c for c in cards["cards"] if c["source"]["topic"]["code"] == "copd-multilevel")
        client.post(
            "/cds-services/vertebral-augmentation-select/feedback",
            json={
                "feedback": [
                    {
                        "card": copd["uuid"],
                        "outcome": "accepted",
                        "acceptedSuggestions": [{"id": copd["suggestions"][0]["uuid"]}],
                        "outcomeTimestamp": "2026-11-21T10:00:00Z",
                    }
                ]
            },
        )
        rules = {r["rule"]: r for r in client.get("/admin/api/analytics", headers=VIEWER).json()["rules"]}
    assert rules["copd-multilevel"]["fired"] == 1
    assert rules["copd-multilevel"]["accepted"] == 1
    assert rules["anticoagulant-active"]["fired"] == 1
    assert isinstance(TestClient, type)
