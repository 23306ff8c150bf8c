"""webhooks, idempotency keys, retention rules, sweep leases, full-text search of events

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Search: on PostgreSQL a GIN index on `to_tsvector('english', message)` of `task_event`;
on SQLite an FTS5 table over `task_event.message` (external content) kept in step by
triggers (since 0010 the insert trigger only notes a line for the index; the store indexes
in batches). A later migration that rebuilds `task_event` in batch mode on SQLite must create
the triggers again (0010's `DEFERRED_SEARCH`).
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from spyglass.tasks.models import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS task_event_fts USING fts5("
    "message, content='task_event', content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER IF NOT EXISTS task_event_fts_ai AFTER INSERT ON task_event BEGIN "
    "INSERT INTO task_event_fts(rowid, message) VALUES (new.id, new.message); END",
    "CREATE TRIGGER IF NOT EXISTS task_event_fts_ad AFTER DELETE ON task_event BEGIN "
    "INSERT INTO task_event_fts(task_event_fts, rowid, message) "
    "VALUES ('delete', old.id, old.message); END",
    "CREATE TRIGGER IF NOT EXISTS task_event_fts_au AFTER UPDATE OF message ON task_event "
    "BEGIN INSERT INTO task_event_fts(task_event_fts, rowid, message) "
    "VALUES ('delete', old.id, old.message); "
    "INSERT INTO task_event_fts(rowid, message) VALUES (new.id, new.message); END",
    "INSERT INTO task_event_fts(task_event_fts) VALUES ('rebuild')",
]


def create_sqlite_search() -> None:
    for statement in SQLITE_SEARCH:
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoint",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False, server_default=""),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("all_tasks", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("disabled_reason", sa.String(), nullable=True),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.Column("failures_in_a_row", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_webhook_endpoint_owner", "webhook_endpoint", ["owner_id"])
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column(
            "endpoint_id",
            sa.Integer(),
            sa.ForeignKey("webhook_endpoint.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_webhook_delivery_due", "webhook_delivery", ["state", "next_attempt_at"])
    op.create_index(
        "ix_webhook_delivery_endpoint", "webhook_delivery", ["endpoint_id", "created_at"]
    )
    op.create_table(
        "webhook_attempt",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "delivery_id",
            sa.String(length=40),
            sa.ForeignKey("webhook_delivery.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("response_excerpt", sa.String(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
    )
    op.create_index("ix_webhook_attempt_delivery", "webhook_attempt", ["delivery_id"])
    op.create_table(
        "idempotency_key",
        sa.Column("scope", sa.String(length=80), primary_key=True),
        sa.Column("key", sa.String(length=255), primary_key=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("task_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "retention_rule",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("job", sa.String(length=401), nullable=False, server_default=""),
        sa.Column("days", sa.Float(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("status", "job", name="uq_retention_status_job"),
    )
    op.create_table(
        "sweep_lease",
        sa.Column("name", sa.String(length=40), primary_key=True),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("until", UTCDateTime(), nullable=False),
    )
    # Finished tasks by when they ended, for the retention sweep.
    op.create_index("ix_task_status_updated", "task", ["status", "updated_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_task_event_search ON task_event "
            "USING GIN (to_tsvector('english', coalesce(message, '')))"
        )
    else:
        create_sqlite_search()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_task_event_search")
    else:
        for name in ("task_event_fts_ai", "task_event_fts_ad", "task_event_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS task_event_fts")
    op.drop_index("ix_task_status_updated", "task")
    for table in (
        "sweep_lease",
        "retention_rule",
        "idempotency_key",
        "webhook_attempt",
        "webhook_delivery",
        "webhook_endpoint",
    ):
        op.drop_table(table)
