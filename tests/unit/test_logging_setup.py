"""The JSON log formatter: one JSON object per line, named safe fields only, whatever the values."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from cds_service.web.logging_setup import JsonFormatter


def _line(**extra: object) -> dict[str, object]:
    record = logging.LogRecord("vertebral_cds.hooks", logging.INFO, __file__, 1, "hook evaluated", (), None)
    record.__dict__.update(extra)
    parsed: dict[str, object] = json.loads(JsonFormatter().format(record))
    return parsed


def test_a_line_carries_the_safe_fields_and_drops_every_other_extra() -> None:
    line = _line(service="vertebral-augmentation-select", total_ms=1.5, patient_id="Patient/123", token="x")
    assert line["message"] == "hook evaluated"
    assert line["service"] == "vertebral-augmentation-select"
    assert line["total_ms"] == 1.5
    assert "patient_id" not in line
    assert "token" not in line


def test_values_json_cannot_encode_are_written_as_text() -> None:
    assert _line(path=Path("/cds-services"))["path"] == "/cds-services"
    assert _line(rows=2**70)["rows"] == 2**70  # beyond orjson's 64-bit integers: the stdlib encoder
