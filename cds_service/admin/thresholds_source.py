"""Where version 1 of the thresholds comes from: the defaults, or a YAML file (`serve --thresholds FILE`).

The versions after it live in the database (`thresholds_store`); a file given when the store already
holds versions is still validated, then left aside with a warning (use `vertebral-cds thresholds import`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from cds_service.admin.thresholds_store import ThresholdsStore
from cds_service.settings import SettingsError
from rules.thresholds import DEFAULT_THRESHOLDS, Thresholds

log = logging.getLogger("vertebral_cds.thresholds")


@dataclass(frozen=True)
class StaticThresholds:
    thresholds: Thresholds
    version: int = 1
    path: str | None = None

    @classmethod
    def from_file(cls, path: str | None) -> StaticThresholds:
        if path is None:
            return cls(DEFAULT_THRESHOLDS)
        try:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            return cls(Thresholds.model_validate(values), path=path)
        except (OSError, yaml.YAMLError) as error:
            raise SettingsError(f"cannot read thresholds file {path}: {error}") from error
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
            raise SettingsError(f"invalid thresholds in {path}: {problems}") from error

    def current(self) -> tuple[Thresholds, int]:
        return self.thresholds, self.version

    def seed(self, store: ThresholdsStore) -> int:
        """Version 1 of an empty store; returns the version in force."""
        reason = f"initial thresholds from {self.path}" if self.path else "initial thresholds (defaults)"
        version, seeded = store.seed(self.thresholds, reason)
        if not seeded and self.path is not None:
            log.warning(
                "thresholds file not used: the database already holds versions; use "
                "`vertebral-cds thresholds import` to add it as a new version",
                extra={"thresholds_version": version, "path": self.path},
            )
        return version
