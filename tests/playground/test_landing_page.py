"""The landing page at `/` and the start-up warnings of `vertebral-cds serve`."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from testing.service_process import ServiceProcess
from tests.support.app import client_for, make_app


def _links(client: TestClient) -> set[str]:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return {part.split('"', 1)[0] for part in response.text.split('<a href="')[1:]}


def test_the_landing_page_links_to_what_this_instance_serves(client: TestClient) -> None:
    links = _links(client)
    assert {"/playground", "/admin", "/cds-services", "/docs", "/healthz", "/readyz", "/metrics"} <= links
    for link in links - {"https://cds-hooks.org/"}:
        assert client.get(link, follow_redirects=False).status_code in (200, 303), link


def test_a_switched_off_playground_is_not_linked(tmp_path: Path) -> None:
    with client_for(make_app(tmp_path, playground_enabled=False)) as client:
        assert "/playground" not in _links(client)
        assert "/cds-services" in _links(client)


def test_the_api_docs_name_only_local_assets(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "/docs/static/swagger-ui-bundle.js" in page
    assert "https://" not in page
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200


def test_serve_logs_each_start_up_warning_once(tmp_path: Path) -> None:
    env = {
        "VCDS_DATABASE_URL": f"sqlite:///{tmp_path / 'warnings.sqlite3'}",
        "VCDS_PATIENT_HASH_KEY": "start-up-warnings-test",
    }
    with ServiceProcess(env, workers=2, log_path=tmp_path / "serve.log"):
        pass
    lines = (tmp_path / "serve.log").read_text().splitlines()
    warnings = [line for line in lines if '"level":"WARNING"' in line]
    assert any("JWT NOT REQUIRED" in line for line in warnings)
    messages = [line.split('"level"', 1)[1] for line in warnings]  # the same line, whatever its time
    assert len(messages) == len(set(messages)), warnings
