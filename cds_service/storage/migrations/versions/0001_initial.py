"""Evaluations, cards and feedback.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("hook", sa.String(32), nullable=False),
        sa.Column("hook_instance", sa.String(64), nullable=False, index=True),
        sa.Column("patient_hash", sa.String(64), nullable=False, index=True),
        sa.Column("thresholds_version", sa.Integer, nullable=False),
        sa.Column("procedure", sa.String(32), nullable=True),
        sa.Column("level_count", sa.Integer, nullable=True),
        sa.Column("rules_run", sa.JSON, nullable=False),
        sa.Column("outcomes", sa.JSON, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("timings_ms", sa.JSON, nullable=False),
    )
    op.create_table(
        "cards",
        sa.Column("uuid", sa.String(64), primary_key=True),
        sa.Column(
            "evaluation_id",
            sa.String(36),
            sa.ForeignKey("evaluations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("rule", sa.String(64), nullable=False, index=True),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("suggestion_uuids", sa.JSON, nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("card_uuid", sa.String(128), nullable=False, index=True),
        sa.Column("evaluation_id", sa.String(36), nullable=True, index=True),
        sa.Column("rule", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("accepted_suggestions", sa.JSON, nullable=False),
        sa.Column("override_reason_system", sa.String(256), nullable=True),
        sa.Column("override_reason_code", sa.String(128), nullable=True),
        sa.Column("has_user_comment", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("outcome_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_feedback_dedupe_key"),
    )


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("cards")
    op.drop_table("evaluations")
