"""Server-side logout: a signed session cookie stays valid until its expiry unless its session is
revoked here. The revocations live in the database, so every worker and replica refuses a logged-out
cookie at once; each row is deleted once the session would have expired anyway."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from cds_service.admin.auth import Principal
from cds_service.storage.database import Database
from cds_service.storage.tables import RevokedSessionRow


def revoke(database: Database, principal: Principal, now: datetime) -> None:
    """End `principal`'s session everywhere (idempotent)."""
    if not principal.session_id:
        return
    expires = datetime.fromtimestamp(principal.expires_at or now.timestamp(), UTC)
    try:
        with database.session() as session:
            session.execute(delete(RevokedSessionRow).where(RevokedSessionRow.expires_at <= now))
            session.add(RevokedSessionRow(session_id=principal.session_id[:64], expires_at=expires))
    except IntegrityError:
        pass  # already revoked (a second logout, or another worker)


def is_revoked(database: Database, principal: Principal) -> bool:
    if not principal.session_id:
        return False
    with database.session() as session:
        found = session.scalar(
            select(RevokedSessionRow.session_id).where(
                RevokedSessionRow.session_id == principal.session_id[:64]
            )
        )
    return found is not None
