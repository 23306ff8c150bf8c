"""one index on a task's `updated_at`: (status, updated_at) serves the activity figures too

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

`ix_task_updated` (updated_at) was read by one query only: the admins' activity figures,
for the runs started in the last hour or day (`TaskStore.activity`). That query now asks
for every status, so `ix_task_status_updated` (status, updated_at) bounds what it reads,
one range per status, as it already did for the completed and failed runs. Every task
insert, and every write that moves a task's `updated_at` (each status change, each
coalesced progress write), has one index less to keep: one page less in most commits.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_task_updated", table_name="task")


def downgrade() -> None:
    op.create_index("ix_task_updated", "task", ["updated_at"])
