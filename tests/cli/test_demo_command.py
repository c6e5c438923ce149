"""`vertebral-cds demo`: the service with the playground on 127.0.0.1, and where to click."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cds_service.cli.command import main
from cds_service.playground import demo
from testing.service_process import free_port

pytestmark = pytest.mark.integration
VERTEBRAL_CDS = Path(sys.executable).parent / "vertebral-cds"


def test_demo_starts_the_playground_and_says_where_to_click(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCDS_")}
    env.update(
        {
            "VCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
            "VCDS_PATIENT_HASH_KEY": "demo-command-test",
            "VCDS_PLAYGROUND_ENABLED": "false",  # the demo turns it on whatever the environment says
        }
    )
    log = tmp_path / "demo.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                "timeout",
                "--signal=TERM",
                "--kill-after=5",
                "120",
                str(VERTEBRAL_CDS),
                "demo",
                "--port",
                str(port),
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text(encoding="utf-8")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        printed = log.read_text(encoding="utf-8")
        assert f"Open the playground:  {base}/playground" in printed
        assert f"{base}/cds-services" in printed
        assert ", ".join(demo.DEMO_PATIENTS_BY_ID) in printed
        page = httpx.get(f"{base}/playground", timeout=5)
        assert page.status_code == 200
        assert "Dorothy Kaminski, 74: COPD, three levels" in page.text
        assert httpx.get(f"{base}/playground/api/patients/myeloma", timeout=5).status_code == 200
        assert httpx.get(f"{base}/cds-services", timeout=5).status_code == 200
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


def test_demo_refuses_the_production_profile(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCDS_PROFILE", "production")
    monkeypatch.setenv("VCDS_PLAYGROUND_ENABLED", "false")  # recorded, so the demo's `true` is undone after
    assert main(["demo", "--port", "1"]) == 2
    assert "vertebral-cds demo: " in capsys.readouterr().err
