"""Where the thresholds in force come from. Until versioned storage lands: defaults or a YAML file, v1."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from cds_service.settings import SettingsError
from rules.thresholds import DEFAULT_THRESHOLDS, Thresholds


@dataclass(frozen=True)
class StaticThresholds:
    thresholds: Thresholds
    version: int = 1

    @classmethod
    def from_file(cls, path: str | None) -> StaticThresholds:
        if path is None:
            return cls(DEFAULT_THRESHOLDS)
        try:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            return cls(Thresholds.model_validate(values))
        except (OSError, yaml.YAMLError) as error:
            raise SettingsError(f"cannot read thresholds file {path}: {error}") from error
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
            raise SettingsError(f"invalid thresholds in {path}: {problems}") from error

    def current(self) -> tuple[Thresholds, int]:
        return self.thresholds, self.version
