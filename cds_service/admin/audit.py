"""The admin audit log: every change of thresholds, every login and every failed login.

Entries name an actor and a role and carry a small JSON detail. Tokens, passwords, cookies and patient
data are never written here: callers pass only the fields below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cds_service.storage.database import Database
from cds_service.storage.tables import AuditRow

_SECRET_KEYS = frozenset({"token", "password", "secret", "cookie", "authorization", "csrf"})


@dataclass(frozen=True)
class Actor:
    """Who acts: a display name (from the login form, the API body or the CLI) and the role held."""

    name: str
    role: str | None

    def label(self) -> str:
        return f"{self.name} ({self.role})" if self.role else self.name


SYSTEM = Actor("system", None)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    role: str | None
    action: str
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "detail": self.detail,
        }


def _scrub(detail: dict[str, Any]) -> dict[str, Any]:
    """Defence in depth: drop any key that sounds like a secret, however it got here."""
    return {k: v for k, v in detail.items() if not any(s in k.lower() for s in _SECRET_KEYS)}


def record(session: Session, actor: Actor, action: str, detail: dict[str, Any], at: datetime) -> None:
    session.add(
        AuditRow(at=at, actor=actor.name[:128], role=actor.role, action=action, detail=_scrub(detail))
    )


def record_now(database: Database, actor: Actor, action: str, detail: dict[str, Any], at: datetime) -> None:
    with database.session() as session:
        record(session, actor, action, detail, at)


def entries(database: Database, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
    """Newest first; `before_id` pages back."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditRow.id < before_id)
    with database.session() as session:
        rows = session.scalars(query).all()
        return [
            AuditEntry(
                id=r.id, at=as_utc(r.at), actor=r.actor, role=r.role, action=r.action, detail=dict(r.detail)
            )
            for r in rows
        ]


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timezone-aware columns back naive; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
