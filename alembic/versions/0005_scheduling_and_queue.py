"""scheduling and the worker queue: queue, priority, scheduled_at, queue_job_id, workers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from spyglass.tasks.models import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(
            sa.Column("queue", sa.String(length=64), nullable=False, server_default="default")
        )
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("scheduled_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("queue_job_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "worker_info",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("worker_info")
    with op.batch_alter_table("task") as batch:
        batch.drop_column("queue_job_id")
        batch.drop_column("scheduled_at")
        batch.drop_column("priority")
        batch.drop_column("queue")
