"""Database tables: evaluations (what was decided, no PHI), cards issued, feedback received, threshold
versions and the admin audit log.

Patient ids are stored only as a keyed hash; tokens, JWTs, resource ids and values never are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, CheckConstraint, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class EvaluationRow(Base):
    __tablename__ = "evaluations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    service_id: Mapped[str] = mapped_column(String(64))
    hook: Mapped[str] = mapped_column(String(32))
    hook_instance: Mapped[str] = mapped_column(String(64), index=True)
    patient_hash: Mapped[str] = mapped_column(String(64), index=True)
    thresholds_version: Mapped[int] = mapped_column(Integer)
    procedure: Mapped[str | None] = mapped_column(String(32), nullable=True)
    level_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rules_run: Mapped[list[Any]] = mapped_column(JSON)
    outcomes: Mapped[list[Any]] = mapped_column(JSON)
    """[{rule, indicator, card, criteria: {criterion: outcome}}] — ids and outcomes only."""
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    """How the data arrived: prefetched/fetched/failed keys, parse issue count."""
    timings_ms: Mapped[dict[str, Any]] = mapped_column(JSON)


class CardRow(Base):
    __tablename__ = "cards"

    uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    evaluation_id: Mapped[str] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    rule: Mapped[str] = mapped_column(String(64), index=True)
    indicator: Mapped[str] = mapped_column(String(16))
    suggestion_uuids: Mapped[list[Any]] = mapped_column(JSON)


class FeedbackRow(Base):
    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("dedupe_key", name="uq_feedback_dedupe_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    service_id: Mapped[str] = mapped_column(String(64))
    card_uuid: Mapped[str] = mapped_column(String(128), index=True)
    evaluation_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))
    accepted_suggestions: Mapped[list[Any]] = mapped_column(JSON)
    override_reason_system: Mapped[str | None] = mapped_column(String(256), nullable=True)
    override_reason_code: Mapped[str | None] = mapped_column(String(128), nullable=True)
    override_reason_display: Mapped[str | None] = mapped_column(String(256), nullable=True)
    """The reason's display as the EHR's reason list names it (Epic's codes are site-specific numbers)."""
    has_user_comment: Mapped[bool] = mapped_column(default=False)
    """Free-text comments may name the patient, so only their presence is kept."""
    outcome_timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ThresholdVersionRow(Base):
    """One immutable version of the thresholds: the full values, who saved them, when and why."""

    __tablename__ = "threshold_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    author: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(2000))
    action: Mapped[str] = mapped_column(String(16))
    """seed, update, rollback or import."""
    based_on: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The version that was current when this one was saved (None for the seed)."""
    rollback_of: Mapped[int | None] = mapped_column(Integer, nullable=True)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)


class CurrentThresholdsRow(Base):
    """The single pointer to the version in force; changed only by compare-and-swap on `version`."""

    __tablename__ = "threshold_current"
    __table_args__ = (CheckConstraint("id = 1", name="ck_threshold_current_single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(ForeignKey("threshold_versions.version"))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditRow(Base):
    """Who did what in the admin area. `detail` never holds a token, a password or patient data."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class RevokedSessionRow(Base):
    """Admin sessions ended by logout before their expiry: every worker checks here, so a logged-out
    cookie is refused everywhere. A row is kept only until the session would have expired anyway."""

    __tablename__ = "admin_session_revocations"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
