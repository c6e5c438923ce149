"""The security tests build their settings explicitly: no VCDS_ variable of the environment (or one
another test left behind) may change what they check."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def no_vcds_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("VCDS_")]:
        monkeypatch.delenv(name)
