"""The durable record of every task and its timeline: the one source of truth.

Writes go through a group-commit writer thread. A new task's row and final states are
written at once (callers await the commit); progress, log lines and the lines of a task
starting (its Queued and PROCESSING lines, when it runs in this process) are coalesced and
written with the task's next write or at most `flush_interval` seconds after the first of
them (a timer armed only while something waits: an idle server never wakes for it), so a
job reporting a thousand times a second costs the database a few writes per second, and a
short job's timeline is one statement with its end. A read of a timeline writes what is
coalesced for the task first (`flush_task`).
Reads run in worker threads so the event loop never waits on the database; on a SQLite
file a task's row is read in the loop itself when SQLite can give it at once (a read never
waits for a writer there; one that would have to wait for a lock goes to a thread), as the
thread's hand-off costs several times the read.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import pydantic_core
import sqlalchemy as sa
from sqlalchemy import Engine, event
from sqlmodel import Session, col, func, select

from spyglass import pid
from spyglass.config import PROJECT_ROOT
from spyglass.errors import DomainError
from spyglass.tasks import credits
from spyglass.tasks.dbwriter import GroupCommitWriter, Write
from spyglass.tasks.models import (
    Artifact,
    RetentionRule,
    SweepLease,
    Task,
    TaskEvent,
    WorkerInfo,
    sqlite_result_processor,
    utcnow,
)
from spyglass.tasks.status import ACTIVE_STATUSES, ErrorCode, TaskStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

TASK_TABLE = Task.__table__  # type: ignore[attr-defined]
EVENT_TABLE = TaskEvent.__table__  # type: ignore[attr-defined]
ARTIFACT_TABLE = Artifact.__table__  # type: ignore[attr-defined]
WORKER_TABLE = WorkerInfo.__table__  # type: ignore[attr-defined]
RULE_TABLE = RetentionRule.__table__  # type: ignore[attr-defined]
LEASE_TABLE = SweepLease.__table__  # type: ignore[attr-defined]
_DEPTH_KEYS = (TASK_TABLE.c.state_name, TASK_TABLE.c.task_name, TASK_TABLE.c.queue)


@functools.cache
def _row_by_id(columns: tuple[str, ...] | None) -> sa.Select[Any]:
    """A task's row by its id (only `columns`, by their keys, when named): built once per
    set of columns (a statement used again finds its compiled form in SQLAlchemy's cache by
    the cache key it keeps; a new one per read computes it again)."""
    selected = TASK_TABLE.c if columns is None else [TASK_TABLE.c[k] for k in columns]
    return sa.select(*selected).where(TASK_TABLE.c.id == sa.bindparam("task_id"))


INTERRUPTED_MESSAGE = "The server stopped while this task was running; retry it to run it again."
#: A task waiting for its files: the only statuses `claim_waiting` takes a task from.
WAITING = (TaskStatus.CREATED.value, TaskStatus.UPLOADING.value)


def json_text(value: Any) -> str:
    """The text of a JSON column's value: pydantic-core's encoder (several times quicker
    than the standard library's, which SQLAlchemy would use; the same JSON, written compact
    and in UTF-8). A timeline line's data, a result and a job's inputs are written with each
    task, so this runs several times per job."""
    return pydantic_core.to_json(value).decode()


def make_engine(db_url: str) -> Engine:
    if db_url.startswith("sqlite"):
        engine = sa.create_engine(
            db_url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            json_serializer=json_text,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    engine = sa.create_engine(db_url, pool_size=10, max_overflow=10, json_serializer=json_text)
    _ping_when_idle(engine)
    return engine


def quick_reader(engine: Engine) -> Engine | None:
    """For a SQLite file, an engine whose one connection the event loop reads with: SQLite's
    busy wait off (a read that would wait for a lock raises at once, and is read in a thread
    instead), so the loop never waits on the database. None for other databases."""
    url = engine.url
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if "mode=memory" in database or url.query.get("mode") == "memory":
        return None
    return sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 0},
        poolclass=sa.pool.StaticPool,
    )


class QuickRows:
    """A task's row by id read on the DBAPI connection of a `quick_reader` engine: the SQL
    built once per set of columns, each value through the result processor SQLAlchemy itself
    uses for its column on this dialect (in one call where one does the same:
    `sqlite_result_processor`), keyed as SQLAlchemy keys a row's mapping (a read of its own,
    in SQLite's autocommit: each sees the latest commit)."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self._prep = dialect.identifier_preparer
        self._columns = {c.key: c for c in TASK_TABLE.c}
        self._processors = {
            key: sqlite_result_processor(c, dialect) for key, c in self._columns.items()
        }
        #: By set of columns (None: every column): the SELECT, and each column's key and
        #: processor in its order.
        self._plans: dict[tuple[str, ...] | None, tuple[str, list[tuple[str, Any]]]] = {}
        self.engine = engine
        self.conn: Any = engine.raw_connection()  # kept: StaticPool has this one only
        #: The process that opened it (a SQLite connection is not used across a fork).
        self.pid = pid.current()

    def _plan(self, columns: tuple[str, ...] | None) -> tuple[str, list[tuple[str, Any]]]:
        plan = self._plans.get(columns)
        if plan is None:
            keys = list(self._columns) if columns is None else list(columns)
            prep = self._prep
            sql = (
                f"SELECT {', '.join(prep.quote(self._columns[k].name) for k in keys)} "
                f"FROM {prep.format_table(TASK_TABLE)} "
                f"WHERE {prep.quote(TASK_TABLE.c.id.name)} = ?"
            )
            plan = self._plans[columns] = (sql, [(k, self._processors[k]) for k in keys])
        return plan

    def get(self, task_id: str, columns: tuple[str, ...] | None = None) -> dict[str, Any] | None:
        sql, keys = self._plan(columns)
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql, (task_id,))
            found = cursor.fetchone()
        finally:
            cursor.close()
        if found is None:
            return None
        return {
            name: value if process is None else process(value)
            for (name, process), value in zip(keys, found, strict=True)
        }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        self.engine.dispose()


#: A pooled connection idle longer than this is tested (one round trip) before it is used.
PING_AFTER_IDLE = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pessimistic disconnect handling, for connections that sat idle: one
    back in the pool within `PING_AFTER_IDLE` seconds is used as it is (a busy server
    checks out thousands a second, and `pool_pre_ping` paid a round trip for each); an
    older one is pinged first and, if the database dropped it, replaced by a new one."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)  # as pool_pre_ping does (outside a transaction)
        except Exception as exc:
            raise sa.exc.DisconnectionError(str(exc)) from exc  # the pool opens another


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (one worker at a time)."""
    from alembic.config import Config

    from alembic import command

    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    with _migration_lock(engine), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7279101)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Workers starting together on one SQLite file migrate in turn (PostgreSQL uses an
    advisory lock inside the migration's transaction)."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class _Pending:
    """Coalesced writes of one task not yet flushed."""

    values: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Claim:
    """What `claim_waiting` did: took the task (`won`), or found it in `status` (None: gone).

    `refused` is the 402 when the owner's credits fell short: the task is FAILED for it.
    """

    won: bool
    status: str | None
    refused: DomainError | None = None


@dataclass(frozen=True)
class TaskFilter:
    statuses: Sequence[str] = ()
    state_name: str | None = None
    task_name: str | None = None
    tool_id: str | None = None
    owner_id: int | None = None
    ownerless_only: bool = False
    id_prefix: str | None = None
    filename: str | None = None
    search: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


#: Every status a task can have (a query that bounds `updated_at` for any status asks for
#: each, so the (status, updated_at) index serves it).
_EVERY_STATUS = tuple(s.value for s in TaskStatus)

#: What a task id is made of (a uuid4 in lower case): an id prefix has nothing else.
_ID_CHARS = frozenset("0123456789abcdef-")


def _like_escape(text: str) -> str:
    """`text` for a LIKE pattern, matched literally (`\\` is the escape character)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _id_prefix_condition(prefix: str) -> Any:
    """Ids starting with `prefix` (any case: ids are lower case), or none when it cannot
    start one."""
    prefix = prefix.strip().lower()
    if not prefix or not set(prefix) <= _ID_CHARS:
        return sa.false()
    return TASK_TABLE.c.id.like(prefix + "%")


def _filename_condition(part: str) -> Any:
    """One of the task's input files has `part` in its name (any case): an EXISTS on the
    task's artifacts (indexed by task)."""
    pattern = "%" + _like_escape(part.strip()) + "%"
    return sa.exists().where(
        ARTIFACT_TABLE.c.task_id == TASK_TABLE.c.id,
        ARTIFACT_TABLE.c.role == "input",
        ARTIFACT_TABLE.c.filename.ilike(pattern, escape="\\"),
    )


def _task_conditions(flt: TaskFilter) -> list[Any]:
    conditions: list[Any] = []
    if flt.statuses:
        conditions.append(TASK_TABLE.c.status.in_(list(flt.statuses)))
    if flt.state_name:
        conditions.append(TASK_TABLE.c.state_name == flt.state_name)
    if flt.task_name:
        conditions.append(TASK_TABLE.c.task_name == flt.task_name)
    if flt.tool_id:
        conditions.append(TASK_TABLE.c.tool_id == flt.tool_id)
    if flt.owner_id is not None:
        conditions.append(TASK_TABLE.c.owner_id == flt.owner_id)
    if flt.ownerless_only:
        conditions.append(TASK_TABLE.c.owner_id.is_(None))
    if flt.id_prefix is not None and flt.id_prefix.strip():
        conditions.append(_id_prefix_condition(flt.id_prefix))
    if flt.filename is not None and flt.filename.strip():
        conditions.append(_filename_condition(flt.filename))
    if flt.search is not None and flt.search.strip():
        conditions.append(sa.or_(_id_prefix_condition(flt.search), _filename_condition(flt.search)))
    if flt.created_after is not None:
        conditions.append(TASK_TABLE.c.created_at >= flt.created_after)
    if flt.created_before is not None:
        conditions.append(TASK_TABLE.c.created_at < flt.created_before)
    return conditions


#: The name of a task's main input file (a data tool's `primary`), read with the task.
_INPUT_FILENAME = (
    sa.select(ARTIFACT_TABLE.c.filename)
    .where(
        ARTIFACT_TABLE.c.task_id == TASK_TABLE.c.id,
        ARTIFACT_TABLE.c.role == "input",
        ARTIFACT_TABLE.c.key == "primary",
    )
    .limit(1)
    .scalar_subquery()
    .label("input_filename")
)


def filter_conditions(flt: TaskFilter) -> list[Any]:
    """The WHERE conditions (Core) of a task filter."""
    t = TASK_TABLE.c
    conditions: list[Any] = []
    if flt.statuses:
        conditions.append(t.status.in_(list(flt.statuses)))
    if flt.state_name:
        conditions.append(t.state_name == flt.state_name)
    if flt.task_name:
        conditions.append(t.task_name == flt.task_name)
    if flt.tool_id:
        conditions.append(t.tool_id == flt.tool_id)
    if flt.owner_id is not None:
        conditions.append(t.owner_id == flt.owner_id)
    if flt.ownerless_only:
        conditions.append(t.owner_id.is_(None))
    return conditions


def _search_terms(text: str) -> list[str]:
    """The words of a search, for FTS5 (each quoted: no operator reaches its syntax)."""
    import re

    return re.findall(r"\w+", text, flags=re.UNICODE)[:32]


#: SQLite: the ids of timeline lines not yet in the search index (revision 0010).
SEARCH_PENDING = "task_event_fts_pending"
#: Lines indexed per transaction (about 1 µs each): the write lock is held briefly.
SEARCH_INDEX_BATCH = 20_000
#: Seconds between the batches that keep SQLite's search index close to the timeline.
SEARCH_INDEX_EVERY = 5.0


class StoreExtras:
    """Retention, bulk selection, search and sweep leases (mixed into TaskStore)."""

    engine: Engine

    def task_ids(self, flt: TaskFilter, limit: int) -> list[tuple[str, int | None]]:
        """(id, owner) of the tasks a filter selects, newest first, at most `limit`."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(TASK_TABLE.c.id, TASK_TABLE.c.owner_id)
                .where(*filter_conditions(flt))
                .order_by(TASK_TABLE.c.created_at.desc(), TASK_TABLE.c.id)
                .limit(limit)
            )
            return [(r[0], r[1]) for r in rows]

    def count_tasks(self, flt: TaskFilter) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(func.count()).select_from(TASK_TABLE).where(*filter_conditions(flt))
                ).scalar_one()
            )

    # -- retention ---------------------------------------------------------------------
    def retention_rules(self) -> list[tuple[str, str, float | None]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(RULE_TABLE.c.status, RULE_TABLE.c.job, RULE_TABLE.c.days).order_by(
                    RULE_TABLE.c.status, RULE_TABLE.c.job
                )
            )
            return [(r[0], r[1], r[2]) for r in rows]

    def replace_retention_rules(self, rules: Sequence[tuple[str, str, float | None]]) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(sa.delete(RULE_TABLE))
            if rules:
                conn.execute(
                    sa.insert(RULE_TABLE),
                    [{"status": s, "job": j, "days": d, "updated_at": now} for s, j, d in rules],
                )

    @staticmethod
    def _expired(status: str, job: str, cutoff: datetime, others: Sequence[str]) -> list[Any]:
        """Conditions for tasks of `status` (and `job`, or any job but `others`) that
        ended before `cutoff`."""
        t = TASK_TABLE.c
        where = [t.status == status, t.updated_at < cutoff]
        if job:
            state_name, _, task_name = job.rpartition(".")
            where += [t.state_name == state_name, t.task_name == task_name]
        for other in others:
            state_name, _, task_name = other.rpartition(".")
            where.append(sa.not_(sa.and_(t.state_name == state_name, t.task_name == task_name)))
        return where

    def expired_tasks(
        self, status: str, job: str, cutoff: datetime, others: Sequence[str], limit: int
    ) -> list[tuple[str, int | None, str]]:
        """(id, owner, state) of up to `limit` tasks a retention rule removes now."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(TASK_TABLE.c.id, TASK_TABLE.c.owner_id, TASK_TABLE.c.state_name)
                .where(*self._expired(status, job, cutoff, others))
                .order_by(TASK_TABLE.c.updated_at)
                .limit(limit)
            )
            return [(r[0], r[1], r[2]) for r in rows]

    def count_expired(self, status: str, job: str, cutoff: datetime, others: Sequence[str]) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(func.count())
                    .select_from(TASK_TABLE)
                    .where(*self._expired(status, job, cutoff, others))
                ).scalar_one()
            )

    def delete_tasks(self, task_ids: Sequence[str], statuses: Sequence[str]) -> int:
        """Delete these tasks (still in one of `statuses`), their events and file records,
        in one short transaction; returns how many tasks went."""
        if not task_ids:
            return 0
        ids = list(task_ids)
        with self.engine.begin() as conn:
            still = [
                r[0]
                for r in conn.execute(
                    sa.select(TASK_TABLE.c.id).where(
                        TASK_TABLE.c.id.in_(ids), TASK_TABLE.c.status.in_(list(statuses))
                    )
                )
            ]
            if not still:
                return 0
            conn.execute(sa.delete(EVENT_TABLE).where(EVENT_TABLE.c.task_id.in_(still)))
            conn.execute(sa.delete(ARTIFACT_TABLE).where(ARTIFACT_TABLE.c.task_id.in_(still)))
            gone = conn.execute(sa.delete(TASK_TABLE).where(TASK_TABLE.c.id.in_(still)))
            return int(gone.rowcount)

    def take_lease(self, name: str, holder: str, until: datetime) -> bool:
        """Hold the sweep `name` until `until`, unless another process holds it now."""
        now = utcnow()
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.update(LEASE_TABLE)
                .where(
                    LEASE_TABLE.c.name == name,
                    sa.or_(LEASE_TABLE.c.until < now, LEASE_TABLE.c.holder == holder),
                )
                .values(holder=holder, until=until)
            )
            if taken.rowcount == 1:
                return True
            exists = conn.execute(
                sa.select(LEASE_TABLE.c.name).where(LEASE_TABLE.c.name == name)
            ).first()
            if exists is not None:
                return False
        try:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(LEASE_TABLE).values(name=name, holder=holder, until=until))
            return True
        except sa.exc.IntegrityError:
            return False  # another process made it first

    # -- search ------------------------------------------------------------------------
    def index_events(self) -> int:
        """SQLite: move the timeline lines waiting for the search index into it, in
        batches of `SEARCH_INDEX_BATCH` (one transaction each); how many. A line waits from
        its insert (revision 0010's triggers note it) until this runs: before every search,
        and every `SEARCH_INDEX_EVERY` seconds after this process wrote (`_index_loop`).
        PostgreSQL's GIN index needs none of this."""
        if self.engine.dialect.name != "sqlite":
            return 0
        batch = f"SELECT id FROM {SEARCH_PENDING} ORDER BY id LIMIT {SEARCH_INDEX_BATCH}"
        with self.engine.connect() as conn:  # most of the time nothing waits: no write lock
            if conn.execute(sa.text(f"SELECT 1 FROM {SEARCH_PENDING} LIMIT 1")).first() is None:
                return 0
        done = 0
        while True:
            # The first statement writes, so the transaction holds the write lock from its
            # start: no other writer changes the list between these two statements.
            with self.engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO task_event_fts(rowid, message) SELECT e.id, e.message "
                        f"FROM task_event e WHERE e.id IN ({batch})"
                    )
                )
                moved = conn.execute(
                    sa.text(f"DELETE FROM {SEARCH_PENDING} WHERE id IN ({batch})")
                ).rowcount
            done += moved
            if moved < SEARCH_INDEX_BATCH:
                return done

    def search_events(
        self, text: str, owner_id: int | None, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Timeline lines whose message matches the words of `text` (every word), newest
        first, of `owner_id`'s tasks (None: everyone's): PostgreSQL full-text search, or
        SQLite FTS5 (brought up to date first). Returns the lines with their task's job, and
        how many match."""
        self.index_events()
        t, e = TASK_TABLE.c, EVENT_TABLE.c
        columns = [
            e.task_id,
            e.seq,
            e.timestamp,
            e.event_type,
            e.message,
            t.state_name,
            t.task_name,
            t.status,
        ]
        scope = [] if owner_id is None else [t.owner_id == owner_id]
        if self.engine.dialect.name == "postgresql":
            vector = func.to_tsvector("english", func.coalesce(e.message, ""))
            query_ts = func.plainto_tsquery("english", text)
            match = vector.op("@@")(query_ts)
            base = sa.select(*columns).join(TASK_TABLE, t.id == e.task_id).where(match, *scope)
            count = (
                sa.select(func.count())
                .select_from(EVENT_TABLE.join(TASK_TABLE, t.id == e.task_id))
                .where(match, *scope)
            )
        else:
            terms = _search_terms(text)
            if not terms:
                return [], 0
            phrase = " ".join('"' + term.replace('"', "") + '"' for term in terms)
            fts = sa.table("task_event_fts", sa.column("rowid"))
            matching = sa.text("task_event_fts MATCH :q")
            hits = sa.select(fts.c.rowid).where(matching).scalar_subquery()
            match = e.id.in_(hits)
            base = sa.select(*columns).join(TASK_TABLE, t.id == e.task_id).where(match, *scope)
            count = (
                sa.select(func.count())
                .select_from(EVENT_TABLE.join(TASK_TABLE, t.id == e.task_id))
                .where(match, *scope)
            )
            base = base.params(q=phrase)
            count = count.params(q=phrase)
        with self.engine.connect() as conn:
            rows = conn.execute(
                base.order_by(e.timestamp.desc(), e.id.desc()).limit(limit).offset(offset)
            )
            found = [dict(r._mapping) for r in rows]
            total = int(conn.execute(count).scalar_one())
        return found, total


class TaskStore(StoreExtras):
    def __init__(self, db_url: str, flush_interval: float = 0.25) -> None:
        self.engine = make_engine(db_url)
        self.flush_interval = flush_interval
        #: SQLite files: the event loop reads (`quick_reader`) and commits (the writer's
        #: `inline`) on its own connections, never waiting for a lock.
        self._reads_quick = quick_reader(self.engine) is not None
        self._writer = GroupCommitWriter(
            self.engine, TASK_TABLE, EVENT_TABLE, ARTIFACT_TABLE, inline=self._reads_quick
        )
        self._pending: dict[str, _Pending] = {}
        #: The loop that flushes what is coalesced (set by `start`), and its timer, armed
        #: while something waits.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        self._indexer: asyncio.Task[None] | None = None
        #: The event loop's own reader, made at the first read.
        self._quick: QuickRows | None = None

    # -- lifecycle -------------------------------------------------------
    def migrate(self) -> None:
        migrate(self.engine)

    async def start(self) -> None:
        self._writer.start()
        self._loop = asyncio.get_running_loop()
        if self._pending:
            self._arm_flush()
        if self.engine.dialect.name == "sqlite":
            self._indexer = asyncio.create_task(self._index_loop(), name="spyglass-search-index")

    async def close(self) -> None:
        self._loop = None
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._indexer is not None:
            self._indexer.cancel()
            await asyncio.gather(self._indexer, return_exceptions=True)
            self._indexer = None
        self.flush_pending()
        self._writer.end_turn()
        await asyncio.to_thread(self._writer.stop)
        self.engine.dispose()
        if self._quick is not None:
            self._quick.close()
            self._quick = None

    @property
    def commits(self) -> int:
        return self._writer.commits

    # -- writes ----------------------------------------------------------
    async def insert_task(
        self,
        values: dict[str, Any],
        events: Iterable[dict[str, Any]],
        also: Sequence[Any] = (),
    ) -> None:
        """Insert a task and its first timeline lines (and `also`, statements that commit in
        the same transaction, after the insert: worker mode queues it so)."""
        await self._writer.submit(Write(insert_task=values, events=list(events), also=list(also)))

    async def update_task(
        self,
        task_id: str,
        values: dict[str, Any],
        events: Iterable[dict[str, Any]] = (),
        also: Sequence[Any] = (),
    ) -> None:
        """Write at once, together with anything still coalesced for this task (and `also`,
        statements on other tables that commit in the same transaction)."""
        pending = self._pending.pop(task_id, None)
        merged = {**pending.values, **values} if pending else dict(values)
        rows = [*pending.events, *events] if pending else list(events)
        await self._writer.submit(
            Write(task_id=task_id, values=merged, events=rows, also=list(also))
        )

    # -- writes that move credits with them (one transaction each) -------------------
    def insert_charged(
        self,
        values: dict[str, Any],
        events: list[dict[str, Any]],
        owner_id: int,
        amount: int,
        also: Sequence[Any] = (),
    ) -> int | None:
        """Charge `owner_id` `amount` credits and insert the task (then run `also`), in one
        transaction.

        Returns None once both are committed, or the owner's balance when it does not
        cover `amount` (then nothing is written).
        """
        with self.engine.begin() as conn:
            if conn.execute(credits.charge(owner_id, amount)).rowcount != 1:
                return credits.balance(conn, owner_id)
            conn.execute(sa.insert(TASK_TABLE), [values])
            if events:
                conn.execute(sa.insert(EVENT_TABLE), events)
            for statement in also:
                conn.execute(statement)
        return None

    def claim_waiting(
        self,
        task_id: str,
        values: dict[str, Any],
        *,
        owner_id: int | None,
        breakdown: dict[str, int],
        what: str,
    ) -> Claim:
        """Take a task waiting for its files (CREATED/UPLOADING) to `values` and charge its
        owner the `breakdown`'s total, in one transaction: of concurrent callers exactly one
        wins, and a loser changes nothing. When the credits fall short the task ends FAILED
        (BILLING_INSUFFICIENT_CREDITS) in that same transaction and nothing is charged."""
        amount = sum(breakdown.values())
        with self.engine.begin() as conn:
            # The status update comes first: it takes the write lock (SQLite) or the row
            # lock (PostgreSQL) before anything is read, so a loser waits, then misses.
            taken = conn.execute(
                sa.update(TASK_TABLE)
                .where(TASK_TABLE.c.id == task_id, TASK_TABLE.c.status.in_(WAITING))
                .values(**values)
            )
            if taken.rowcount != 1:
                status = conn.execute(
                    sa.select(TASK_TABLE.c.status).where(TASK_TABLE.c.id == task_id)
                ).scalar_one_or_none()
                return Claim(False, status)
            if not amount or owner_id is None:
                return Claim(True, values["status"])
            if conn.execute(credits.charge(owner_id, amount)).rowcount == 1:
                return Claim(True, values["status"])
            refused = credits.insufficient(credits.balance(conn, owner_id), breakdown, what)
            now = utcnow()
            failed = TaskStatus.FAILED.value
            conn.execute(
                sa.update(TASK_TABLE)
                .where(TASK_TABLE.c.id == task_id)
                .values(
                    status=failed,
                    message=refused.message,
                    error_code=refused.code,
                    error_message=refused.message,
                    failed_at=now,
                    updated_at=now,
                    worker_id=None,
                    lease_expires_at=None,
                )
            )
            self._add_event(
                conn,
                task_id,
                "error",
                refused.message,
                {"status": failed, "error_code": refused.code},
            )
            return Claim(False, failed, refused)

    def set_waiting(
        self,
        task_id: str,
        expect: Sequence[str],
        values: dict[str, Any],
        event_type: str,
        message: str,
    ) -> bool:
        """Move a task no runner holds from one of the `expect`ed statuses to `values`, with
        a timeline line, in one transaction; False (nothing written) if it was not in them."""
        with self.engine.begin() as conn:
            moved = conn.execute(
                sa.update(TASK_TABLE)
                .where(TASK_TABLE.c.id == task_id, TASK_TABLE.c.status.in_(list(expect)))
                .values(**values)
            )
            if moved.rowcount != 1:
                return False
            self._add_event(conn, task_id, event_type, message, {"status": values["status"]})
            return True

    def _add_event(
        self, conn: sa.Connection, task_id: str, event_type: str, message: str, data: Any
    ) -> None:
        """Append to the timeline of a task whose row this transaction has locked."""
        seq = conn.execute(
            sa.select(func.coalesce(func.max(EVENT_TABLE.c.seq), 0)).where(
                EVENT_TABLE.c.task_id == task_id
            )
        ).scalar_one()
        conn.execute(
            sa.insert(EVENT_TABLE),
            [
                {
                    "task_id": task_id,
                    "seq": seq + 1,
                    "timestamp": utcnow(),
                    "event_type": event_type,
                    "message": message,
                    "data": data,
                }
            ],
        )

    def update_task_soon(
        self, task_id: str, values: dict[str, Any], events: Iterable[dict[str, Any]] = ()
    ) -> None:
        """Coalesce: only the latest values reach the database at the next flush, at most
        `flush_interval` seconds from now (called on the store's loop)."""
        if not self._pending and self._flush_timer is None and self._loop is not None:
            self._arm_flush()
        pending = self._pending.setdefault(task_id, _Pending())
        pending.values.update(values)
        pending.events.extend(events)

    def _arm_flush(self) -> None:
        assert self._loop is not None
        self._flush_timer = self._loop.call_later(self.flush_interval, self._flush_due)

    def _flush_due(self) -> None:
        self._flush_timer = None
        try:
            self.flush_pending()
        except Exception:  # the next coalesced write arms the timer again
            log.exception("progress flush failed")

    def flush_pending(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        for task_id, pending in batch.items():
            self._writer.submit_nowait(
                Write(task_id=task_id, values=pending.values, events=pending.events)
            )

    async def flush_task(self, task_id: str) -> None:
        """Write what is coalesced for one task now, and wait until it is committed (a read
        that follows sees every line reported so far)."""
        pending = self._pending.pop(task_id, None)
        # Submitted even with nothing pending: the periodic flush may have queued this
        # task's lines a moment ago, and the writer commits in order, so once this write is
        # committed so are they (an empty write commits nothing and costs no transaction).
        write = Write(task_id=task_id)
        if pending is not None:
            write.values, write.events = pending.values, pending.events
        await self._writer.submit(write)

    async def _index_loop(self) -> None:
        """Every `SEARCH_INDEX_EVERY` seconds, index what waits, if this process committed
        anything since the last pass (the first pass always looks): an idle server asks
        nothing. Lines written otherwise (another process, a recovery's own transaction)
        wait for the next pass here, that process's, or the next search, which indexes
        first."""
        seen = -1
        while True:
            await asyncio.sleep(SEARCH_INDEX_EVERY)
            commits = self._writer.commits
            if commits == seen:
                continue
            seen = commits
            try:
                await asyncio.to_thread(self.index_events)
            except Exception:  # the next round or the next search tries again
                log.exception("updating the search index failed")
                seen = -1

    async def delete_task(self, task_id: str) -> None:
        self._pending.pop(task_id, None)
        await self._writer.submit(Write(delete_task=task_id))

    # -- reads -----------------------------------------------------------
    async def _read(self, fn: Callable[[Session], T]) -> T:
        def run() -> T:
            with Session(self.engine, expire_on_commit=False) as session:
                return fn(session)

        return await asyncio.to_thread(run)

    async def get_row(
        self, task_id: str, columns: tuple[str, ...] | None = None
    ) -> dict[str, Any] | None:
        """A task's stored row (one Core query: no ORM object is built); only `columns`
        (their keys), when named."""

        def run(engine: Engine) -> dict[str, Any] | None:
            with engine.connect() as conn:
                found = conn.execute(_row_by_id(columns), {"task_id": task_id}).first()
            return dict(found._mapping) if found is not None else None

        if self._reads_quick:
            try:
                if self._quick is None or self._quick.pid != pid.current():
                    reader = quick_reader(self.engine)
                    assert reader is not None
                    self._quick = QuickRows(reader)
                return self._quick.get(task_id, columns)
            except (sa.exc.OperationalError, sqlite3.OperationalError):
                pass  # SQLite would have to wait (a lock): a thread waits instead
        return await asyncio.to_thread(run, self.engine)

    async def get_task(self, task_id: str) -> Task | None:
        return await self._read(lambda s: s.get(Task, task_id))

    async def list_tasks(
        self, flt: TaskFilter, limit: int = 20, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of stored rows, newest first (each with its `input_filename`), and how many
        match in all."""
        conditions = _task_conditions(flt)
        query = (
            sa.select(TASK_TABLE, _INPUT_FILENAME)
            .where(*conditions)
            .order_by(TASK_TABLE.c.created_at.desc(), TASK_TABLE.c.id)
            .offset(offset)
            .limit(limit)
        )
        count = sa.select(func.count()).select_from(TASK_TABLE).where(*conditions)

        def run() -> tuple[list[dict[str, Any]], int]:
            with self.engine.connect() as conn:
                rows = [dict(r._mapping) for r in conn.execute(query)]
                total = conn.execute(count).scalar_one()
            return rows, int(total)

        return await asyncio.to_thread(run)

    async def get_events(
        self, task_id: str, after_seq: int = 0, limit: int = 1000
    ) -> list[TaskEvent]:
        def run(session: Session) -> list[TaskEvent]:
            query = (
                select(TaskEvent)
                .where(TaskEvent.task_id == task_id, TaskEvent.seq > after_seq)
                .order_by(col(TaskEvent.seq))
                .limit(limit)
            )
            return list(session.exec(query).all())

        return await self._read(run)

    async def get_task_and_seq(self, task_id: str) -> tuple[dict[str, Any], int] | None:
        """A task's row and the last number of its timeline, in one query."""
        last = (
            sa.select(func.max(EVENT_TABLE.c.seq))
            .where(EVENT_TABLE.c.task_id == task_id)
            .scalar_subquery()
        )

        def run() -> tuple[dict[str, Any], int] | None:
            with self.engine.connect() as conn:
                found = conn.execute(
                    sa.select(TASK_TABLE, last.label("_last_seq")).where(TASK_TABLE.c.id == task_id)
                ).first()
            if found is None:
                return None
            row = dict(found._mapping)
            return row, int(row.pop("_last_seq") or 0)

        return await asyncio.to_thread(run)

    async def next_seq(self, task_id: str) -> int:
        """The next timeline number of a task no runner holds (live tasks count their own)."""

        def run(session: Session) -> int:
            last = session.exec(
                select(func.max(TaskEvent.seq)).where(TaskEvent.task_id == task_id)
            ).one()
            return int(last or 0) + 1

        return await self._read(run)

    async def spent(self, task_id: str, cost: int) -> int:
        """What the finished units of the task's paid work earned (`credits.earned`)."""

        def run(session: Session) -> int:
            with session.connection() as conn:
                return _spent(conn, task_id, cost)

        return await self._read(run)

    async def uploads_older_than(self, cutoff: datetime) -> list[str]:
        def run(session: Session) -> list[str]:
            query = select(Task.id).where(
                Task.status == TaskStatus.UPLOADING.value, col(Task.upload_started_at) < cutoff
            )
            return list(session.exec(query).all())

        return await self._read(run)

    # -- artifacts -------------------------------------------------------
    async def replace_inputs(self, task_id: str, artifacts: list[dict[str, Any]]) -> None:
        """The task's input files become exactly these (a new upload replaces the old)."""

        def run() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.delete(ARTIFACT_TABLE).where(
                        ARTIFACT_TABLE.c.task_id == task_id, ARTIFACT_TABLE.c.role == "input"
                    )
                )
                if artifacts:
                    conn.execute(sa.insert(ARTIFACT_TABLE), artifacts)

        await asyncio.to_thread(run)

    async def add_output(self, artifact: dict[str, Any]) -> None:
        def run() -> None:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.delete(ARTIFACT_TABLE).where(
                        ARTIFACT_TABLE.c.task_id == artifact["task_id"],
                        ARTIFACT_TABLE.c.role == "output",
                        ARTIFACT_TABLE.c.key == artifact["key"],
                    )
                )
                conn.execute(sa.insert(ARTIFACT_TABLE), [artifact])

        await asyncio.to_thread(run)

    async def get_artifacts(self, task_id: str, role: str | None = None) -> list[Artifact]:
        def run(session: Session) -> list[Artifact]:
            query = select(Artifact).where(Artifact.task_id == task_id)
            if role is not None:
                query = query.where(Artifact.role == role)
            return list(session.exec(query.order_by(col(Artifact.id))).all())

        return await self._read(run)

    async def stats(self, since: datetime) -> dict[str, Any]:
        """Running, queued, failed since `since`, mean run time of completions since `since`."""

        def run(session: Session) -> dict[str, Any]:
            def count(*conds: Any) -> int:
                return int(session.exec(select(func.count()).select_from(Task).where(*conds)).one())

            mean = session.exec(
                select(func.avg(Task.execution_time_ms)).where(
                    Task.status == TaskStatus.COMPLETED.value, col(Task.completed_at) >= since
                )
            ).one()
            return {
                "running": count(Task.status == TaskStatus.PROCESSING.value),
                "queued": count(Task.status == TaskStatus.PENDING.value),
                "failed": count(
                    Task.status == TaskStatus.FAILED.value, col(Task.failed_at) >= since
                ),
                "mean_run_ms": float(mean) if mean is not None else None,
            }

        return await self._read(run)

    def _epoch_seconds(self, column: Any) -> Any:
        """A stored (naive UTC) time as whole seconds since 1970, in this database's SQL."""
        if self.engine.dialect.name == "sqlite":
            return sa.cast(func.strftime("%s", column), sa.Integer)
        return sa.cast(func.floor(func.extract("epoch", column)), sa.BigInteger)

    async def activity(
        self, start: datetime, until: datetime, bucket_seconds: int
    ) -> list[tuple[str, int, int]]:
        """(`started` | `completed` | `failed`, bucket number, count) for the buckets of
        `bucket_seconds` from `start` (a whole number of seconds since 1970) to `until`: one
        grouped query. A task's `updated_at` is never before any of its times, so the
        (status, updated_at) index bounds what is read: for the runs started, one range per
        status."""
        origin = int(start.timestamp())
        series = {
            "started": TASK_TABLE.c.processing_started_at,
            "completed": TASK_TABLE.c.completed_at,
            "failed": TASK_TABLE.c.failed_at,
        }
        parts = [
            sa.select(
                sa.literal_column(f"'{kind}'").label("kind"),
                ((self._epoch_seconds(column) - origin) // bucket_seconds).label("bucket"),
            ).where(
                TASK_TABLE.c.status.in_(_EVERY_STATUS)
                if kind == "started"
                else TASK_TABLE.c.status == kind.upper(),
                TASK_TABLE.c.updated_at >= start,
                column >= start,
                column < until,
            )
            for kind, column in series.items()
        ]
        events = sa.union_all(*parts).subquery()
        query = sa.select(events.c.kind, events.c.bucket, func.count()).group_by(
            events.c.kind, events.c.bucket
        )

        def run() -> list[tuple[str, int, int]]:
            with self.engine.connect() as conn:
                return [(str(k), int(b), int(n)) for k, b, n in conn.execute(query)]

        return await asyncio.to_thread(run)

    async def job_run_stats(
        self, since: datetime
    ) -> list[tuple[str, str, int, int, int | None, int | None]]:
        """Per job, of its runs that ended (COMPLETED or FAILED) since `since`: (state, job,
        completed, failed, p50 ms, p95 ms of the completed ones), nearest-rank percentiles
        from a window function: one query (SQLite and PostgreSQL alike)."""
        t = TASK_TABLE
        timed = sa.and_(
            t.c.status == TaskStatus.COMPLETED.value, t.c.execution_time_ms.is_not(None)
        )
        ok = sa.case((timed, 1), else_=0)
        group = [t.c.state_name, t.c.task_name, ok]
        ended_at = func.coalesce(t.c.completed_at, t.c.failed_at)
        ranked = (
            sa.select(
                t.c.state_name,
                t.c.task_name,
                t.c.status,
                t.c.execution_time_ms.label("ms"),
                ok.label("ok"),
                func.row_number()
                .over(partition_by=group, order_by=t.c.execution_time_ms)
                .label("rn"),
                func.count().over(partition_by=group).label("n"),
            )
            .where(
                t.c.updated_at >= since,
                t.c.status.in_([TaskStatus.COMPLETED.value, TaskStatus.FAILED.value]),
                ended_at >= since,
            )
            .subquery()
        )

        def rank_at(percent: int) -> Any:
            reached = sa.and_(ranked.c.ok == 1, ranked.c.rn * 100 >= ranked.c.n * percent)
            return func.min(sa.case((reached, ranked.c.ms)))

        def count_of(status: TaskStatus) -> Any:
            return func.sum(sa.case((ranked.c.status == status.value, 1), else_=0))

        query = (
            sa.select(
                ranked.c.state_name,
                ranked.c.task_name,
                count_of(TaskStatus.COMPLETED),
                count_of(TaskStatus.FAILED),
                rank_at(50),
                rank_at(95),
            )
            .group_by(ranked.c.state_name, ranked.c.task_name)
            .order_by(ranked.c.state_name, ranked.c.task_name)
        )

        def run() -> list[tuple[str, str, int, int, int | None, int | None]]:
            with self.engine.connect() as conn:
                return [
                    (
                        str(s),
                        str(j),
                        int(c or 0),
                        int(f or 0),
                        None if p50 is None else int(p50),
                        None if p95 is None else int(p95),
                    )
                    for s, j, c, f, p50, p95 in conn.execute(query)
                ]

        return await asyncio.to_thread(run)

    # -- leases and recovery ------------------------------------------------
    def renew_leases(self, worker_id: str, task_ids: list[str], until: datetime) -> list[str]:
        """Extend this worker's leases on its running tasks; returns the ids it still holds
        (a task another worker took over is not among them)."""
        if not task_ids:
            return []
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.update(TASK_TABLE)
                .where(
                    TASK_TABLE.c.id.in_(task_ids),
                    TASK_TABLE.c.worker_id == worker_id,
                    TASK_TABLE.c.status.in_([s.value for s in ACTIVE_STATUSES]),
                )
                .values(lease_expires_at=until)
                .returning(TASK_TABLE.c.id)
            )
            return [row[0] for row in rows]

    def _lapsed(self, now: datetime, everyone: bool) -> Any:
        # A task in Procrastinate's queue is its to recover (worker heartbeats), never ours.
        active = sa.and_(
            TASK_TABLE.c.status.in_([s.value for s in ACTIVE_STATUSES]),
            TASK_TABLE.c.queue_job_id.is_(None),
        )
        if everyone:
            return active
        expiry = TASK_TABLE.c.lease_expires_at
        return sa.and_(active, sa.or_(expiry.is_(None), expiry < now))

    def lapsed_tasks(self, now: datetime, *, everyone: bool = False, limit: int = 100) -> list[str]:
        """Active tasks whose worker stopped renewing their lease (`everyone`: all active
        tasks, when this process is known to be the only one)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(TASK_TABLE.c.id).where(self._lapsed(now, everyone)).limit(limit)
            )
            return [row[0] for row in rows]

    def claim(
        self, task_id: str, worker_id: str, now: datetime, until: datetime, *, everyone: bool
    ) -> dict[str, Any] | None:
        """Take over a lapsed task, atomically: of several workers trying, one gets its row."""
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.update(TASK_TABLE)
                .where(TASK_TABLE.c.id == task_id, self._lapsed(now, everyone))
                .values(worker_id=worker_id, lease_expires_at=until)
            )
            if taken.rowcount != 1:
                return None
            row = conn.execute(sa.select(TASK_TABLE).where(TASK_TABLE.c.id == task_id)).one()
            return dict(row._mapping)

    def interrupt(self, task_id: str, previous_status: str) -> None:
        """End a claimed task FAILED/INTERRUPTED (retryable), with a timeline line."""
        self.end_claimed(
            task_id,
            TaskStatus.FAILED,
            INTERRUPTED_MESSAGE,
            error_code=ErrorCode.INTERRUPTED.value,
            data={"previous_status": previous_status, "retryable": True},
        )

    def end_claimed(
        self,
        task_id: str,
        status: TaskStatus,
        message: str,
        *,
        error_code: str | None = None,
        data: dict[str, Any] | None = None,
        only_active: bool = False,
    ) -> bool:
        """End a task this worker claimed (its own worker is gone), with a timeline line and,
        where the credits rule says so, its owner's refund: all in one transaction.

        `only_active`: only if it is still PENDING/PROCESSING (False if it was not)."""
        now = utcnow()
        stamp = {TaskStatus.CANCELLED: "cancelled_at", TaskStatus.FAILED: "failed_at"}[status]
        where = [TASK_TABLE.c.id == task_id]
        if only_active:
            where.append(TASK_TABLE.c.status.in_([s.value for s in ACTIVE_STATUSES]))
        with self.engine.begin() as conn:
            ended = conn.execute(
                sa.update(TASK_TABLE)
                .where(*where)
                .values(
                    status=status.value,
                    error_code=error_code,
                    error_message=message if error_code else None,
                    message=message,
                    updated_at=now,
                    lease_expires_at=None,
                    **{stamp: now},
                )
            )
            if ended.rowcount != 1:
                return False
            event = {"status": status.value, **(data or {})}
            if error_code:
                event["error_code"] = error_code
            owner_id, cost = conn.execute(
                sa.select(TASK_TABLE.c.owner_id, TASK_TABLE.c.cost).where(
                    TASK_TABLE.c.id == task_id
                )
            ).one()
            owned = {"owner_id": owner_id, "cost": cost}
            refund = credits.refund_due(owned, status.value, _spent(conn, task_id, int(cost or 0)))
            line = message
            if refund:
                conn.execute(credits.give_back(owner_id, refund))
                event["refunded"] = refund
                agents = conn.execute(
                    sa.select(TASK_TABLE.c.agents).where(TASK_TABLE.c.id == task_id)
                ).scalar_one()
                line = f"{message} · {credits.refund_note(refund, agents, _units(conn, task_id))}"
            event_type = "error" if error_code else "status"
            self._add_event(conn, task_id, event_type, line, event)
        return True

    def requeue(self, task_id: str, hand_back: Any, values: dict[str, Any], message: str) -> bool:
        """Run a task again whose worker stopped: hand its queue job back (`hand_back`, a
        statement that returns a row when it did) and mark the task `values` (PENDING, its
        next attempt), in one transaction, so the worker that takes the job (at once,
        perhaps) reads the new attempt. False, and nothing written, if the job was not
        handed back (another worker took it first)."""
        with self.engine.begin() as conn:
            if conn.execute(hand_back).first() is None:
                return False
            updated = conn.execute(
                sa.update(TASK_TABLE)
                .where(
                    TASK_TABLE.c.id == task_id,
                    TASK_TABLE.c.status.in_([s.value for s in ACTIVE_STATUSES]),
                )
                .values(**values)
            )
            if updated.rowcount == 1:
                self._add_event(conn, task_id, "status", message, {"status": values["status"]})
        return True

    async def end_if_active(
        self,
        task_id: str,
        status: TaskStatus,
        message: str,
        *,
        error_code: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> bool:
        """End a task no process runs (a queued one, in worker mode) if it is still
        active, refunding by the rule; False if it had ended already."""
        return await asyncio.to_thread(
            self.end_claimed,
            task_id,
            status,
            message,
            error_code=error_code,
            data=data,
            only_active=True,
        )

    # -- worker mode: who runs, what waits -------------------------------------------
    async def record_worker(self, info: dict[str, Any]) -> None:
        def run() -> None:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(WORKER_TABLE).where(WORKER_TABLE.c.id == info["id"]))
                conn.execute(sa.insert(WORKER_TABLE).values(**info))

        await asyncio.to_thread(run)

    async def forget_worker(self, worker_id: int) -> None:
        def run() -> None:
            with self.engine.begin() as conn:
                conn.execute(sa.delete(WORKER_TABLE).where(WORKER_TABLE.c.id == worker_id))

        await asyncio.to_thread(run)

    async def worker_infos(self, ids: Sequence[int]) -> dict[int, WorkerInfo]:
        def run(session: Session) -> dict[int, WorkerInfo]:
            found = session.exec(select(WorkerInfo).where(col(WorkerInfo.id).in_(list(ids))))
            return {w.id: w for w in found}

        return await self._read(run) if ids else {}

    async def queue_depth(self) -> list[tuple[str, str, str, int]]:
        """PENDING tasks by (state, job, queue): what waits to run."""

        def run(session: Session) -> list[tuple[str, str, str, int]]:
            rows = session.execute(
                sa.select(
                    TASK_TABLE.c.state_name,
                    TASK_TABLE.c.task_name,
                    TASK_TABLE.c.queue,
                    func.count(),
                )
                .where(TASK_TABLE.c.status == TaskStatus.PENDING.value)
                .group_by(TASK_TABLE.c.state_name, TASK_TABLE.c.task_name, TASK_TABLE.c.queue)
            )
            return [(str(a), str(b), str(c), int(n)) for a, b, c, n in rows]

        return await self._read(run)

    def status_counts(self) -> dict[str, int]:
        """How many tasks are in each status (for /metrics)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(TASK_TABLE.c.status, func.count()).group_by(TASK_TABLE.c.status)
            )
            return {status: int(count) for status, count in rows}


def _spent(conn: Any, task_id: str, cost: int) -> int:
    """What the `agent_completed` events of a task earned, capped at its cost."""
    rows = conn.execute(
        sa.select(EVENT_TABLE.c.data).where(
            EVENT_TABLE.c.task_id == task_id, EVENT_TABLE.c.event_type == credits.WORK_DONE
        )
    )
    return min(cost, sum(credits.earned(data, cost) for (data,) in rows))


def _units(conn: Any, task_id: str) -> list[str]:
    """The agents of a task whose work finished (their `agent_completed` events)."""
    rows = conn.execute(
        sa.select(EVENT_TABLE.c.data).where(
            EVENT_TABLE.c.task_id == task_id, EVENT_TABLE.c.event_type == credits.WORK_DONE
        )
    )
    return [d["agent"] for (d,) in rows if isinstance(d, dict) and isinstance(d.get("agent"), str)]
