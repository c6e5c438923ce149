"""The Kubernetes manifests and the compose file match what the app really serves and reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from cds_service.cli.command import build_parser
from cds_service.settings import Settings
from tests.support.app import client_for, make_app

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
SETTING_VARIABLES = {f"VCDS_{name.upper()}" for name in Settings.model_fields}


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def manifests() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in load(path):
            found[doc["kind"]] = doc
    return found


def container() -> dict[str, Any]:
    spec = manifests()["Deployment"]["spec"]["template"]["spec"]
    (only,) = spec["containers"]
    return only


def compose_service() -> dict[str, Any]:
    return load(ROOT / "docker-compose.yml")[0]["services"]["vertebral-cds"]


def k8s_env() -> dict[str, str | None]:
    return {item["name"]: item.get("value") for item in container()["env"]}


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return client_for(make_app(tmp_path))


def test_every_kind_the_issue_asks_for_is_there() -> None:
    assert set(manifests()) >= {"Deployment", "Service", "HorizontalPodAutoscaler", "Secret"}


@pytest.mark.parametrize("source", ["kubernetes", "compose"])
def test_every_vcds_variable_is_a_real_setting(source: str) -> None:
    names = k8s_env() if source == "kubernetes" else compose_service()["environment"]
    vcds = {n for n in names if n.startswith("VCDS_")}
    assert vcds, "no VCDS_ variables found"
    assert vcds <= SETTING_VARIABLES, sorted(vcds - SETTING_VARIABLES)


@pytest.mark.parametrize("source", ["kubernetes", "compose"])
def test_the_environment_is_a_valid_production_configuration(source: str) -> None:
    names = k8s_env() if source == "kubernetes" else compose_service()["environment"]
    values = {
        name.removeprefix("VCDS_").lower(): (value if value is not None else f"secret-{name.lower()}")
        for name, value in names.items()
        if name.startswith("VCDS_")
    }
    values["database_url"] = "sqlite:///:memory:"  # the real one is a secret; its shape is not tested here
    env = {f"VCDS_{k.upper()}": v for k, v in values.items()}
    monkeypatch = pytest.MonkeyPatch()
    try:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings()
    finally:
        monkeypatch.undo()
    assert settings.profile == "production"
    assert settings.port == 8080


def test_probes_point_at_endpoints_the_app_serves(client: TestClient) -> None:
    spec = container()
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        path = spec[probe]["httpGet"]["path"]
        assert client.get(path).status_code == 200, path
        assert spec[probe]["httpGet"]["port"] == "http"
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_the_scrape_annotation_points_at_the_metrics_endpoint(client: TestClient) -> None:
    annotations = manifests()["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    response = client.get(annotations["prometheus.io/path"])
    assert response.status_code == 200
    assert "vcds_hook_latency_seconds" in response.text
    assert annotations["prometheus.io/port"] == str(container()["ports"][0]["containerPort"])


def test_ports_agree_across_container_service_compose_and_dockerfile() -> None:
    port = container()["ports"][0]["containerPort"]
    assert port == int(k8s_env()["VCDS_PORT"] or 0) == 8080
    service = manifests()["Service"]["spec"]["ports"][0]
    assert service["targetPort"] == container()["ports"][0]["name"]
    assert compose_service()["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert f"EXPOSE {port}" in (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_the_container_command_is_one_the_cli_accepts() -> None:
    # Kubernetes: one worker per pod, the replicas scale; compose on one machine: gunicorn's two workers.
    for args, workers in ((container()["args"], 1), (compose_service()["command"], 2)):
        assert args[0] == "vertebral-cds"
        parsed = build_parser().parse_args(args[1:])
        assert parsed.command == "serve"
        assert parsed.workers == workers


def test_secrets_come_from_the_secret_the_example_defines() -> None:
    secret_keys = set(manifests()["Secret"]["stringData"])
    references = [item["valueFrom"]["secretKeyRef"] for item in container()["env"] if "valueFrom" in item]
    assert {"VCDS_DATABASE_URL", "VCDS_PATIENT_HASH_KEY", "VCDS_ADMIN_TOKEN"} <= {
        item["name"] for item in container()["env"] if "valueFrom" in item
    }
    for reference in references:
        assert reference["name"] == manifests()["Secret"]["metadata"]["name"]
        assert reference["key"] in secret_keys


def test_the_autoscaler_targets_the_deployment() -> None:
    target = manifests()["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", manifests()["Deployment"]["metadata"]["name"])


def test_the_multiprocess_metrics_directory_is_a_mounted_volume() -> None:
    mount_paths = {m["mountPath"] for m in container()["volumeMounts"]}
    assert k8s_env()["PROMETHEUS_MULTIPROC_DIR"] in mount_paths
    assert compose_service()["environment"]["PROMETHEUS_MULTIPROC_DIR"] in compose_service()["tmpfs"]


def test_nothing_in_the_manifests_looks_like_a_real_secret() -> None:
    text = (KUBERNETES / "secret.example.yaml").read_text(encoding="utf-8")
    for value in manifests()["Secret"]["stringData"].values():
        assert "CHANGE-ME" in value
    assert not re.search(r"password\s*[:=]\s*(?!CHANGE-ME)\S{8,}", text, re.IGNORECASE)
