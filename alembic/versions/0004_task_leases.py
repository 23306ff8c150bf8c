"""task leases: which worker runs a task, and until when its lease holds

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from spyglass.tasks.models import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("worker_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", UTCDateTime(), nullable=True))
    op.create_index("ix_task_worker", "task", ["worker_id"])


def downgrade() -> None:
    op.drop_index("ix_task_worker", table_name="task")
    with op.batch_alter_table("task") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("worker_id")
