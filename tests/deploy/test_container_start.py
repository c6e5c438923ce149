"""The shipped container stack starts: the image's Python environment, the compose service's command and
environment, real PostgreSQL and Redis, and `/readyz` answers 200.

No Docker engine runs here, so the test rebuilds what the image holds from the Dockerfile itself: the
files its build stage COPYs go into a build folder, a fresh venv gets exactly the Dockerfile's `pip wheel`
command run as `pip install` (same constraints, same extras), and the compose service's `command` runs
from that venv with the Dockerfile's ENV under the compose `environment`. Only what cannot be the same
outside Docker is replaced: compose's service host names (`postgres`, `redis`) by the test servers, the
`.env` secrets compose interpolates by generated ones, 0.0.0.0 by 127.0.0.1 and the port by a free one.
A Dockerfile that leaves out an extra compose configures (the `redis` of issue 17) fails here.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from testing.service_process import free_port, start_group, stop_group

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
K8S_SECRET = ROOT / "deploy" / "kubernetes" / "secret.example.yaml"

pytestmark = pytest.mark.integration


def dockerfile_instructions() -> list[tuple[str, str, str]]:
    """(stage, instruction, arguments) of every instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found: list[tuple[str, str, str]] = []
    stage = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stage = arguments.split()[-1]
        found.append((stage, instruction.upper(), arguments.strip()))
    return found


def pip_wheel_command() -> list[str]:
    """The `pip wheel …` command of the build stage's RUN, as argv."""
    for _, instruction, arguments in dockerfile_instructions():
        if instruction == "RUN":
            for part in arguments.split("&&"):
                argv = shlex.split(part)
                if argv[:2] == ["pip", "wheel"]:
                    return argv
    raise AssertionError("the Dockerfile runs no `pip wheel`")


def as_pip_install(wheel_argv: list[str]) -> list[str]:
    """`pip wheel [--wheel-dir D] [--no-cache-dir] ARGS` → `pip install ARGS` (the image installs the
    wheels it built; installing from the same sources with the same constraints gives the same set)."""
    argv = wheel_argv[2:]
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--wheel-dir", "-w"):
            skip = True
            continue
        if arg.startswith("--wheel-dir=") or arg == "--no-cache-dir":
            continue
        kept.append(arg)
    return ["install", "--quiet", *kept]


def build_context(target: Path) -> None:
    """What the build stage COPYs from the repository into its WORKDIR (/src)."""
    for stage, instruction, arguments in dockerfile_instructions():
        if stage == "build" and instruction == "COPY" and not arguments.startswith("--from"):
            *sources, destination = arguments.split()
            for source in sources:  # Docker: a folder's contents go into the destination
                origin = ROOT / source
                if origin.is_dir():
                    shutil.copytree(
                        origin, target / destination, ignore=shutil.ignore_patterns("__pycache__")
                    )
                elif destination.endswith("/") or len(sources) > 1:
                    (target / destination).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / destination / origin.name)
                else:
                    shutil.copy2(origin, target / destination)


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for stage, instruction, arguments in dockerfile_instructions():
        if stage == "runtime" and instruction == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:?message}` and `${NAME:-default}`."""

    def one(match: re.Match[str]) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3) or ""
        if variables.get(name):
            return variables[name]
        if operator == ":-":
            return rest
        raise AssertionError(f"compose needs {name}: {rest}")

    return re.sub(r"\$\{(\w+)(?:(:\?|:-)([^}]*))?\}", one, value)


def compose_service() -> dict[str, Any]:
    service: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["vertebral-cds"]
    return service


def generated_dotenv() -> dict[str, str]:
    """The `.env` an operator writes (docs/operations.md): one random value per variable compose asks for."""
    names = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text(encoding="utf-8")))
    return {name: secrets.token_hex(32) for name in names}


def test_the_image_installs_every_extra_that_compose_and_kubernetes_configure() -> None:
    spec = next(arg for arg in pip_wheel_command() if arg.startswith((".[", "'.[", '".[')))
    extras = set(spec.strip("'\"")[2:-1].split(","))
    environment = compose_service()["environment"]
    k8s = K8S_SECRET.read_text(encoding="utf-8")
    assert "VCDS_REDIS_URL" in environment
    assert "redis-url" in k8s
    assert {"postgres", "redis"} <= extras


def test_the_healthchecks_follow_the_configured_port() -> None:
    healthchecks = [
        arguments for _, instruction, arguments in dockerfile_instructions() if instruction == "HEALTHCHECK"
    ]
    assert len(healthchecks) == 1
    assert "VCDS_PORT" in healthchecks[0]
    assert ":8080/" not in healthchecks[0]
    compose_check = " ".join(compose_service()["healthcheck"]["test"])
    assert "VCDS_PORT" in compose_check
    assert ":8080/" not in compose_check


def test_the_data_directory_is_a_volume() -> None:
    volumes = [
        arguments for _, instruction, arguments in dockerfile_instructions() if instruction == "VOLUME"
    ]
    database = dockerfile_env()["VCDS_DATABASE_URL"]
    assert any(volume in database for volume in volumes), (volumes, database)


def test_the_compose_service_starts_from_the_image_environment_against_postgres_and_redis(
    tmp_path: Path, pg_url: str, redis_url: str
) -> None:
    context = tmp_path / "src"
    context.mkdir()
    build_context(context)
    venv = tmp_path / "image-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", *as_pip_install(pip_wheel_command())],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]

    service = compose_service()
    dotenv = generated_dotenv()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCDS_", "PROMETHEUS_"))}
    env.update(dockerfile_env())
    env.update({name: interpolate(str(value), dotenv) for name, value in service["environment"].items()})
    port = free_port()
    env.update(
        VCDS_HOST="127.0.0.1",
        VCDS_PORT=str(port),
        VCDS_DATABASE_URL=pg_url,  # compose: postgresql+psycopg://vcds:…@postgres:5432/vcds
        VCDS_REDIS_URL=redis_url,  # compose: redis://redis:6379/0
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),  # compose: a tmpfs
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    )
    (tmp_path / "metrics").mkdir()
    assert service["command"][0] == "vertebral-cds"
    command = [str(venv / "bin" / service["command"][0]), *service["command"][1:]]
    workdir = tmp_path / "var-lib-vertebral-cds"
    workdir.mkdir()
    with (tmp_path / "service.log").open("wb") as log:
        process = start_group(command, env, log, lifetime_seconds=300, cwd=workdir)
        try:
            deadline = time.monotonic() + 90
            status = None
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    status = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code
                except httpx.HTTPError:
                    status = None
                if status == 200:
                    break
                time.sleep(0.3)
            output = (tmp_path / "service.log").read_text(errors="replace")
            assert status == 200, f"exit={process.poll()} status={status}\n{output[-3000:]}"
        finally:
            stop_group(process)
