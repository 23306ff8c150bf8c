"""SQLite's search index of timeline lines, brought up to date in batches (revision 0010):
a search finds every line written before it, and the index stays exact through deletes and
edits of lines whether or not they were indexed yet."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from spyglass.tasks import store as store_module
from spyglass.tasks.models import utcnow
from spyglass.tasks.store import SEARCH_PENDING, TaskStore
from tests.test_engine import task_row

#: Task 't' and its line `seq` in plain SQL (a store of another revision, or no store).
RAW_TASK = (
    "INSERT INTO task (id, state_name, task_name, status, progress, origin, attempt, cost, "
    "created_at, updated_at) VALUES ('t', 's', 't', 'PENDING', 0, 'direct', 1, 0, "
    "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
)
RAW_LINE = (
    "INSERT INTO task_event (task_id, seq, timestamp, event_type, message) "
    "VALUES ('t', :seq, '2026-01-01 00:00:00', 'info', :words)"
)


def lines(task_id: str, *messages: str, first: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "task_id": task_id,
            "seq": first + i,
            "timestamp": utcnow(),
            "event_type": "info",
            "message": message,
            "data": None,
        }
        for i, message in enumerate(messages)
    ]


def check_index(db: Path) -> None:
    """FTS5's own check of an external-content index against its whole table: raises
    `sqlite3.DatabaseError` when a line is missing, extra or indexed with other words."""
    conn = sqlite3.connect(db)
    try:
        conn.execute(
            "INSERT INTO task_event_fts(task_event_fts, rank) VALUES('integrity-check', 1)"
        )
    finally:
        conn.close()


def raw_count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


async def found(store: TaskStore, words: str) -> set[str]:
    hits, total = await asyncio.to_thread(store.search_events, words, None, 100, 0)
    assert total == len(hits)
    return {f"{h['task_id']}:{h['seq']}" for h in hits}


async def test_a_search_finds_every_line_and_the_index_stays_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "SEARCH_INDEX_BATCH", 3)  # several batches per catch-up
    monkeypatch.setattr(store_module, "SEARCH_INDEX_EVERY", 3600.0)  # only searches index
    db = tmp_path / "s.db"
    store = TaskStore(f"sqlite:///{db}")
    store.migrate()
    await store.start()
    try:
        await store.insert_task(task_row("a"), lines("a", "alpha apple", "alpha pear"))
        await store.insert_task(task_row("b"), lines("b", "beta apple", "beta plum", "gamma"))
        await store.insert_task(task_row("c"), lines("c", "gamma apple"))
        # Written, not indexed yet: the lines wait, and FTS5 alone finds none of them.
        assert raw_count(db, f"SELECT count(*) FROM {SEARCH_PENDING}") == 6
        fts = "SELECT count(*) FROM task_event_fts WHERE task_event_fts MATCH 'apple'"
        assert raw_count(db, fts) == 0
        # A search brings the index up to date first (six lines, batches of three).
        assert await found(store, "apple") == {"a:1", "b:1", "c:1"}
        assert raw_count(db, f"SELECT count(*) FROM {SEARCH_PENDING}") == 0
        check_index(db)

        # New lines wait again; then a task whose lines are indexed (a), and one whose
        # lines are partly waiting (b), are deleted; an indexed line and a waiting line
        # are edited.
        await store.update_task("b", {"message": "x"}, lines("b", "beta apple again", first=4))
        await store.update_task("c", {"message": "x"}, lines("c", "gamma pear", first=2))
        await store.delete_task("a")
        await store.delete_task("b")
        with store.engine.begin() as conn:
            for seq, words in ((1, "gamma quince"), (2, "gamma kiwi")):
                conn.execute(
                    sa.text("UPDATE task_event SET message = :m WHERE task_id = 'c' AND seq = :s"),
                    {"m": words, "s": seq},
                )
        # (FTS5's check compares the index with the whole table, so it holds only once
        # nothing waits: then nothing is missing, left over or indexed with old words.)
        assert await asyncio.to_thread(store.index_events) == 2  # both of c's, edited
        check_index(db)
        assert await found(store, "apple") == set()
        assert await found(store, "pear") == set()
        assert await found(store, "gamma") == {"c:1", "c:2"}
        assert await found(store, "quince") == {"c:1"}
        assert await found(store, "kiwi") == {"c:2"}
        check_index(db)
    finally:
        await store.close()


def test_the_check_catches_an_index_that_is_not_exact(tmp_path: Path) -> None:
    """The check above can fail: a line taken out of the index that was never in it (what
    the delete trigger would do without its guard) leaves the index corrupt."""
    db = tmp_path / "c.db"
    store = TaskStore(f"sqlite:///{db}")
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(sa.text(RAW_TASK))
        conn.execute(sa.text(RAW_LINE), {"seq": 1, "words": "waiting words"})
    store.index_events()
    store.engine.dispose()
    check_index(db)
    conn = sqlite3.connect(db)
    conn.execute(RAW_LINE, {"seq": 2, "words": "never indexed"})
    conn.execute(
        "INSERT INTO task_event_fts(task_event_fts, rowid, message) "
        "SELECT 'delete', id, message FROM task_event WHERE seq = 2"
    )
    conn.commit()
    conn.close()
    store.index_events()
    store.engine.dispose()
    with pytest.raises(sqlite3.DatabaseError):
        check_index(db)


async def test_the_index_catches_up_every_few_seconds_without_a_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "SEARCH_INDEX_EVERY", 0.05)
    db = tmp_path / "p.db"
    store = TaskStore(f"sqlite:///{db}")
    store.migrate()
    await store.start()
    try:
        await store.insert_task(task_row("a"), lines("a", "periodic words"))
        fts = "SELECT count(*) FROM task_event_fts WHERE task_event_fts MATCH 'periodic'"
        deadline = time.monotonic() + 30
        while raw_count(db, fts) != 1:
            assert time.monotonic() < deadline, "the line was never indexed"
            await asyncio.sleep(0.02)
        assert raw_count(db, f"SELECT count(*) FROM {SEARCH_PENDING}") == 0
    finally:
        await store.close()


async def test_the_periodic_pass_asks_nothing_of_an_idle_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index's periodic pass looks once at the start, then only after this process has
    committed something: an idle server makes no query for it. A line written later is
    indexed by the next pass."""
    monkeypatch.setattr(store_module, "SEARCH_INDEX_EVERY", 0.05)
    db = tmp_path / "idle.db"
    store = TaskStore(f"sqlite:///{db}")
    store.migrate()
    passes: list[int] = []
    index_events = store.index_events

    def counted() -> int:
        passes.append(1)
        return index_events()

    store.index_events = counted  # type: ignore[method-assign]
    await store.start()
    try:
        deadline = time.monotonic() + 30
        while not passes:
            assert time.monotonic() < deadline, "no first pass"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # ten periods with nothing written
        assert len(passes) == 1, len(passes)
        await store.insert_task(task_row("b"), lines("b", "later words"))
        fts = "SELECT count(*) FROM task_event_fts WHERE task_event_fts MATCH 'later'"
        while raw_count(db, fts) != 1:
            assert time.monotonic() < deadline, "the line was never indexed"
            await asyncio.sleep(0.02)
        assert len(passes) == 2, len(passes)
    finally:
        await store.close()


def test_the_migration_keeps_what_was_indexed_and_downgrades_cleanly(tmp_path: Path) -> None:
    from alembic.config import Config

    from alembic import command
    from spyglass.tasks.store import PROJECT_ROOT, make_engine

    db = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{db}")
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))

    def to(revision: str, down: bool = False) -> None:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)

    def add_line(seq: int, words: str) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(RAW_LINE), {"seq": seq, "words": words})

    def matches(words: str) -> int:
        return raw_count(
            db, f"SELECT count(*) FROM task_event_fts WHERE task_event_fts MATCH '{words}'"
        )

    def indexes() -> set[str]:
        return {
            r[0]
            for r in sqlite3.connect(db).execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'task'"
            )
        }

    try:
        to("0009")
        with engine.begin() as conn:
            conn.execute(sa.text(RAW_TASK))
        add_line(1, "indexed before")
        assert matches("before") == 1 and {"ix_task_status", "ix_task_worker"} <= indexes()
        to("head")
        assert not {"ix_task_status", "ix_task_worker", "ix_task_updated"} & indexes()
        assert "ix_task_status_updated" in indexes()
        assert matches("before") == 1  # what was indexed stays
        add_line(2, "waiting after")
        assert matches("after") == 0
        to("0009", down=True)  # the waiting line is indexed on the way down
        assert matches("after") == 1
        assert {"ix_task_status", "ix_task_worker", "ix_task_updated"} <= indexes()
        add_line(3, "immediate again")  # and the old triggers index at once again
        assert matches("immediate") == 1
    finally:
        engine.dispose()
    check_index(db)
