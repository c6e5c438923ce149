"""`vertebral-cds evaluate`: the cards for a FHIR file on disk, in-process, as a table or as JSON."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cds_service.cli.command import main
from cds_service.playground import demo

AS_OF = "2026-11-21"
VERTEBRAL_CDS = Path(sys.executable).parent / "vertebral-cds"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["evaluate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def card_rules(output: str) -> list[str]:
    response: dict[str, Any] = json.loads(output)
    return sorted(card["source"]["topic"]["code"] for card in response["cards"])


def test_the_table_shows_indicator_rule_and_summary_with_suggestions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = demo.demo_patient("copd-multilevel").path
    order = ["--procedure", "kyphoplasty", "--levels", "T11,T12,L1", "--date", "2026-12-05"]
    code, out, err = run(capsys, "--bundle", str(path), *order, "--as-of", AS_OF)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "Patient  Dorothy Kaminski (dorothy-kaminski), female, born 1952-01-23"
    assert lines[1] == "Order    Kyphoplasty T11, T12, L1 (CPT 22513), planned 2026-12-05; order-select"
    assert lines[2] == "Data     14 resources sent as prefetch"
    assert "INDICATOR  RULE            SUMMARY" in lines
    copd = next(line for line in lines if line.startswith("warning    copd-multilevel "))
    assert "Limit to 2 per session: COPD/severe lung disease with 3 levels" in copd
    assert any(line.strip() == "-> suggestion: Stage: treat 2 levels now (lung limit)" for line in lines)
    assert lines[-1] == "2 cards."
    warning_row = lines.index(copd)
    info_row = next(i for i, line in enumerate(lines) if line.startswith("info "))
    assert warning_row < info_row, "most severe first"


@pytest.mark.parametrize("patient", demo.DEMO_PATIENTS, ids=lambda p: p.id)
def test_each_demo_patient_gives_its_storys_cards_as_json(
    capsys: pytest.CaptureFixture[str], patient: demo.DemoPatient
) -> None:
    code, out, _ = run(capsys, "--demo", patient.id, "--format", "json", "--as-of", AS_OF)
    assert code == 0
    assert card_rules(out) == sorted(patient.shows)


def test_a_demo_patient_keeps_its_story_on_any_day(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--demo", "apixaban", "--format", "json", "--as-of", "2028-03-01")
    assert code == 0
    assert card_rules(out) == sorted(demo.demo_patient("apixaban").shows)


def test_an_order_given_on_the_command_line_replaces_the_storys(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "--demo", "copd-multilevel", "--levels", "T12,L1", "--format", "json", "--as-of", AS_OF
    )
    assert code == 0
    assert "copd-multilevel" not in card_rules(out)


def test_order_sign_adds_the_system_action(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--demo", "eligible-l1", "--hook", "order-sign", "--as-of", AS_OF)
    assert code == 0
    assert "systemAction: update Record the decision support result on the order" in out


def test_a_thresholds_file_changes_the_decision(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    thresholds = tmp_path / "site.yaml"
    thresholds.write_text("max_levels_severe_lung: 3\n", encoding="utf-8")
    code, out, _ = run(
        capsys,
        "--demo",
        "copd-multilevel",
        "--thresholds",
        str(thresholds),
        "--format",
        "json",
        "--as-of",
        AS_OF,
    )
    assert code == 0
    assert card_rules(out) == ["eligibility"]


def test_a_bundle_on_standard_input_is_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        sys, "stdin", io.StringIO(demo.demo_patient("myeloma").path.read_text(encoding="utf-8"))
    )
    code, out, _ = run(
        capsys, "--bundle", "-", "--procedure", "kyphoplasty", "--levels", "L1", "--as-of", AS_OF
    )
    assert code == 0
    assert "neoplastic-indication" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--bundle", "/nonexistent/patient.json", "--procedure", "kyphoplasty", "--levels", "L1"],
            "cannot read",
        ),
        (["--bundle", "{bundle}", "--levels", "L1"], "--procedure required with --bundle"),
        (["--bundle", "{bundle}", "--procedure", "kyphoplasty"], "--levels required"),
        (["--bundle", "{bundle}", "--procedure", "kyphoplasty", "--levels", "C5"], "thoracic and lumbar"),
        (["--bundle", "{bundle}", "--procedure", "kyphoplasty", "--levels", "L9"], "L9 is not a vertebra"),
        (
            ["--bundle", "{bundle}", "--procedure", "kyphoplasty", "--levels", "L1", "--date", "12/05"],
            "not a date",
        ),
        (["--bundle", "{notjson}", "--procedure", "kyphoplasty", "--levels", "L1"], "is not JSON"),
        (["--bundle", "{patient}", "--procedure", "kyphoplasty", "--levels", "L1"], "expected a FHIR Bundle"),
        (["--demo", "eligible-l1", "--thresholds", "{notyaml}"], "invalid thresholds"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    files = {
        "{bundle}": str(demo.demo_patient("eligible-l1").path),
        "{notjson}": str(tmp_path / "notjson.json"),
        "{patient}": str(tmp_path / "patient.json"),
        "{notyaml}": str(tmp_path / "thresholds.yaml"),
    }
    (tmp_path / "notjson.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "patient.json").write_text('{"resourceType": "Patient", "id": "p"}', encoding="utf-8")
    (tmp_path / "thresholds.yaml").write_text("max_levels_severe_lung: 0\n", encoding="utf-8")
    code, out, err = run(capsys, *[files.get(a, a) for a in args])
    assert code == 2
    assert out == ""
    assert err.startswith("vertebral-cds evaluate: ")
    assert message in err


def test_the_installed_command_prints_the_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(VERTEBRAL_CDS), "evaluate", "--demo", "spinal-infection", "--as-of", AS_OF],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "critical   spinal-infection" in result.stdout
    assert "Vertebroplasty L2 (CPT 22511)" in result.stdout


# --------------------------------------------------------------------------- a Synthea patient


@pytest.mark.fixtures
def test_a_synthea_transaction_bundle_is_evaluated(
    capsys: pytest.CaptureFixture[str], synthea_dir: Path
) -> None:
    path = next(synthea_dir.glob("Hallie_Hoeger_*.json"))
    order = ["--procedure", "vertebroplasty", "--levels", "L2", "--date", "2026-12-01"]
    code, out, err = run(capsys, "--bundle", str(path), *order, "--as-of", AS_OF)
    assert (code, err) == (0, "")
    assert "Patient  Hallie Hoeger" in out
    assert "not asked for:" in out
    assert "Claim" in out
    assert "warning    anticoagulant-active" in out  # the active warfarin order Synthea wrote
    assert "Hold warfarin" in out


@pytest.mark.fixtures
def test_every_synthea_patient_gives_a_well_formed_response(
    capsys: pytest.CaptureFixture[str], synthea_dir: Path
) -> None:
    for path in sorted(synthea_dir.glob("*.json")):
        order = ["--procedure", "kyphoplasty", "--levels", "T12,L1", "--hook", "order-sign"]
        code, out, err = run(capsys, "--bundle", str(path), *order, "--format", "json", "--as-of", AS_OF)
        assert (code, err) == (0, ""), path.name
        response = json.loads(out)
        assert response["cards"], path.name
        assert response["systemActions"], path.name
        for card in response["cards"]:
            assert 0 < len(card["summary"]) <= 139
            assert card["indicator"] in ("info", "warning", "critical")
