"""The wheel ships every tracked file of the four runtime packages and nothing else of the repository.

Built offline from a copy of the tracked files (no build isolation: setuptools and wheel come with the dev
extras), so a package-data glob that misses a file, or a folder that leaks in, fails here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("rules", "fhir_mappings", "cards", "cds_service")


def _tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    return [name for name in listed.split("\0") if name]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    source = tmp_path_factory.mktemp("source")
    for name in _tracked_files():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            ".",
        ],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if ".dist-info/" not in name}


def test_the_wheel_holds_every_tracked_file_of_the_runtime_packages(wheel_names: set[str]) -> None:
    expected = {name for name in _tracked_files() if name.split("/")[0] in RUNTIME_PACKAGES}
    assert expected - wheel_names == set()


def test_the_wheel_holds_nothing_outside_the_runtime_packages(wheel_names: set[str]) -> None:
    assert {name.split("/")[0] for name in wheel_names} == set(RUNTIME_PACKAGES)
