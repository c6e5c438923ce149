"""Versioned thresholds in the database, and the per-process cache that every hook call reads.

A version is immutable: the full values, author, time and reason. One row of `threshold_current` points
at the version in force. Saving is a compare-and-swap on that row inside one transaction, and its first
statement is the write that takes the row, so two editors racing on SQLite or PostgreSQL cannot both win:
the second one finds the pointer moved and gets `VersionConflict`, with nothing written.

`current()` is what `HookFlow` calls. It asks the database for the current version number at most once
per `refresh_seconds` (one indexed single-row read) and reloads the values only when that number
changed, so a version saved by any worker or replica is in force everywhere within about a second.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cds_service.admin import audit
from cds_service.admin.audit import SYSTEM, Actor, as_utc
from cds_service.admin.threshold_fields import diff
from cds_service.storage.database import Database
from cds_service.storage.tables import CurrentThresholdsRow, ThresholdVersionRow
from rules.thresholds import Thresholds

log = logging.getLogger("vertebral_cds.thresholds")

SEED_VERSION = 1


class VersionConflict(Exception):
    """The version in force is not the one the change was based on."""

    def __init__(self, expected: int, current: int | None) -> None:
        super().__init__(f"thresholds changed: expected version {expected}, current is {current}")
        self.expected = expected
        self.current = current


class NothingToSave(Exception):
    """The values equal the version in force: no new version is made."""

    def __init__(self, current: int) -> None:
        super().__init__(f"no change: the values equal version {current}")
        self.current = current


class UnknownVersion(LookupError):
    def __init__(self, version: int) -> None:
        super().__init__(f"no thresholds version {version}")
        self.version = version


@dataclass(frozen=True)
class ThresholdsVersion:
    version: int
    created_at: datetime
    author: str
    reason: str
    action: str
    based_on: int | None
    rollback_of: int | None
    thresholds: Thresholds

    @property
    def etag(self) -> str:
        return etag_for(self.version)

    def as_json(self, with_values: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "version": self.version,
            "createdAt": self.created_at.isoformat(),
            "author": self.author,
            "reason": self.reason,
            "action": self.action,
        }
        if self.based_on is not None:
            body["basedOn"] = self.based_on
        if self.rollback_of is not None:
            body["rollbackOf"] = self.rollback_of
        if with_values:
            body["values"] = self.thresholds.model_dump(mode="json")
        return body


def etag_for(version: int) -> str:
    return f'"thresholds-v{version}"'


def _version(row: ThresholdVersionRow) -> ThresholdsVersion:
    return ThresholdsVersion(
        version=row.version,
        created_at=as_utc(row.created_at),
        author=row.author,
        reason=row.reason,
        action=row.action,
        based_on=row.based_on,
        rollback_of=row.rollback_of,
        thresholds=Thresholds.model_validate(row.thresholds),
    )


class ThresholdsStore:
    def __init__(
        self,
        database: Database,
        *,
        refresh_seconds: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: tuple[Thresholds, int] | None = None
        self._checked_at = -math.inf

    # ------------------------------------------------------------------ what hook calls read

    def current(self) -> tuple[Thresholds, int]:
        """The thresholds in force and their version; at most one cheap query per `refresh_seconds`."""
        now = self._monotonic()
        with self._lock:
            cached = self._cached
            if cached is not None and now - self._checked_at < self._refresh_seconds:
                return cached
            try:
                version = self._pointer()
                if cached is None or cached[1] != version:
                    cached = (self.get(version).thresholds, version)
                    self._cached = cached
                    log.info("thresholds in force", extra={"thresholds_version": version})
            except (SQLAlchemyError, ValidationError, UnknownVersion):
                if cached is None:
                    raise
                # Keep deciding with the last known version rather than failing every hook call.
                log.exception("thresholds refresh failed", extra={"thresholds_version": cached[1]})
            self._checked_at = now
            return cached

    def invalidate(self) -> None:
        """Re-read on the next call (after this process saved a version)."""
        with self._lock:
            self._checked_at = -math.inf

    def _pointer(self) -> int:
        with self._database.engine.connect() as connection:
            version = connection.execute(
                select(CurrentThresholdsRow.version).where(CurrentThresholdsRow.id == 1)
            ).scalar_one_or_none()
        if version is None:
            raise UnknownVersion(0)
        return int(version)

    # ------------------------------------------------------------------ reading versions

    def current_version(self) -> ThresholdsVersion:
        """Read fresh from the database (the admin API must never show a stale version)."""
        return self.get(self._pointer())

    def get(self, version: int) -> ThresholdsVersion:
        with self._database.session() as session:
            row = session.get(ThresholdVersionRow, version)
            if row is None:
                raise UnknownVersion(version)
            return _version(row)

    def history(self, limit: int = 50, before: int | None = None) -> list[ThresholdsVersion]:
        """Newest first; `before` pages back."""
        query = select(ThresholdVersionRow).order_by(ThresholdVersionRow.version.desc()).limit(limit)
        if before is not None:
            query = query.where(ThresholdVersionRow.version < before)
        with self._database.session() as session:
            return [_version(row) for row in session.scalars(query).all()]

    # ------------------------------------------------------------------ writing versions

    def seed(self, thresholds: Thresholds, reason: str, actor: Actor = SYSTEM) -> tuple[int, bool]:
        """Make version 1 when the store is empty. Returns (current version, whether this call seeded).

        Several workers may start at once: the primary keys let exactly one of them seed.
        """
        now = self._clock()
        try:
            with self._database.session() as session:
                session.add(
                    ThresholdVersionRow(
                        version=SEED_VERSION,
                        created_at=now,
                        author=actor.name,
                        reason=reason,
                        action="seed",
                        based_on=None,
                        rollback_of=None,
                        thresholds=thresholds.model_dump(mode="json"),
                    )
                )
                session.flush()
                session.add(CurrentThresholdsRow(id=1, version=SEED_VERSION, changed_at=now))
                audit.record(
                    session, actor, "thresholds-seed", {"version": SEED_VERSION, "reason": reason}, now
                )
        except IntegrityError:
            return self._pointer(), False
        self.invalidate()
        return SEED_VERSION, True

    def save(
        self,
        thresholds: Thresholds,
        *,
        expected_version: int,
        actor: Actor,
        reason: str,
        action: str = "update",
        rollback_of: int | None = None,
    ) -> ThresholdsVersion:
        """Make a new version and put it in force, if `expected_version` is still the current one.

        Raises VersionConflict (nothing written) when another change got there first, and NothingToSave
        when the values equal the version in force.
        """
        now = self._clock()
        with self._database.session() as session:
            taken = cast(
                CursorResult[Any],
                session.execute(
                    update(CurrentThresholdsRow)
                    .where(CurrentThresholdsRow.id == 1, CurrentThresholdsRow.version == expected_version)
                    .values(changed_at=now)
                    .execution_options(synchronize_session=False)
                ),
            )
            if taken.rowcount != 1:
                current = session.scalar(
                    select(CurrentThresholdsRow.version).where(CurrentThresholdsRow.id == 1)
                )
                raise VersionConflict(expected_version, current)
            previous = session.get(ThresholdVersionRow, expected_version)
            assert previous is not None, "the pointer always names a stored version"
            changes = diff(Thresholds.model_validate(previous.thresholds), thresholds)
            if not changes:
                raise NothingToSave(expected_version)
            new_version = (session.scalar(select(func.max(ThresholdVersionRow.version))) or 0) + 1
            session.add(
                ThresholdVersionRow(
                    version=new_version,
                    created_at=now,
                    author=actor.name,
                    reason=reason,
                    action=action,
                    based_on=expected_version,
                    rollback_of=rollback_of,
                    thresholds=thresholds.model_dump(mode="json"),
                )
            )
            session.flush()
            session.execute(
                update(CurrentThresholdsRow)
                .where(CurrentThresholdsRow.id == 1)
                .values(version=new_version)
                .execution_options(synchronize_session=False)
            )
            detail: dict[str, Any] = {
                "version": new_version,
                "basedOn": expected_version,
                "reason": reason,
                "changes": [c.as_json() for c in changes],
            }
            if rollback_of is not None:
                detail["rollbackOf"] = rollback_of
            audit.record(session, actor, f"thresholds-{action}", detail, now)
        self.invalidate()
        return self.get(new_version)

    def rollback(
        self, to_version: int, *, expected_version: int, actor: Actor, reason: str
    ) -> ThresholdsVersion:
        """A new version equal to an old one; history is never rewritten."""
        old = self.get(to_version)
        return self.save(
            old.thresholds,
            expected_version=expected_version,
            actor=actor,
            reason=reason,
            action="rollback",
            rollback_of=to_version,
        )
