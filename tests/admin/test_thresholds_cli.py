"""`vertebral-cds thresholds validate|export|import` on YAML files and the service's database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from cds_service.admin.thresholds_store import ThresholdsStore
from cds_service.cli.command import main
from cds_service.settings import SettingsError, load_settings
from cds_service.storage.database import Database
from rules.thresholds import DEFAULT_THRESHOLDS


@pytest.fixture(autouse=True)
def private_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if not k.startswith("VCDS_")})
    monkeypatch.setenv("VCDS_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")


def stored(tmp_path: Path) -> ThresholdsStore:
    return ThresholdsStore(Database(f"sqlite:///{tmp_path / 'cli.sqlite3'}"))


def test_validate_accepts_a_good_file_and_names_each_bad_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("max_levels_severe_lung: 1\n", encoding="utf-8")
    assert main(["thresholds", "validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_levels_per_session: 0\nhold_intervals:\n  warfarin_hold_days: -2\n", encoding="utf-8")
    assert main(["thresholds", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "max_levels_per_session: must be at least 1 levels" in err
    assert "hold_intervals.warfarin_hold_days: must be at least 0 days" in err


def test_export_of_the_defaults_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "defaults.yaml"
    assert main(["thresholds", "export", "--defaults", "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("# vertebral-cds thresholds")
    assert yaml.safe_load(out.read_text(encoding="utf-8")) == DEFAULT_THRESHOLDS.model_dump(mode="json")
    assert main(["thresholds", "validate", str(out)]) == 0


def test_import_makes_a_new_audited_version_and_export_reads_it_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = tmp_path / "current.yaml"
    assert main(["thresholds", "export", "-o", str(exported)]) == 0
    values = yaml.safe_load(exported.read_text(encoding="utf-8"))
    values["max_levels_severe_lung"] = 3
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(values), encoding="utf-8")
    assert main(["thresholds", "import", str(edited), "--reason", "site protocol", "--author", "ops"]) == 0
    assert "saved as version 2" in capsys.readouterr().out
    version = stored(tmp_path).current_version()
    assert (version.version, version.action, version.author, version.reason) == (
        2,
        "import",
        "ops",
        "site protocol",
    )
    assert version.thresholds.max_levels_severe_lung == 3

    again = tmp_path / "again.yaml"
    assert main(["thresholds", "export", "--version", "1", "-o", str(again)]) == 0
    assert yaml.safe_load(again.read_text(encoding="utf-8"))["max_levels_severe_lung"] == 2
    assert main(["thresholds", "import", str(edited), "--reason", "same"]) == 0
    assert "no change" in capsys.readouterr().out


def test_import_refuses_a_stale_expected_version_and_invalid_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "t.yaml"
    file.write_text("max_levels_severe_lung: 1\n", encoding="utf-8")
    assert main(["thresholds", "import", str(file), "--reason", "one"]) == 0
    file.write_text("max_levels_severe_lung: 3\n", encoding="utf-8")
    assert main(["thresholds", "import", str(file), "--reason", "two", "--expect-version", "1"]) == 3
    assert "expected version 1, current is 2" in capsys.readouterr().err
    file.write_text("inr_warning_max: 2.5\ninr_critical_max: 2.0\n", encoding="utf-8")
    assert main(["thresholds", "import", str(file), "--reason", "bad"]) == 1
    assert stored(tmp_path).current_version().version == 2


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"VCDS_ADMIN_TOKEN": "short"}, "VCDS_ADMIN_TOKEN must be at least 16 characters"),
        (
            {
                "VCDS_ADMIN_TOKEN": "same-token-for-both-roles",
                "VCDS_ADMIN_VIEWER_TOKEN": "same-token-for-both-roles",
            },
            "must differ",
        ),
        ({"VCDS_ADMIN_VIEWER_TOKEN": "viewer-only-token-0001"}, "needs VCDS_ADMIN_TOKEN"),
        (
            {"VCDS_ADMIN_TOKEN": "editor-token-000000001", "VCDS_ADMIN_SESSION_SECRET": "short"},
            "VCDS_ADMIN_SESSION_SECRET must be at least 16",
        ),
    ],
)
def test_unusable_admin_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        load_settings()
