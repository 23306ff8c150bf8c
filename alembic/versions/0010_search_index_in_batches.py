"""the SQLite search index is brought up to date in batches; two task indexes less

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

SQLite: a new timeline line no longer goes into the FTS5 index inside the transaction that
writes it. That cost about as much as the rest of the write: FTS5 writes a new index
segment on every commit. Now the insert trigger only notes the line's id in
`task_event_fts_pending`. The store moves what is noted into the index in batches: before
every search, and every few seconds. A batch costs about 1 µs a line, against about 20 µs a
line in its own commit.

The index stays exact, because the delete and update triggers know which lines it holds:
- a line still waiting is only taken off the list;
- a line already indexed is taken out of the index with its old words, as before.

Also two indexes on `task` go, since each one is one more page written by every commit:
- `ix_task_status`: `ix_task_status_updated` (status, updated_at) serves every lookup by
  status;
- `ix_task_worker`: no query looks tasks up by worker. Leases are renewed by task id, and
  lapsed leases are found by status.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERS = ("task_event_fts_ai", "task_event_fts_ad", "task_event_fts_au")

#: A line leaves the index with the words it was indexed with, unless it is still waiting.
_UNINDEX_OLD = (
    "INSERT INTO task_event_fts(task_event_fts, rowid, message) "
    "SELECT 'delete', old.id, old.message "
    "WHERE NOT EXISTS (SELECT 1 FROM task_event_fts_pending WHERE id = old.id); "
)

DEFERRED_SEARCH = [
    "CREATE TABLE IF NOT EXISTS task_event_fts_pending (id INTEGER PRIMARY KEY)",
    "CREATE TRIGGER task_event_fts_ai AFTER INSERT ON task_event BEGIN "
    "INSERT OR IGNORE INTO task_event_fts_pending(id) VALUES (new.id); END",
    "CREATE TRIGGER task_event_fts_ad AFTER DELETE ON task_event BEGIN "
    + _UNINDEX_OLD
    + "DELETE FROM task_event_fts_pending WHERE id = old.id; END",
    "CREATE TRIGGER task_event_fts_au AFTER UPDATE OF message ON task_event BEGIN "
    + _UNINDEX_OLD
    + "INSERT OR IGNORE INTO task_event_fts_pending(id) VALUES (new.id); END",
]

#: The triggers of revision 0007: every line indexed in the transaction that writes it.
IMMEDIATE_SEARCH = [
    "CREATE TRIGGER task_event_fts_ai AFTER INSERT ON task_event BEGIN "
    "INSERT INTO task_event_fts(rowid, message) VALUES (new.id, new.message); END",
    "CREATE TRIGGER task_event_fts_ad AFTER DELETE ON task_event BEGIN "
    "INSERT INTO task_event_fts(task_event_fts, rowid, message) "
    "VALUES ('delete', old.id, old.message); END",
    "CREATE TRIGGER task_event_fts_au AFTER UPDATE OF message ON task_event "
    "BEGIN INSERT INTO task_event_fts(task_event_fts, rowid, message) "
    "VALUES ('delete', old.id, old.message); "
    "INSERT INTO task_event_fts(rowid, message) VALUES (new.id, new.message); END",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for statement in DEFERRED_SEARCH:
            op.execute(statement)
    op.drop_index("ix_task_status", table_name="task")
    op.drop_index("ix_task_worker", table_name="task")


def downgrade() -> None:
    op.create_index("ix_task_worker", "task", ["worker_id"])
    op.create_index("ix_task_status", "task", ["status"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "INSERT INTO task_event_fts(rowid, message) SELECT e.id, e.message "
            "FROM task_event_fts_pending p JOIN task_event e ON e.id = p.id"
        )
        for name in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE task_event_fts_pending")
        for statement in IMMEDIATE_SEARCH:
            op.execute(statement)
