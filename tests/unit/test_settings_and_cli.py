"""Settings come from VCDS_ variables or a YAML file and are refused with a clear message when unsafe."""

from __future__ import annotations

import json
import os
import shutil
from importlib import import_module
from pathlib import Path

import pytest
from gunicorn.workers.base import Worker

import fhir_mappings
from cds_service.app import create_app
from cds_service.cli.command import main
from cds_service.cli.serve import gunicorn_options
from cds_service.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def private_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`serve` writes VCDS_ variables for its workers; keep them out of other tests."""
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if not k.startswith("VCDS_")})


def test_environment_variables_with_the_vcds_prefix_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCDS_PORT", "9123")
    monkeypatch.setenv("VCDS_ALLOWED_FHIR_SERVERS", '["https://fhir.example.org/r4"]')
    settings = load_settings()
    assert settings.port == 9123
    assert settings.allowed_fhir_servers == ["https://fhir.example.org/r4"]


def test_a_settings_file_fills_what_the_environment_leaves_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "settings.yaml"
    file.write_text("port: 9000\nfetch_deadline_seconds: 3\n", encoding="utf-8")
    monkeypatch.setenv("VCDS_PORT", "9500")
    settings = load_settings(str(file))
    assert settings.port == 9500
    assert settings.fetch_deadline_seconds == 3


def test_invalid_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCDS_PORT", "not-a-port")
    with pytest.raises(SettingsError, match="VCDS_PORT"):
        load_settings()


def test_production_refuses_to_start_without_its_required_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCDS_PROFILE", "production")
    with pytest.raises(
        SettingsError, match=r"VCDS_PUBLIC_BASE_URL.*VCDS_PATIENT_HASH_KEY.*VCDS_ALLOWED_FHIR_SERVERS"
    ):
        load_settings()


def test_an_unreadable_settings_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read settings file"):
        load_settings(str(tmp_path / "missing.yaml"))


def test_serve_reports_bad_settings_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VCDS_PROFILE", "production")
    assert main(["serve", "--port", "9999"]) == 2
    assert "production profile requires" in capsys.readouterr().err


def test_serve_refuses_a_public_bind_in_the_dev_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VCDS_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert main(["serve", "--host", "0.0.0.0", "--port", "9999"]) == 2
    assert "binds 127.0.0.1 only" in capsys.readouterr().err


def test_serve_reports_an_invalid_thresholds_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VCDS_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    thresholds = tmp_path / "t.yaml"
    thresholds.write_text("inr_warning_max: 2.5\ninr_critical_max: 2.0\n", encoding="utf-8")
    assert main(["serve", "--thresholds", str(thresholds)]) == 2
    assert "inr_critical_max must be at least inr_warning_max" in capsys.readouterr().err


def test_serve_stops_on_a_malformed_code_set_and_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = Path(fhir_mappings.__file__).parent / "codesets"
    site = tmp_path / "codesets"
    shutil.copytree(shipped, site)
    conditions = json.loads((site / "conditions.json").read_text(encoding="utf-8"))
    del conditions["entries"][3]["source"]
    (site / "conditions.json").write_text(json.dumps(conditions), encoding="utf-8")
    monkeypatch.setenv("VCDS_DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    monkeypatch.setenv("VCDS_CODESETS_DIR", str(site))
    assert main(["serve", "--port", "9999"]) == 2
    error = capsys.readouterr().err
    assert "conditions.json" in error
    assert "source" in error


def test_a_site_copy_of_valid_code_sets_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = Path(fhir_mappings.__file__).parent / "codesets"
    site = tmp_path / "codesets"
    shutil.copytree(shipped, site)
    settings = load_settings(codesets_dir=str(site), database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert create_app(settings).state.codesets.condition_groups(
        "http://hl7.org/fhir/sid/icd-10-cm", "J44.9"
    ) == {"copd"}


def test_every_setting_is_documented_in_the_readme_configuration_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for name, field in Settings.model_fields.items():
        variable = f"VCDS_{name.upper()}"
        assert f"`{variable}`" in table, f"{variable} is missing from the README's configuration table"
        assert field.description, f"{variable} has no description"


def test_several_workers_run_under_gunicorn_with_a_socket_each() -> None:
    settings = Settings(trusted_proxies=["10.0.0.0/8"], tls_certfile="cert.pem", tls_keyfile="key.pem")
    options = gunicorn_options(settings, "::1", 8443, 3)
    assert options["bind"] == "[::1]:8443"
    assert options["workers"] == 3
    assert options["reuse_port"] is True
    assert options["forwarded_allow_ips"] == "10.0.0.0/8"
    assert (options["certfile"], options["keyfile"]) == ("cert.pem", "key.pem")
    module, _, name = options["worker_class"].rpartition(".")
    assert issubclass(getattr(import_module(module), name), Worker)  # what gunicorn will load
    assert "forwarded_allow_ips" not in gunicorn_options(Settings(), "127.0.0.1", 8080, 2)
