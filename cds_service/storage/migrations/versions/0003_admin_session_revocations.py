"""Admin sessions ended by logout, shared by every worker.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_session_revocations",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_admin_session_revocations_expires_at", "admin_session_revocations", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_admin_session_revocations_expires_at", "admin_session_revocations")
    op.drop_table("admin_session_revocations")
