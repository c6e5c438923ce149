"""/metrics counts what operators watch; /healthz says alive; /readyz says ready, unless the DB is down."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.metrics import MetricWrapperBase
from sqlalchemy import create_engine

from cds_service.web import metrics as service_metrics
from tests.support.app import client_for, make_app, sample

SELECT = "/cds-services/vertebral-augmentation-select"


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = ",".join(sorted(p for p in (match.group(2) or "").split(",") if p))
        if found == wanted:
            return float(match.group(3))
    return 0.0


def test_metrics_count_hook_latency_cards_prefetch_feedback_and_thresholds_version(
    client: TestClient,
) -> None:
    before = client.get("/metrics").text
    response = client.post(SELECT, json=sample("order-select.json"))
    assert response.status_code == 200
    card = next(c for c in response.json()["cards"] if c["source"]["topic"]["code"] == "copd-multilevel")
    feedback = {
        "feedback": [
            {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-21T10:00:00Z"}
        ]
    }
    assert client.post(f"{SELECT}/feedback", json=feedback).status_code == 200
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def delta(name: str, **labels: str) -> float:
        return metric(text, name, **labels) - metric(before, name, **labels)

    service = {"service": "vertebral-augmentation-select"}
    assert delta("vcds_hook_latency_seconds_count", **service) == 1
    assert delta("vcds_hook_responses_total", status="200", **service) == 1
    assert delta("vcds_cards_total", rule="copd-multilevel", indicator="warning") == 1
    assert delta("vcds_cards_total", rule="anticoagulant-active", indicator="warning") == 1
    assert delta("vcds_prefetch_keys_total", outcome="hit") == 9
    assert delta("vcds_feedback_total", rule="copd-multilevel", outcome="overridden") == 1
    assert metric(text, "vcds_thresholds_version") == 1


def test_errors_are_counted_by_status_and_unknown_services_do_not_create_labels(client: TestClient) -> None:
    before = client.get("/metrics").text
    assert client.post(SELECT, json={"hook": "order-select"}).status_code == 400
    assert client.post("/cds-services/scanner-probe-123", json={}).status_code == 404
    text = client.get("/metrics").text
    service = {"service": "vertebral-augmentation-select"}
    assert (
        metric(text, "vcds_hook_responses_total", status="400", **service)
        - metric(before, "vcds_hook_responses_total", status="400", **service)
        == 1
    )
    assert "scanner-probe-123" not in text


def test_fetch_failures_are_counted_by_prefetch_key(client: TestClient) -> None:
    body = sample("order-select.json")
    del body["prefetch"]["allergies"]
    body["fhirServer"] = "http://127.0.0.1:9/fhir"  # discard port: refused at once
    before = client.get("/metrics").text
    assert client.post(SELECT, json=body).status_code == 200
    text = client.get("/metrics").text
    assert (
        metric(text, "vcds_fhir_fetch_errors_total", key="allergies")
        - metric(before, "vcds_fhir_fetch_errors_total", key="allergies")
        == 1
    )
    assert metric(text, "vcds_fhir_fetch_seconds_count", key="allergies") > metric(
        before, "vcds_fhir_fetch_seconds_count", key="allergies"
    )


def test_metrics_hold_no_patient_identifier(client: TestClient) -> None:
    client.post(SELECT, json=sample("order-select.json"))
    assert "sample-patient-1" not in client.get("/metrics").text


def test_healthz_says_alive(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_says_ready_with_the_thresholds_version(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "thresholdsVersion": 1}


def test_readyz_fails_when_the_database_is_down(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with client_for(app) as client:
        assert client.get("/readyz").status_code == 200
        app.state.database.engine = create_engine(
            "postgresql+psycopg://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 2}
        )  # a real engine whose server is not there
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["resourceType"] == "OperationOutcome"
        assert "database unreachable" in response.json()["issue"][0]["diagnostics"]
        assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_every_metric_is_in_the_readme_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Health and metrics", 1)[1].split("\n### ", 1)[0]
    names = [
        str(m._name)  # the metric's exposed name (without _total), as the README lists it
        for m in vars(service_metrics).values()
        if isinstance(m, MetricWrapperBase)
    ]
    assert len(names) >= 12
    for name in names:
        assert f"`{name}" in table, f"{name} is missing from the README's metrics table"
