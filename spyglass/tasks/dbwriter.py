"""One writer thread that commits queued writes in groups.

Every write is its own unit of work, but all the units waiting when the thread
wakes are committed in one transaction, with one statement per kind of change
(task inserts, task updates with the same columns, event inserts, deletes): a
status change is durable before its caller goes on, yet a thousand tasks
changing state at once cost a handful of statements and one commit. A group
that fails is retried unit by unit, so one bad write never takes its neighbours
down with it. On SQLite the task and event writes run on the DBAPI cursor directly
(`_Direct`: SQL built once per set of columns, values through SQLAlchemy's own bind
processors), unless something listens to SQLAlchemy's cursor events.

On a SQLite file the event loop that started the writer commits its own writes when it can
(`inline`): the writes submitted in one turn of the loop are committed together at the end of
that turn, on a connection of the loop's that never waits for SQLite's lock. A hand-off to the
thread and back costs more than the commit of a few rows (the thread's wake-up, the loop's,
and the GIL passed between them: 0.37 against 0.24 ms of CPU per no-op job, measured with the
task schema). Order is kept: the loop commits only while the thread has nothing queued or in
hand, and anything that would make it wait (SQLite's lock held elsewhere, an error, a group
too big for one turn) goes to the thread instead, which retries unit by unit as always. The
loop's connection never checkpoints the WAL itself; the thread does, every
`CHECKPOINT_EVERY` loop commits, so the loop never pays for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, Table

from spyglass import pid
from spyglass.tasks.models import sqlite_bind_processor

log = logging.getLogger(__name__)

MAX_GROUP = 2000
#: The most writes the loop commits in one turn; a bigger group goes to the thread.
MAX_INLINE = 64
#: Loop commits between two WAL checkpoints (run by the thread).
CHECKPOINT_EVERY = 200


class _Direct:
    """A table's inserts and updates by id run on the DBAPI cursor (SQLite), past
    SQLAlchemy's per-statement work (statement compilation lookup, execution context, result
    set-up): the SQL text built once per set of columns, each value through the bind
    processor SQLAlchemy itself would use for its column on this dialect (in one call where
    one does the same: `sqlite_bind_processor`), and a missing column's default filled in as
    SQLAlchemy would (a scalar, or a function of nothing)."""

    def __init__(self, dialect: Any, table: Table) -> None:
        self._table = table
        self._prep = dialect.identifier_preparer
        self._name = self._prep.format_table(table)
        self._processors = {c.name: sqlite_bind_processor(c, dialect) for c in table.c}
        self._defaults: dict[str, Any] = {}
        for column in table.c:
            default = column.default
            if default is None:
                continue
            if not (default.is_scalar or default.is_callable):
                raise ValueError(f"{column.name}: a default that is not a value")
            self._defaults[column.name] = default
        self._sql: dict[tuple[str, tuple[str, ...]], str] = {}
        self._plans: dict[tuple[str, ...], list[tuple[str, Any, Any]]] = {}

    @staticmethod
    def fits(dialect: Any, table: Table) -> bool:
        """Whether the table can be written directly on this dialect."""
        if dialect.name != "sqlite" or dialect.paramstyle != "qmark":
            return False
        return all(c.onupdate is None and c.server_onupdate is None for c in table.c) and all(
            c.default is None or c.default.is_scalar or c.default.is_callable for c in table.c
        )

    def _row(self, columns: tuple[str, ...], values: dict[str, Any]) -> tuple[Any, ...]:
        plan = self._plans.get(columns)
        if plan is None:  # each column's processor, and what it gives for None (most values)
            plan = self._plans[columns] = [
                (name, process, None if process is None else process(None))
                for name in columns
                for process in (self._processors[name],)
            ]
        return tuple(
            [
                none if (value := values[name]) is None else value if process is None
                else process(value)
                for name, process, none in plan
            ]
        )  # fmt: skip

    def insert(self, cursor: Any, rows: list[dict[str, Any]]) -> int:
        """Insert `rows`; returns how many statements ran (one per set of columns)."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            missing = [name for name in self._defaults if name not in row]
            if missing:
                row = dict(row)
                for name in missing:
                    default = self._defaults[name]
                    row[name] = default.arg(None) if default.is_callable else default.arg
            groups.setdefault(tuple(row), []).append(row)
        for columns, group in groups.items():
            sql = self._sql.get(("insert", columns))
            if sql is None:
                names = ", ".join(self._prep.quote(c) for c in columns)
                marks = ", ".join("?" for _ in columns)
                sql = self._sql[("insert", columns)] = (
                    f"INSERT INTO {self._name} ({names}) VALUES ({marks})"
                )
            cursor.executemany(sql, [self._row(columns, r) for r in group])
        return len(groups)

    def update(self, cursor: Any, key: str, columns: tuple[str, ...], rows: list[Any]) -> None:
        """`UPDATE … SET columns WHERE key = ?` for each row (its values, `_task_id` last)."""
        sql = self._sql.get(("update", columns))
        if sql is None:
            sets = ", ".join(f"{self._prep.quote(c)} = ?" for c in columns)
            sql = self._sql[("update", columns)] = (
                f"UPDATE {self._name} SET {sets} WHERE {self._prep.quote(key)} = ?"
            )
        key_process = self._processors[key]
        cursor.executemany(
            sql,
            [
                (
                    *self._row(columns, r),
                    r["_task_id"] if key_process is None else key_process(r["_task_id"]),
                )
                for r in rows
            ],
        )


@dataclass(slots=True)
class Write:
    """One unit of work on the task tables."""

    insert_task: dict[str, Any] | None = None
    #: Column values for task `task_id`; several updates of one task merge in order.
    task_id: str | None = None
    values: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    delete_task: str | None = None
    #: Statements on other tables that must commit with this write (a refund with an end).
    also: list[Any] = field(default_factory=list)

    @property
    def has_work(self) -> bool:
        """False for a barrier: a write whose only purpose is to wait for those before it."""
        return bool(
            self.insert_task is not None
            or self.values
            or self.events
            or self.delete_task is not None
            or self.also
        )


@dataclass(slots=True)
class _Unit:
    write: Write
    future: asyncio.Future[None] | None
    loop: asyncio.AbstractEventLoop | None


_STOP = object()
#: Queued for the thread: checkpoint the WAL (the loop's commits never do).
_CHECKPOINT = object()


class GroupCommitWriter:
    def __init__(
        self,
        engine: Engine,
        task_table: Table,
        event_table: Table,
        *children: Table,
        inline: bool = False,
    ) -> None:
        self._engine = engine
        #: Whether the loop that starts the writer may commit its own writes (SQLite files).
        self._inline = inline
        self._home: asyncio.AbstractEventLoop | None = None
        #: The loop's own connection (it never waits for a lock), by the process it is for.
        self._loop_conn: Connection | None = None
        #: Its DBAPI connection (the loop's direct writes commit there).
        self._loop_raw: Any = None
        self._loop_pid = 0
        #: Writes submitted in this turn of the loop, committed at its end.
        self._turn: list[_Unit] = []
        #: Units handed to the thread, and those it has committed (or failed): while they
        #: differ the loop hands its writes on too, so commits keep the order of submits.
        #: Each has one writer (`_handed` under its lock, `_done` the thread).
        self._handed = 0
        self._done = 0
        self._handing = threading.Lock()
        self._loop_commits = 0
        self._tasks = task_table
        self._events = event_table
        #: Tables whose rows (by `task_id`) go when their task is deleted.
        self._children = (event_table, *children)
        self._queue: queue.SimpleQueue[_Unit | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._update_statements: dict[tuple[str, ...], Any] = {}
        #: Built once: a statement object used again finds its compiled form in SQLAlchemy's
        #: cache by a cache key it keeps (a new one per group would compute it again).
        self._insert_task = sa.insert(task_table)
        self._insert_events = sa.insert(event_table)
        #: On SQLite the task and event writes go to the cursor directly (see `_Direct`).
        dialect = engine.dialect
        self._direct: tuple[_Direct, _Direct] | None = None
        if _Direct.fits(dialect, task_table) and _Direct.fits(dialect, event_table):
            self._direct = (_Direct(dialect, task_table), _Direct(dialect, event_table))
        #: The thread's own connection, kept between groups (no pool checkout, no ping per
        #: commit); dropped after a failure, and opened again for the next group.
        self._conn: Connection | None = None
        self._thread_commits = 0
        self.statements = 0

    @property
    def commits(self) -> int:
        """Transactions committed so far (by the thread and by the loop)."""
        return self._thread_commits + self._loop_commits

    def start(self) -> None:
        if self._inline:
            with contextlib.suppress(RuntimeError):
                self._home = asyncio.get_running_loop()
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="spyglass-db-writer", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Commit everything queued so far, then end the thread (call `end_turn` on the
        loop first: it commits what the loop still holds)."""
        self._home = None
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
        self._drop_connection()
        self._drop_loop_connection()

    def submit(self, write: Write) -> asyncio.Future[None]:
        """Queue a write; the returned future resolves once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        unit = _Unit(write, future, loop)
        if loop is self._home:
            if not self._turn:
                loop.call_soon(self.end_turn)
            self._turn.append(unit)
        else:
            self._hand_on([unit])
        return future

    def submit_nowait(self, write: Write) -> None:
        """Queue a write nobody waits for (coalesced progress); failures are logged. It goes
        to the thread, after what the loop holds (the order of commits is kept)."""
        if self._home is not None and _running_loop() is self._home:
            self.end_turn()
        self._hand_on([_Unit(write, None, None)])

    def _hand_on(self, units: list[Any]) -> None:
        with self._handing:
            self._handed += len(units)
            for unit in units:
                self._queue.put(unit)

    def end_turn(self) -> None:
        """Commit the writes submitted in this turn of the loop: on the loop when the thread
        has nothing in hand and SQLite's lock is free, else by the thread (in order)."""
        group, self._turn = self._turn, []
        if not group:
            return
        if self._handed != self._done or len(group) > MAX_INLINE or self._home is None:
            self._hand_on(group)
            return
        if not any(unit.write.has_work for unit in group):
            _settle([u.future for u in group if u.future is not None], None)
            return
        try:
            self._commit_on_loop([unit.write for unit in group])
        except Exception:
            # The lock is held elsewhere, or a write fails (rolled back): the thread waits
            # for the lock, and finds a bad unit, as it does for its own groups.
            self._hand_on(group)
            return
        self._loop_commits += 1
        if self._loop_commits % CHECKPOINT_EVERY == 0:
            # In hand like a write: the loop's writes wait behind it, so the WAL is wholly
            # copied when the next one begins, and SQLite starts the WAL over.
            self._hand_on([_CHECKPOINT])
        _settle([u.future for u in group if u.future is not None], None)

    def _loop_connection(self) -> Connection:
        conn = self._loop_conn
        if conn is None or conn.closed or conn.invalidated or self._loop_pid != pid.current():
            conn = self._engine.connect()
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.execute("PRAGMA busy_timeout=0")  # a lock held elsewhere raises at once
            raw.execute("PRAGMA wal_autocheckpoint=0")  # the thread checkpoints
            self._loop_conn, self._loop_raw, self._loop_pid = conn, raw, pid.current()
        return conn

    def _drop_loop_connection(self) -> None:
        conn, self._loop_conn, self._loop_raw = self._loop_conn, None, None
        if conn is not None and self._loop_pid == pid.current():
            with contextlib.suppress(Exception):
                conn.invalidate()  # its pragmas are the loop's: never back to the pool

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            if first is _CHECKPOINT:
                try:
                    self._checkpoint()
                finally:
                    self._done += 1
                continue
            group: list[_Unit] = [first]  # type: ignore[list-item]
            checkpoint = False
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                if item is _CHECKPOINT:
                    checkpoint = True  # after this group (what follows waits for both)
                    break
                group.append(item)  # type: ignore[arg-type]
            # Counted done before their writers are told: a writer that is told and writes
            # again at once finds the thread with nothing in hand (it may commit on the loop).
            outcomes: list[tuple[list[_Unit], BaseException | None]] = []
            try:
                self._commit(group, outcomes)
            finally:
                self._done += len(group)
                for units, error in outcomes:
                    _resolve(units, error)
            if checkpoint:
                try:
                    self._checkpoint()
                finally:
                    self._done += 1

    def _checkpoint(self) -> None:
        try:
            raw = self._connection().connection.dbapi_connection
            assert raw is not None  # outside SQLAlchemy's transaction: a pragma begins none
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception:
            log.warning("WAL checkpoint failed", exc_info=True)
            self._drop_connection()

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._drop_connection()
            self._conn = self._engine.connect()  # the pool pings it once, here
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _commit(
        self, group: list[_Unit], outcomes: list[tuple[list[_Unit], BaseException | None]]
    ) -> None:
        """Commit a group (each unit alone if the group fails, to find the bad one); what
        each unit's writer is to be told goes to `outcomes`."""
        if not any(unit.write.has_work for unit in group):
            outcomes.append((group, None))  # only barriers: what came before is committed
            return
        try:
            conn = self._connection()
            try:
                with conn.begin():
                    self._apply(conn, [unit.write for unit in group])
            except Exception:
                self._drop_connection()  # a broken link is not reused; a new one is opened
                raise
            self._thread_commits += 1
            outcomes.append((group, None))
        except Exception:
            if len(group) == 1:
                log.exception("database write failed")
                outcomes.append((group, sys.exc_info()[1]))
                return
            for unit in group:  # find the bad unit; commit the rest
                self._commit([unit], outcomes)

    def _apply(self, conn: Connection, writes: list[Write]) -> None:
        inserts, by_columns, events = _plan(writes)
        deletes = [w.delete_task for w in writes if w.delete_task is not None]
        if self._direct is not None and not _listened(conn):
            # With cursor listeners (tracing, tests), SQLAlchemy runs every statement.
            cursor = conn.connection.cursor()
            try:
                self._write_direct(cursor, inserts, by_columns, events)
            finally:
                cursor.close()
        else:
            if inserts:
                conn.execute(self._insert_task, inserts)
                self.statements += 1
            for columns, rows in by_columns.items():
                conn.execute(self._update_statement(columns), rows)
                self.statements += 1
            if events:
                conn.execute(self._insert_events, events)
                self.statements += 1
        for w in writes:
            for statement in w.also:
                conn.execute(statement)
                self.statements += 1
        if deletes:
            for table in self._children:
                conn.execute(sa.delete(table).where(table.c.task_id.in_(deletes)))
            conn.execute(sa.delete(self._tasks).where(self._tasks.c.id.in_(deletes)))
            self.statements += 1 + len(self._children)

    def _write_direct(
        self,
        cursor: Any,
        inserts: list[dict[str, Any]],
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]],
        events: list[dict[str, Any]],
    ) -> None:
        assert self._direct is not None
        tasks, lines = self._direct
        if inserts:
            self.statements += tasks.insert(cursor, inserts)
        for columns, rows in by_columns.items():
            tasks.update(cursor, "id", columns, rows)
            self.statements += 1
        if events:
            self.statements += lines.insert(cursor, events)

    def _commit_on_loop(self, writes: list[Write]) -> None:
        """One transaction of the loop's writes. Task rows and timeline lines alone (nearly
        every group) are written on the DBAPI connection and committed there, as SQLAlchemy's
        SQLite transaction does it (the sqlite3 module begins before the first write; commit
        or rollback end it), without SQLAlchemy's transaction objects around them; a group
        with statements of its own (`also`, deletes) goes through `_apply`."""
        conn = self._loop_connection()
        raw = self._loop_raw
        if (
            self._direct is None
            or raw is None
            or raw.isolation_level is None  # autocommit: no transaction would hold them
            or _listened(conn)
            or _listened_to_transactions(conn)
            or any(w.also or w.delete_task is not None for w in writes)
        ):
            with conn.begin():
                self._apply(conn, writes)
            return
        try:
            cursor = raw.cursor()
            try:
                self._write_direct(cursor, *_plan(writes))
            finally:
                cursor.close()
            raw.commit()
        except BaseException:
            try:
                raw.rollback()
            except Exception:  # a link that cannot even roll back is not used again
                self._drop_loop_connection()  # closed: SQLite drops what it held
            raise

    def _update_statement(self, columns: tuple[str, ...]) -> Any:
        stmt = self._update_statements.get(columns)
        if stmt is None:
            stmt = (
                sa.update(self._tasks)
                .where(self._tasks.c.id == sa.bindparam("_task_id"))
                .values({c: sa.bindparam(c) for c in columns})
            )
            self._update_statements[columns] = stmt
        return stmt


def _plan(
    writes: list[Write],
) -> tuple[list[dict[str, Any]], dict[tuple[str, ...], list[dict[str, Any]]], list[dict[str, Any]]]:
    """A group's task inserts, its task updates by set of columns (several updates of one
    task merged in order), and its timeline lines."""
    inserts = [w.insert_task for w in writes if w.insert_task is not None]
    merged: dict[str, dict[str, Any]] = {}
    for w in writes:
        if w.task_id is not None and w.values:
            merged.setdefault(w.task_id, {}).update(w.values)
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for task_id, values in merged.items():
        columns = tuple(sorted(values))
        by_columns.setdefault(columns, []).append({"_task_id": task_id, **values})
    return inserts, by_columns, [ev for w in writes for ev in w.events]


def _has_events(conn: Connection) -> bool:
    """Whether any of SQLAlchemy's connection events may have a listener on `conn`: the flag
    SQLAlchemy itself looks at before each of them, set on an engine or a connection when
    a listener is added (never cleared), so False means none at all."""
    return bool(conn._has_events or conn.engine._has_events)


def _listened(conn: Connection) -> bool:
    """Whether something listens to SQLAlchemy's cursor events on `conn` (tracing, tests)."""
    if not _has_events(conn):
        return False
    dispatch = conn.dispatch
    return bool(dispatch.before_cursor_execute or dispatch.after_cursor_execute)


def _listened_to_transactions(conn: Connection) -> bool:
    """Whether something listens to SQLAlchemy's transaction events on `conn` (it would not
    hear a commit made on the DBAPI connection)."""
    if not _has_events(conn):
        return False
    dispatch = conn.dispatch
    return bool(dispatch.begin or dispatch.commit or dispatch.rollback)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(group: list[_Unit], error: BaseException | None) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for unit in group:
        if unit.future is not None and unit.loop is not None:
            by_loop.setdefault(unit.loop, []).append(unit.future)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
            loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
