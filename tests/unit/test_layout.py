"""The runtime packages stand alone: they never import the tests, the test harness or the benchmark, and
never read a path under `tests/` (what a wheel installs has no such folder)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PACKAGES = ("rules", "fhir_mappings", "cards", "cds_service")
NOT_RUNTIME = ("tests", "testing", "bench")


def _runtime_sources() -> list[Path]:
    return sorted(p for package in RUNTIME_PACKAGES for p in (REPO_ROOT / package).rglob("*.py"))


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def _path_literals(tree: ast.AST) -> list[str]:
    """String literals that name a tests folder as a path, or as one part of a joined path."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text == "tests" or text.startswith(("tests/", "./tests", "../tests")):
                found.append(text)
    return found


def test_the_runtime_packages_have_sources_to_check() -> None:
    assert len(_runtime_sources()) > 50


@pytest.mark.parametrize("path", _runtime_sources(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_a_runtime_module_imports_no_test_code_and_names_no_tests_path(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert _imported_roots(tree).isdisjoint(NOT_RUNTIME)
    assert _path_literals(tree) == []


def test_importing_every_runtime_module_loads_no_test_code() -> None:
    modules = [
        ".".join(p.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in _runtime_sources()
        if "migrations" not in p.parts
    ]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {NOT_RUNTIME!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd="/", check=True
    )
    assert done.stdout.strip() == "[]"
