"""The engine's queries for finding runs and for admins' figures, on SQLite and PostgreSQL.

Rows are written straight into the database with known times, then read through the
engine's façade: `list_tasks` with a search, a file name, an id prefix and a time range;
`activity` (started / completed / failed per bucket) and `job_run_stats` (p50, p95, failure
rate). Each figure is one SQL statement, however many tasks there are.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from spyglass.config import Settings
from spyglass.tasks.engine import Engine
from spyglass.tasks.models import Artifact, Task
from spyglass.tasks.registry import Registry
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.view import TaskQuery
from tests.services import new_database, postgres_server

#: A fixed "now" on a minute boundary, so buckets are known exactly.
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Person:
    id: int
    role: str = "user"


ADMIN = Person(1, role="admin")
ALICE = Person(2)
BOB = Person(3)


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp_path / 'queries.db'}"
    else:
        db_url = new_database(request.getfixturevalue("pg_server"))
    settings = Settings(data_dir=tmp_path, db_url=db_url, port=0, secret_key="unit")
    eng = Engine(settings, Registry())
    await eng.start()
    yield eng
    await eng.stop()


def add_task(
    engine: Engine,
    *,
    owner: Person | None = ALICE,
    status: TaskStatus = TaskStatus.COMPLETED,
    task_name: str = "steps",
    created: datetime = NOW - timedelta(minutes=30),
    started: datetime | None = None,
    ended: datetime | None = None,
    run_ms: int | None = None,
    files: dict[str, str] | None = None,
    task_id: str | None = None,
) -> str:
    """A stored task with these times (and input files by key), as the engine records one."""
    task_id = task_id or str(uuid.uuid4())
    ended_col = {
        TaskStatus.COMPLETED: "completed_at",
        TaskStatus.FAILED: "failed_at",
        TaskStatus.CANCELLED: "cancelled_at",
    }.get(status)
    values: dict[str, Any] = {
        "id": task_id,
        "state_name": "testjobs",
        "task_name": task_name,
        "status": status.value,
        "progress": 100.0 if status is TaskStatus.COMPLETED else 0.0,
        "origin": "api",
        "owner_id": owner.id if owner else None,
        "attempt": 1,
        "cost": 0,
        "queue": "default",
        "priority": 0,
        "created_at": created,
        "processing_started_at": started,
        "execution_time_ms": run_ms,
        "updated_at": max(t for t in (created, started, ended) if t is not None),
    }
    if ended_col and ended is not None:
        values[ended_col] = ended
    if not status.is_terminal:  # held by a worker elsewhere: no recovery takes it over
        values.update(worker_id="elsewhere", lease_expires_at=datetime(2100, 1, 1, tzinfo=UTC))
    with engine.database.begin() as conn:
        conn.execute(sa.insert(Task.__table__), [values])  # type: ignore[attr-defined]
        for key, filename in (files or {}).items():
            conn.execute(
                sa.insert(Artifact.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "task_id": task_id,
                        "role": "input",
                        "key": key,
                        "filename": filename,
                        "content_type": "text/csv",
                        "size_bytes": 10,
                        "storage_key": f"users/x/tasks/{task_id}/inputs/{filename}",
                        "type": "data",
                        "created_at": created,
                    }
                ],
            )
    return task_id


class Statements:
    """The SELECT statements the database was sent while counting."""

    def __init__(self, engine: Engine) -> None:
        self.selects: list[str] = []
        #: Each SELECT with its parameters, as the driver was given them.
        self.sent: list[tuple[str, Any]] = []
        self._db = engine.database

    def __enter__(self) -> Statements:
        event.listen(self._db, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self._db, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.selects.append(statement)
            self.sent.append((statement, args[0]))


async def ids(engine: Engine, viewer: Person, query: TaskQuery) -> set[str]:
    page = await engine.list_tasks(viewer, query, limit=100)
    assert page.total == len(page.tasks)
    return {t.id for t in page.tasks}


async def test_search_by_id_prefix_or_file_name(engine: Engine) -> None:
    customers = add_task(
        engine, files={"primary": "Customers_2025.csv", "baseline": "old%base.csv"}
    )
    orders = add_task(engine, files={"primary": "orders.xlsx"})
    job = add_task(engine, task_id="abcdef12-0000-4000-8000-000000000000")
    theirs = add_task(engine, owner=BOB, files={"primary": "customers_bob.csv"})

    # A file name, in any case, anywhere in the name; a baseline counts too.
    assert await ids(engine, ALICE, TaskQuery(filename="customers")) == {customers}
    assert await ids(engine, ALICE, TaskQuery(filename="OLD%BASE")) == {customers}
    # % and _ are literal characters, not wildcards.
    assert await ids(engine, ALICE, TaskQuery(filename="s%2")) == set()
    assert await ids(engine, ALICE, TaskQuery(filename="rs_2")) == {customers}
    # An id prefix, in any case; a text that cannot start an id matches no id.
    assert await ids(engine, ALICE, TaskQuery(id_prefix="ABCDEF")) == {job}
    assert await ids(engine, ALICE, TaskQuery(id_prefix=orders[:8])) == {orders}
    assert await ids(engine, ALICE, TaskQuery(id_prefix="xyz")) == set()
    # The search box: either one.
    assert await ids(engine, ALICE, TaskQuery(search="abcdef1")) == {job}
    assert await ids(engine, ALICE, TaskQuery(search="xlsx")) == {orders}
    assert await ids(engine, ALICE, TaskQuery(search=customers[:6])) == {customers}
    # Whose tasks: the viewer's own; an admin's: everyone's.
    assert await ids(engine, ADMIN, TaskQuery(search="customers")) == {customers, theirs}
    assert await ids(engine, BOB, TaskQuery(search="customers")) == {theirs}


async def test_time_range_and_the_input_file_name_come_with_the_list(engine: Engine) -> None:
    old = add_task(engine, created=NOW - timedelta(days=3), files={"primary": "old.csv"})
    recent = add_task(engine, created=NOW - timedelta(hours=2), files={"primary": "new.csv"})
    newest = add_task(engine, created=NOW - timedelta(minutes=5))
    day_ago = NOW - timedelta(days=1)
    assert await ids(engine, ALICE, TaskQuery(created_after=day_ago)) == {recent, newest}
    assert await ids(engine, ALICE, TaskQuery(created_before=day_ago)) == {old}
    hour_ago = NOW - timedelta(hours=1)
    window = TaskQuery(created_after=day_ago, created_before=hour_ago)
    assert await ids(engine, ALICE, window) == {recent}

    with Statements(engine) as sent:
        page = await engine.list_tasks(ALICE, TaskQuery(), limit=100)
    assert [t.id for t in page.tasks] == [newest, recent, old]  # newest first
    assert [t.input_filename for t in page.tasks] == [None, "new.csv", "old.csv"]
    # The page and its total: no query per task.
    assert len(sent.selects) == 2, sent.selects


async def test_activity_counts_per_minute_in_one_query(engine: Engine) -> None:
    def at(minutes_ago: float) -> datetime:
        return NOW - timedelta(minutes=minutes_ago)

    # Started 50 min ago (bucket 10 of the hour), completed 40 min ago (bucket 20).
    add_task(engine, created=at(51), started=at(50), ended=at(40), run_ms=600_000)
    add_task(engine, created=at(51), started=at(49.5), ended=at(40.2), run_ms=500_000)
    # Started and failed in the last minute (bucket 59).
    add_task(engine, status=TaskStatus.FAILED, created=at(1), started=at(0.9), ended=at(0.5))
    # Older than the hour: nowhere in it.
    add_task(engine, created=at(200), started=at(190), ended=at(180), run_ms=1)
    # Still running: started only.
    add_task(engine, status=TaskStatus.PROCESSING, created=at(3), started=at(2.5))
    with Statements(engine) as sent:
        series = await engine.activity(since=NOW - timedelta(hours=1), until=NOW)
    assert len(sent.selects) == 1, sent.selects
    assert series.start == NOW - timedelta(hours=1) and series.bucket_seconds == 60
    assert len(series.started) == len(series.completed) == len(series.failed) == 60
    assert {i: n for i, n in enumerate(series.started) if n} == {10: 2, 57: 1, 59: 1}
    assert {i: n for i, n in enumerate(series.completed) if n} == {19: 1, 20: 1}
    assert {i: n for i, n in enumerate(series.failed) if n} == {59: 1}
    assert series.buckets[10] == NOW - timedelta(minutes=50)

    daily = await engine.activity(since=NOW - timedelta(days=1), until=NOW, bucket_seconds=900)
    assert len(daily.started) == 96
    assert sum(daily.started) == 5 and sum(daily.completed) == 3 and sum(daily.failed) == 1


async def test_the_activity_figures_read_the_task_table_through_its_status_index(
    engine: Engine,
) -> None:
    """Each part of the activity query (started, completed, failed) is bounded by the
    (status, updated_at) index: it reads the hour's or day's rows, never the whole table
    (the runs started ask for every status, one range each)."""
    add_task(engine, created=NOW - timedelta(minutes=5), started=NOW - timedelta(minutes=4))
    with Statements(engine) as sent:
        await engine.activity(since=NOW - timedelta(hours=1), until=NOW)
    ((statement, params),) = sent.sent
    with engine.database.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if engine.database.dialect.name == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            plan = [str(row[-1]) for row in cursor.fetchall()]
            reads = [line for line in plan if " task" in line and "SCAN" in line]
            assert not reads, plan  # no part scans the table
        else:  # a plan with the index whenever it can be used (the table is tiny)
            cursor.execute("SET enable_seqscan = off")
            cursor.execute(f"EXPLAIN {statement}", params)
            plan = [str(row[0]) for row in cursor.fetchall()]
            cursor.execute("RESET enable_seqscan")
            assert not [line for line in plan if "Seq Scan on task" in line], plan
        searches = [line for line in plan if "ix_task_status_updated" in line]
        assert len(searches) == 3, plan  # started, completed, failed
        cursor.close()


async def test_job_run_stats_percentiles_and_failure_rate_in_one_query(engine: Engine) -> None:
    ended = NOW - timedelta(minutes=10)
    for ms in range(100, 2100, 100):  # 20 completed runs: 100 … 2000 ms
        add_task(engine, started=ended - timedelta(milliseconds=ms), ended=ended, run_ms=ms)
    for _ in range(5):
        add_task(engine, status=TaskStatus.FAILED, started=ended, ended=ended)
    add_task(engine, task_name="boom", status=TaskStatus.FAILED, started=ended, ended=ended)
    # Ended before the window, or cancelled: not counted.
    add_task(engine, created=NOW - timedelta(days=3), ended=NOW - timedelta(days=2), run_ms=9)
    add_task(engine, status=TaskStatus.CANCELLED, started=ended, ended=ended)
    with Statements(engine) as sent:
        stats = await engine.job_run_stats(since=NOW - timedelta(days=1))
    assert len(sent.selects) == 1, sent.selects
    by_job = {s.task_name: s for s in stats}
    steps, boom = by_job["steps"], by_job["boom"]
    assert (steps.completed, steps.failed) == (20, 5)
    assert (steps.p50_ms, steps.p95_ms) == (1000, 1900)  # nearest rank: 10th and 19th of 20
    assert steps.failure_rate == pytest.approx(5 / 25)
    assert (boom.completed, boom.failed, boom.p50_ms, boom.p95_ms) == (0, 1, None, None)
    assert boom.failure_rate == 1.0


async def test_the_direct_apis_read_of_a_task_answers_what_its_view_answers(
    engine: Engine,
) -> None:
    """The direct API's result read takes only the columns its answer needs
    (`Engine.get_direct`); what it answers, and whose and which state's it says the task
    is, are what the task's whole view gives, for every kind of stored row."""
    from spyglass.tasks.messages import direct_view

    plain = add_task(engine, owner=None)
    owned = add_task(engine, owner=BOB, status=TaskStatus.FAILED, ended=NOW)
    waiting = add_task(engine, owner=None, status=TaskStatus.PENDING)
    odd = add_task(engine, owner=None, status=TaskStatus.COMPLETED, ended=NOW)
    with engine.database.begin() as conn:
        table = Task.__table__  # type: ignore[attr-defined]
        conn.execute(
            sa.update(table)
            .where(table.c.id == odd)
            .values(
                tool_id="profile",
                agents=["profile", "clean"],
                result={"rows": 2**70, "names": ["é", "☃"], "nested": {"x": [1.5, None]}},
                scheduled_at=NOW - timedelta(hours=1),
                message="Done · 2 files",
            )
        )
        conn.execute(
            sa.update(table)
            .where(table.c.id == owned)
            .values(error_code="JOB_ERROR", error_message="The input has no rows")
        )
    for task_id in (plain, owned, waiting, odd):
        view = await engine.get(task_id)
        read = await engine.get_direct(task_id)
        assert view is not None and read is not None
        assert read.answer == direct_view(view), task_id
        assert list(read.answer) == list(direct_view(view)), "the same fields in one order"
        assert (read.state_name, read.owner_id) == (view.state_name, view.owner_id)
    assert (await engine.get_direct(owned)) is not None
    assert (await engine.get_direct(owned)).owner_id == BOB.id  # type: ignore[union-attr]
    assert await engine.get_direct(str(uuid.uuid4())) is None
