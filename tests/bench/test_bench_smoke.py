"""`python -m bench --quick` runs end to end and prints every row of its table (speed is not asserted here:
the figures are for the README, see "Performance")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import ROW_LABELS

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration  # starts the service (and a FHIR server) on 127.0.0.1


def test_the_quick_benchmark_prints_every_row_and_target(tmp_path: Path) -> None:
    figures = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--generated", "--workers", "2", "--json", str(figures)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    for label in ROW_LABELS:
        assert any(row.startswith(f"| {label}") for row in rows), f"no row {label!r} in:\n{done.stdout}"
    assert "| Observations | record | in-process | per Observation |" in done.stdout

    data = json.loads(figures.read_text(encoding="utf-8"))
    assert len(data["targets"]) == 13
    measured = {t["target"]: t["measured"] for t in data["targets"]}
    assert measured["in-process cost, 869-Observation record ÷ json.loads"] > 0
    assert measured["peak RSS of a worker, MB"] > 0
    assert set(data["http"]) == {"1", "8", "32"}
    assert set(data["http_order_edited"]) == set(data["http_first_call"]) == {"8"}
    for runs in (data["http"], data["http_order_edited"], data["http_first_call"]):
        assert all(row["hook_rps"] > 0 and row["bare_rps"] > 0 for row in runs.values())
    assert all(f["hook_ms"] > 0 and f["again_ms"] > 0 for f in data["fallback"])
    assert data["fallback"][0]["server"].startswith("SEKMET")
    assert data["fallback"][0]["server_cpu_ms"] > 0  # SEKMET's own CPU for a round of the queries
    assert data["fallback"][1]["server_cpu_ms"] is None  # the stand-in only sleeps
    for figure in data["fallback"]:  # the floor of the target: the plain thread pool's round ÷ the slowest
        assert figure["floor_ratio"] == figure["at_once_ms"] / max(figure["queries"].values())
