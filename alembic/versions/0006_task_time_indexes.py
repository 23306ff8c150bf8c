"""task time indexes: created_at (admins' lists and time ranges), updated_at (activity figures)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_task_created", "task", ["created_at"])
    op.create_index("ix_task_updated", "task", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_task_updated", table_name="task")
    op.drop_index("ix_task_created", table_name="task")
