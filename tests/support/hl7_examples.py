"""The HL7 FHIR R4 examples (npm package hl7.fhir.r4.examples@4.0.1), fetched once into a cache."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "hl7.fhir.r4.examples@4.0.1"


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "vertebral-cds" / "hl7.fhir.r4.examples-4.0.1"
    return Path(os.environ.get("VCDS_HL7_EXAMPLES_DIR", default))


def ensure_examples() -> Path:
    """The folder of example JSON files; downloads with `npm pack` the first time (raises on failure)."""
    target = cache_dir()
    marker = target / ".complete"
    if marker.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / ".hl7-examples.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return target
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is not installed: cannot fetch " + PACKAGE)
        with tempfile.TemporaryDirectory() as work:
            subprocess.run(
                [npm, "pack", PACKAGE, "--silent"], cwd=work, check=True, capture_output=True, timeout=300
            )
            archive = next(Path(work).glob("*.tgz"))
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            with tarfile.open(archive) as tar:
                members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith(".json")]
                tar.extractall(target, members=members, filter="data")
        marker.touch()
    return target
