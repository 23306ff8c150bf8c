"""SQLModel tables of the task engine: a task and its ordered event timeline."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Column, Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_task_id() -> str:
    """A random (version 4) UUID in its usual text form, as `str(uuid.uuid4())` writes it
    from the same 16 bytes of `os.urandom`, without building a `UUID` on the way (a start
    makes one: 0.75 against 1.9 µs)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


#: The first hex digit of a UUID's clock_seq_hi, with the RFC 4122 variant set (10xx).
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (portable across SQLite and PostgreSQL), returns aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _datetime_text(value: datetime | None) -> str | None:
    """`UTCDateTime`'s bind processor on SQLite in one call: `process_bind_param`, then
    SQLAlchemy's SQLite `DATETIME` text (`YYYY-MM-DD HH:MM:SS.ffffff`)."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # utcnow()'s: the text without its "+00:00"
        return value.isoformat(" ", "microseconds")[:26]
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(" ", "microseconds")


def _datetime_of_text(value: str | None) -> datetime | None:
    """`UTCDateTime`'s result processor on SQLite in one call: SQLAlchemy's SQLite `DATETIME`
    parse (`datetime.fromisoformat`), then `process_result_value`."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def sqlite_bind_processor(column: sa.Column[Any], dialect: Any) -> Callable[[Any], Any] | None:
    """The bind processor SQLAlchemy uses for `column` on SQLite, where one call does the same
    as its chain: the task tables' direct writes (`spyglass.tasks.dbwriter`, which asks each
    processor once what it writes for None)."""
    if isinstance(column.type, UTCDateTime):
        return _datetime_text
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def sqlite_result_processor(column: sa.Column[Any], dialect: Any) -> Callable[[Any], Any] | None:
    """The result processor SQLAlchemy uses for `column` on SQLite, where one call does the
    same as its chain: the loop's quick reads of a task (`spyglass.tasks.store.QuickRows`). A
    JSON text `null` is `None`, without the decoder."""
    if isinstance(column.type, UTCDateTime):
        return _datetime_of_text
    process = column.type.dialect_impl(dialect).result_processor(dialect, None)
    if isinstance(column.type, sa.JSON) and process is not None:
        decode = process
        return lambda value: None if value == "null" else decode(value)
    return process


def _ts(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


def _json() -> Any:
    return Field(default=None, sa_column=Column(sa.JSON(), nullable=True))


class Task(SQLModel, table=True):
    __tablename__ = "task"
    __table_args__ = (
        sa.Index("ix_task_owner_created", "owner_id", sa.text("created_at DESC")),
        sa.Index("ix_task_state_job", "state_name", "task_name"),
        # Admins' lists (everyone's, newest first, within a time range) and figures (what
        # changed in the last hour or day, by status: a task's updated_at is never before
        # its times; the figures of every status ask for each, one range per status).
        sa.Index("ix_task_created", "created_at"),
        sa.Index("ix_task_status_updated", "status", "updated_at"),
    )

    id: str = Field(default_factory=new_task_id, primary_key=True, max_length=36)
    state_name: str = Field(max_length=200)
    task_name: str = Field(max_length=200)
    tool_id: str | None = Field(default=None, max_length=100)
    agents: list[str] | None = _json()
    status: str = Field(max_length=20)
    progress: float = 0.0
    message: str | None = None
    input_args: dict[str, Any] | None = _json()
    result: Any = _json()
    error_code: str | None = Field(default=None, max_length=50)
    error_message: str | None = None
    origin: str = Field(default="direct", max_length=20)
    owner_id: int | None = None
    client_id: str | None = Field(default=None, max_length=64)
    retry_of: str | None = Field(default=None, max_length=36)
    attempt: int = 1
    cost: int = 0
    created_at: datetime = _ts(nullable=False)
    upload_started_at: datetime | None = _ts()
    processing_started_at: datetime | None = _ts()
    completed_at: datetime | None = _ts()
    failed_at: datetime | None = _ts()
    cancelled_at: datetime | None = _ts()
    updated_at: datetime = _ts(nullable=False)
    execution_time_ms: int | None = None
    #: The worker running the task (PENDING/PROCESSING) and until when its lease holds;
    #: a task whose lease lapsed lost its worker and is recovered by another one.
    worker_id: str | None = Field(default=None, max_length=64)
    lease_expires_at: datetime | None = _ts()
    #: Scheduling: the queue and priority it waits in (higher first), and when it may
    #: start at the earliest (`start_at` / `start_in`).
    queue: str = Field(default="default", max_length=64)
    priority: int = 0
    scheduled_at: datetime | None = _ts()
    #: Worker mode: the Procrastinate job that runs it (a task with one is Procrastinate's
    #: to run and recover, never the leases').
    queue_job_id: int | None = Field(default=None, sa_column=Column(sa.BigInteger()))


class TaskEvent(SQLModel, table=True):
    __tablename__ = "task_event"
    __table_args__ = (sa.UniqueConstraint("task_id", "seq", name="uq_task_event_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(
        sa_column=Column(
            sa.String(36), sa.ForeignKey("task.id", ondelete="CASCADE"), nullable=False
        )
    )
    seq: int
    timestamp: datetime = _ts(nullable=False)
    event_type: str = Field(max_length=30)
    message: str | None = None
    data: dict[str, Any] | None = _json()


class Artifact(SQLModel, table=True):
    """A file of a task in storage: an uploaded input or a produced output."""

    __tablename__ = "artifact"
    __table_args__ = (
        sa.UniqueConstraint("task_id", "role", "key", name="uq_artifact_role_key"),
        sa.Index("ix_artifact_task", "task_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(
        sa_column=Column(
            sa.String(36), sa.ForeignKey("task.id", ondelete="CASCADE"), nullable=False
        )
    )
    role: str = Field(max_length=10)  # input | output
    key: str = Field(max_length=50)  # primary, baseline, parameters, report, cleaned …
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=120)
    size_bytes: int | None = None
    storage_key: str = Field(max_length=500)
    type: str = Field(default="data", max_length=10)  # report | data | other
    created_at: datetime = _ts(nullable=False)


class WorkerInfo(SQLModel, table=True):
    """A `spyglass worker` process (worker mode), as admins see it. Procrastinate's own
    `procrastinate_workers` row (same id) holds its heartbeat."""

    __tablename__ = "worker_info"

    id: int = Field(sa_column=Column(sa.BigInteger(), primary_key=True, autoincrement=False))
    host: str = Field(max_length=200)
    pid: int
    started_at: datetime = _ts(nullable=False)
    concurrency: int
    queues: list[str] | None = _json()


class RetentionRule(SQLModel, table=True):
    """How long finished tasks of one status are kept (set by admins): `days` None keeps
    them for ever. `job` (`state.job`) narrows a rule to one job; "" is every job, and a
    job's own rule wins over it."""

    __tablename__ = "retention_rule"
    __table_args__ = (sa.UniqueConstraint("status", "job", name="uq_retention_status_job"),)

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(max_length=20)
    job: str = Field(default="", max_length=401)
    days: float | None = None
    updated_at: datetime = _ts(nullable=False)


class SweepLease(SQLModel, table=True):
    """Which process runs a periodic sweep now (one at a time across every process)."""

    __tablename__ = "sweep_lease"

    name: str = Field(primary_key=True, max_length=40)
    holder: str = Field(max_length=64)
    until: datetime = _ts(nullable=False)
