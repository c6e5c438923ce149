"""What could not be read, and data of another patient, reach the evaluation record and the log as counts
by kind: never an id, a reference or a value."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cds_service.storage.tables import EvaluationRow
from tests.scenarios.test_clinical_scenarios import SERVICE_PATHS, hook_request, scenario
from tests.support.app import client_for, make_app


@pytest.mark.parametrize(
    ("name", "unreadable", "other_patient", "never_stored"),
    [
        ("unreadable-medication-local-code-only", {"medication": 1}, 0, ("MedicationRequest/m1", "114350")),
        ("unreadable-condition-no-code-no-text", {"condition": 1}, 0, ("Condition/c1",)),
        ("labs-newest-inr-unreadable-no-fallback", {"lab": 1}, 0, ("Observation/inr2", "hemolyzed")),
        ("patient-other-patient-condition-ignored", {}, 1, ("pat-9", "Condition/c1", "A41.9")),
        ("patient-other-patient-anticoagulant-ignored", {}, 1, ("6f1a2b7e", "MedicationRequest/m1")),
    ],
)
def test_counts_by_kind_are_stored_and_logged_without_ids(
    name: str,
    unreadable: dict[str, int],
    other_patient: int,
    never_stored: tuple[str, ...],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks_log = logging.getLogger("vertebral_cds.hooks")
    hooks_log.addHandler(caplog.handler)  # the service's loggers may not propagate to the root
    app = make_app(tmp_path, fixed_ids=True)
    s = scenario(name)
    try:
        with caplog.at_level(logging.INFO), client_for(app) as client:
            assert client.post(SERVICE_PATHS[s.hook], json=hook_request(s)).status_code == 200
            app.state.flow.flush_records()  # the row is written by the writer thread, just after the call
            with app.state.database.engine.connect() as connection:
                rows: list[Any] = connection.execute(select(EvaluationRow)).all()
    finally:
        hooks_log.removeHandler(caplog.handler)
    assert len(rows) == 1
    data = rows[0].data
    assert data["unreadable"] == unreadable
    assert data["other_patient"] == other_patient
    hook_lines = [r for r in caplog.records if r.getMessage() == "hook evaluated"]
    assert len(hook_lines) == 1
    assert getattr(hook_lines[0], "other_patient", None) == (other_patient or None)
    assert getattr(hook_lines[0], "unreadable", None) == (unreadable or None)
    stored = json.dumps([str(value) for value in rows[0]])
    logged = " ".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    for secret in never_stored:
        assert secret not in stored, secret
        assert secret not in logged, secret
