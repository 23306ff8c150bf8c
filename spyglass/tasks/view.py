"""What the engine gives everyone outside it: frozen, typed records of tasks, their timeline
lines and their files, and the query that lists tasks.

Nothing outside `spyglass.tasks` sees the engine's rows, its store, runner or bus: routes,
pages and tools read these records and act through the engine's methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from spyglass.tasks.status import TaskStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskView:
    """One task as it is now (the live copy where it runs in this process)."""

    id: str
    state_name: str
    task_name: str
    status: TaskStatus
    progress: float = 0.0
    tool_id: str | None = None
    agents: tuple[str, ...] = ()
    message: str | None = None
    input_args: Mapping[str, Any] | None = None
    result: Any = None
    error_code: str | None = None
    error_message: str | None = None
    #: How it was started: `direct`, `token`, `api`, `page`, `cron`.
    origin: str = "direct"
    owner_id: int | None = None
    client_id: str | None = None
    retry_of: str | None = None
    attempt: int = 1
    cost: int = 0
    queue: str = "default"
    priority: int = 0
    created_at: datetime | None = None
    upload_started_at: datetime | None = None
    processing_started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    cancelled_at: datetime | None = None
    updated_at: datetime | None = None
    #: When a run scheduled for later may start (`start_at` / `start_in`).
    scheduled_at: datetime | None = None
    execution_time_ms: int | None = None
    #: The name of its main input file (a data tool's `primary`), where the engine read it
    #: with the task (`list_tasks`); None for a job, or where it was not read.
    input_filename: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> TaskView:
        """The view of an engine row (a stored task's columns, or a live task's copy)."""
        return cls(
            id=row["id"],
            state_name=row["state_name"],
            task_name=row["task_name"],
            status=TaskStatus(row["status"]),
            progress=float(row.get("progress") or 0.0),
            tool_id=row.get("tool_id"),
            agents=tuple(row.get("agents") or ()),
            message=row.get("message"),
            input_args=row.get("input_args"),
            result=row.get("result"),
            error_code=row.get("error_code"),
            error_message=row.get("error_message"),
            origin=row.get("origin") or "direct",
            owner_id=row.get("owner_id"),
            client_id=row.get("client_id"),
            retry_of=row.get("retry_of"),
            attempt=row.get("attempt") or 1,
            cost=row.get("cost") or 0,
            queue=row.get("queue") or "default",
            priority=row.get("priority") or 0,
            created_at=row.get("created_at"),
            upload_started_at=row.get("upload_started_at"),
            processing_started_at=row.get("processing_started_at"),
            completed_at=row.get("completed_at"),
            failed_at=row.get("failed_at"),
            cancelled_at=row.get("cancelled_at"),
            updated_at=row.get("updated_at"),
            scheduled_at=row.get("scheduled_at"),
            execution_time_ms=row.get("execution_time_ms"),
            input_filename=row.get("input_filename"),
        )

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def is_tool(self) -> bool:
        """A data tool's run (files in, files out), not a declared job."""
        return bool(self.tool_id)


@dataclass(frozen=True, slots=True)
class EventView:
    """One line of a task's timeline."""

    seq: int
    timestamp: datetime | None
    event_type: str
    message: str | None
    data: Any


@dataclass(frozen=True, slots=True)
class FileView:
    """A stored file of a task: an uploaded input or a produced output."""

    key: str
    filename: str
    content_type: str
    size_bytes: int | None
    storage_key: str
    type: str
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Which tasks a list holds. Whose they are comes from the viewer (the access policy):
    `owner_id` narrows an admin's list to one user and is ignored for anyone else.

    Text matches ignore case. `search` is what a search box holds: a task whose id starts
    with it, or one of whose input files has it in its name."""

    statuses: Sequence[TaskStatus] = ()
    state_name: str | None = None
    task_name: str | None = None
    tool_id: str | None = None
    owner_id: int | None = None
    #: The task's id starts with this.
    id_prefix: str | None = None
    #: The name of one of its input files contains this.
    filename: str | None = None
    #: An id prefix or part of an input file's name.
    search: str | None = None
    #: Created at or after this instant (aware).
    created_after: datetime | None = None
    #: Created before this instant (aware).
    created_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskPage:
    """A page of tasks, newest first, and how many match in all."""

    tasks: tuple[TaskView, ...]
    total: int
    offset: int = 0
    limit: int = 20

    @property
    def has_more(self) -> bool:
        return self.offset + len(self.tasks) < self.total


@dataclass(frozen=True, slots=True)
class WorkerView:
    """A `spyglass worker` that beats (worker mode), as admins see it."""

    id: int
    host: str | None
    pid: int | None
    started_at: datetime | None
    last_heartbeat: datetime | None
    concurrency: int | None
    queues: tuple[str, ...] = ()
    running: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """How many runs of one job wait (PENDING) in one queue."""

    state_name: str
    task_name: str
    queue: str
    pending: int


class TaskChange:
    """A task changed (for metrics and webhooks): its id, job and attempt, and its view,
    built from a copy of its row taken at the change on first use. Most changes are only
    counted or let pass (a progress hook throttles), and building a view for each would
    cost more than that."""

    __slots__ = ("_row", "_task", "attempt", "job", "task_id")

    def __init__(self, row: Mapping[str, Any]) -> None:
        self._row = dict(row)
        self._task: TaskView | None = None
        self.task_id: str = row["id"]
        self.job = f"{row['state_name']}.{row['task_name']}"
        self.attempt: int = row.get("attempt") or 1

    @property
    def task(self) -> TaskView:
        if self._task is None:
            self._task = TaskView.of(self._row)
        return self._task

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.job} {self.task_id})"


class StatusChange(TaskChange):
    """A task moved to `status`: `waited` seconds queued before it started (on PROCESSING),
    `ran` seconds of running (on its end); None where unknown, as for an end decided by a
    recovery for a worker that is gone."""

    __slots__ = ("ran", "status", "waited")

    def __init__(
        self,
        row: Mapping[str, Any],
        status: TaskStatus,
        waited: float | None = None,
        ran: float | None = None,
    ) -> None:
        super().__init__(row)
        self.status = status
        self.waited = waited
        self.ran = ran

    def __repr__(self) -> str:
        return f"StatusChange({self.job} {self.task_id} → {self.status.value})"


@dataclass(frozen=True, slots=True)
class Stats:
    """The admin dashboard's figures: running and queued now, failed and the mean run time
    of completions over the last 24 hours."""

    running: int
    queued: int
    failed_24h: int
    mean_run_ms: float | None


@dataclass(frozen=True, slots=True)
class ActivitySeries:
    """How many tasks started running, completed and failed in each of the consecutive
    buckets of `bucket_seconds` that begin at `start` (UTC, on a bucket boundary)."""

    start: datetime
    bucket_seconds: int
    started: tuple[int, ...]
    completed: tuple[int, ...]
    failed: tuple[int, ...]

    @property
    def buckets(self) -> tuple[datetime, ...]:
        """When each bucket begins."""
        step = timedelta(seconds=self.bucket_seconds)
        return tuple(self.start + i * step for i in range(len(self.started)))


@dataclass(frozen=True, slots=True)
class JobRunStats:
    """One job's runs that ended in a window: how many completed and failed, and the run
    time of the completed ones at the 50th and 95th percentiles (nearest rank), in ms."""

    state_name: str
    task_name: str
    completed: int
    failed: int
    p50_ms: int | None
    p95_ms: int | None

    @property
    def ended(self) -> int:
        return self.completed + self.failed

    @property
    def failure_rate(self) -> float | None:
        """Failed runs over the runs that ended (completed or failed); None without any."""
        return self.failed / self.ended if self.ended else None


@dataclass(frozen=True, slots=True)
class EngineHealth:
    """What `/api/health` reports of the engine: its database and bus (each a `status` of
    ok or error and what the backend says of itself), its executor and work."""

    database: Mapping[str, Any]
    bus: Mapping[str, Any]
    executor: str
    worker: str
    running_tasks: int
    #: Worker mode: `spyglass worker` processes whose heartbeat is recent (None: unknown
    #: or inline mode).
    workers: int | None = None

    @property
    def ok(self) -> bool:
        return self.database.get("status") == "ok" and self.bus.get("status") == "ok"


@dataclass(frozen=True, slots=True)
class RetentionRuleView:
    """Finished tasks of `status` (of `job`, `state.job`; "" for every job) are deleted
    `days` after they ended; None keeps them."""

    status: TaskStatus
    job: str = ""
    days: float | None = None


@dataclass(frozen=True, slots=True)
class RetentionPreview:
    """What the next retention sweep removes: how many tasks, by status."""

    by_status: Mapping[str, int]
    rules: tuple[RetentionRuleView, ...]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A timeline line whose message matched a search, with its task's job."""

    task_id: str
    seq: int
    timestamp: datetime | None
    event_type: str
    message: str | None
    state_name: str
    task_name: str
    task_status: TaskStatus
