"""The engine: one store, one bus, one runner per process, started and stopped with the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine as SqlEngine

from spyglass.config import Settings, get_settings
from spyglass.errors import DomainError
from spyglass.tasks import access
from spyglass.tasks.access import Viewer
from spyglass.tasks.bus import Bus, LocalBus, Subscription, TaskMessage, Topic
from spyglass.tasks.messages import DIRECT_ROW_COLUMNS, DirectTask, socket_payload
from spyglass.tasks.models import new_task_id, utcnow
from spyglass.tasks.registry import JobInputError, JobSpec, Registry, UnknownJob, registry
from spyglass.tasks.runner import CANCEL_GRACE, LiveTask, Runner, ShuttingDown
from spyglass.tasks.scheduling import Schedule
from spyglass.tasks.status import ACTIVE_STATUSES, ErrorCode, TaskStatus
from spyglass.tasks.store import INTERRUPTED_MESSAGE, TaskFilter, TaskStore
from spyglass.tasks.view import (
    ActivitySeries,
    EngineHealth,
    EventView,
    FileView,
    JobRunStats,
    QueueDepth,
    RetentionPreview,
    RetentionRuleView,
    SearchHit,
    Stats,
    StatusChange,
    TaskChange,
    TaskPage,
    TaskQuery,
    TaskView,
    WorkerView,
)

if TYPE_CHECKING:
    from spyglass.tasks.queue import QueueExecutor, RetryLater

log = logging.getLogger(__name__)
RETRYABLE = (TaskStatus.FAILED.value, TaskStatus.CANCELLED.value)
ACTIVE = {s.value for s in ACTIVE_STATUSES}
ALL_TASKS = TaskQuery()


def make_bus(settings: Settings) -> Bus:
    """Redis when several workers share the work (`REDIS_URL`), else one process's own."""
    if settings.redis_url:
        from spyglass.tasks.redis_bus import RedisBus

        return RedisBus(settings.redis_url, settings.redis_prefix)
    return LocalBus()


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class Engine:
    def __init__(
        self,
        settings: Settings,
        jobs: Registry = registry,
        bus: Bus | None = None,
        *,
        role: str = "web",
    ):
        self.settings = settings
        self.registry = jobs
        #: `web` (serves, and runs jobs inline or queues them) or `worker` (`spyglass
        #: worker`: runs queued jobs).
        self.role = role
        self._store = TaskStore(settings.db_url, settings.progress_flush_interval)
        self._bus = bus or make_bus(settings)
        self._bus.follows_changes = role != "worker"
        self.worker_id = new_worker_id()
        self._runner = Runner(self._store, self._bus, self.worker_id, settings.lease_ttl)
        self._queue: QueueExecutor | None = None
        if settings.queued:
            from spyglass.tasks.queue import QueueExecutor

            self._queue = self._runner.queue = QueueExecutor(settings, self)
        self._crons: list[asyncio.Task[None]] = []
        self._worker_row: int | None = None
        self.started = False
        self.recovered_at_start: list[str] = []
        self._status_hooks: list[Callable[[StatusChange], None]] = []
        self._retention_hooks: list[Callable[[str, int], None]] = []
        self._runner.on_status.append(self._runner_status)
        self._keeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.started:
            return
        # A worker forked from the process that built this engine names itself anew and
        # opens its own database connections.
        self.worker_id = self._runner.worker_id = new_worker_id()
        self._store.engine.dispose(close=False)
        await asyncio.to_thread(self._store.migrate)
        await self._store.start()
        await self._bus.start()
        self._bus.on_cancel(self._runner.cancel)
        self._bus.on_current(self._runner.current)
        self._bus.on_resync(self._resync)
        if self._queue is not None:
            await self._queue.open()
        if self.role == "worker":
            # Procrastinate holds what workers run: no leases, no fencing, no lease
            # recovery here (its heartbeats and `recover_stalled` do that).
            self._runner.fenced = False
            if self._queue is not None:
                for spec in self._cron_jobs():
                    self._queue.add_cron(spec)
            self.started = True
            return
        if self._queue is None:
            self._crons = [
                asyncio.create_task(self._cron_loop(spec), name=f"spyglass-cron-{spec.task_name}")
                for spec in self._cron_jobs()
            ]
        # Alone (no bus between processes), every task left active is an orphan; among
        # several workers, only those whose lease lapsed are.
        self.recovered_at_start = await self.recover(everyone=self._bus.single_process)
        if self.recovered_at_start:
            log.warning(
                "recovered %d task(s) left active by a stopped worker",
                len(self.recovered_at_start),
            )
        self._keeper = asyncio.create_task(self._keep_leases(), name="spyglass-leases")
        self.started = True

    async def stop(self) -> None:
        """Stop taking work, let running jobs finish within the grace period, then stop."""
        if not self.started:
            return
        for cron in self._crons:
            cron.cancel()
        await asyncio.gather(*self._crons, return_exceptions=True)
        await self._runner.shutdown(self.settings.shutdown_grace)
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        if self._queue is not None:
            if self._worker_row is not None:
                with contextlib.suppress(Exception):
                    await self._store.forget_worker(self._worker_row)
            await self._queue.close()
        await self._bus.close()
        await self._store.close()
        self.started = False

    async def _resync(self) -> None:
        """After a bus outage: tell this process's followers of tasks that ended meanwhile
        elsewhere (their terminal message may have been lost), from the database."""
        for task_id in self._bus.followed_tasks():
            if task_id in self._runner.live:
                continue
            row = await self._row(task_id)
            if row is not None and TaskStatus(row["status"]).is_terminal:
                self._announce(row, terminal=True, local=True)

    # -- leases: who runs what, and recovering what a dead worker held --------
    async def _keep_leases(self) -> None:
        """Renew this worker's leases and look for lapsed ones, every `lease_renew` seconds."""
        while True:
            await asyncio.sleep(self.settings.lease_renew)
            try:
                held = list(self._runner.live)
                if held:
                    since = time.monotonic()
                    until = utcnow() + timedelta(seconds=self.settings.lease_ttl)
                    kept = await asyncio.to_thread(
                        self._store.renew_leases, self.worker_id, held, until
                    )
                    self._runner.renewed(kept, since)
                await self.recover(everyone=False)
            except Exception:
                log.exception("keeping task leases failed")

    async def recover(self, *, everyone: bool) -> list[str]:
        """Take over tasks whose worker stopped: run them again where the job allows
        retries, else end them FAILED/INTERRUPTED. Returns the ids taken over."""
        now = utcnow()
        until = now + timedelta(seconds=self.settings.lease_ttl)
        lapsed = await asyncio.to_thread(self._store.lapsed_tasks, now, everyone=everyone)
        taken = []
        for task_id in lapsed:
            if task_id in self._runner.live:
                continue
            row = await asyncio.to_thread(
                self._store.claim, task_id, self.worker_id, now, until, everyone=everyone
            )
            if row is None:
                continue  # another worker got there first
            taken.append(task_id)
            try:
                await self._recover(row)
            except Exception:
                log.exception("recovering task %s failed", task_id)
        return taken

    def _rerun_plan(self, row: dict[str, Any]) -> tuple[JobSpec, Any] | None:
        try:
            spec = self.registry.get(row["state_name"], row["task_name"])
        except UnknownJob:
            return None
        if not spec.is_static or row["attempt"] >= 1 + spec.options.retries:
            return None
        try:
            return spec, spec.parse_args(row["input_args"])
        except JobInputError:
            return None

    async def _recover(self, row: dict[str, Any]) -> None:
        plan = self._rerun_plan(row) if self._runner.accepting else None
        if plan is not None:
            spec, args = plan
            attempt = row["attempt"] + 1
            seq = await self._store.next_seq(row["id"]) - 1
            await self._runner.adopt(
                spec,
                args,
                row,
                seq,
                message=f"Its worker stopped; running it again (attempt {attempt})",
                attempt=attempt,
            )
            return
        await asyncio.to_thread(self._store.interrupt, row["id"], row["status"])
        await self._ended_without_worker(row["id"])

    # -- cron ---------------------------------------------------------------
    def _cron_jobs(self) -> list[JobSpec]:
        return [s for s in self.registry.all() if s.options.cron and s.is_static]

    async def _cron_loop(self, spec: JobSpec) -> None:
        """Inline mode: start `spec` at each tick of its cron expression (croniter)."""
        from croniter import croniter

        assert spec.options.cron is not None
        ticks = croniter(spec.options.cron, utcnow())
        while True:
            due = ticks.get_next(float)
            await asyncio.sleep(max(0.0, due - time.time()))
            await self.start_cron(spec.state_name, spec.task_name, int(due))

    async def start_cron(self, state_name: str, task_name: str, timestamp: int) -> None:
        """Start one run of a cron job for the tick `timestamp` (unix seconds): the run's
        `scheduled_at` is that tick (when it was due)."""
        try:
            spec = self.registry.get(state_name, task_name)
            due = Schedule(start_at=datetime.fromtimestamp(timestamp, UTC))
            await self.start_job(spec, {}, origin="cron", schedule=due)
        except Exception:
            log.exception("cron start of %s.%s at %s failed", state_name, task_name, timestamp)

    # -- worker mode: what `spyglass worker` runs ------------------------------
    async def run_queued(
        self, task_id: str, *, worker: str, shutting_down: Callable[[], bool]
    ) -> str | RetryLater:
        """Run the queued task `task_id` in this worker; returns how it ended (its
        status), or `RetryLater` when an attempt failed with retries left."""
        from spyglass.tasks.queue import RetryLater

        found = await self._store.get_task_and_seq(task_id)
        if found is None:
            return TaskStatus.CANCELLED.value  # deleted while it waited
        row, seq = found
        if TaskStatus(row["status"]).is_terminal:
            return str(row["status"])  # cancelled while it waited
        try:
            spec = self.registry.resolve(row["state_name"], row["task_name"])
            args = spec.parse_args(row["input_args"])
        except (UnknownJob, JobInputError) as exc:
            await self._store.end_if_active(
                task_id,
                TaskStatus.FAILED,
                f"This worker cannot run it: {exc}",
                error_code=ErrorCode.JOB_ERROR.value,
            )
            await self._ended_without_worker(task_id)
            return TaskStatus.FAILED.value
        live = await self._runner.run_queued(
            spec, args, row, seq, worker=worker, shutting_down=shutting_down
        )
        if live.retry_in is not None:
            return RetryLater(live.retry_in)
        return str(live.row["status"])

    async def worker_started(
        self, worker_id: int, concurrency: int, queues: list[str] | None
    ) -> None:
        """A `spyglass worker` began (Procrastinate's worker id): note it for admins."""
        self._worker_row = worker_id
        await self._store.record_worker(
            {
                "id": worker_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started_at": utcnow(),
                "concurrency": concurrency,
                "queues": queues,
            }
        )

    async def workers(self) -> list[WorkerView]:
        """Worker mode: each live worker (host, pid, started, last heartbeat, concurrency,
        queues, the tasks it runs); inline mode: none."""
        if self._queue is None:
            return []
        alive = await self._queue.workers()
        infos = await self._store.worker_infos([w["id"] for w in alive])
        listed = []
        for w in alive:
            info = infos.get(w["id"])
            listed.append(
                WorkerView(
                    id=w["id"],
                    host=info.host if info else None,
                    pid=info.pid if info else None,
                    started_at=info.started_at if info else None,
                    last_heartbeat=w["last_heartbeat"],
                    concurrency=info.concurrency if info else None,
                    queues=tuple((info.queues if info else None) or ()),
                    running=tuple(w["running"]),
                )
            )
        return listed

    async def queue_depth(self) -> list[QueueDepth]:
        """How many tasks wait (PENDING), by job and queue."""
        return [QueueDepth(s, t, q, n) for s, t, q, n in await self._store.queue_depth()]

    async def can_rerun(self, task_id: str) -> bool:
        row = await self._row(task_id)
        return row is not None and self._rerun_plan(row) is not None

    async def interrupted(self, task_id: str) -> None:
        """Its worker stopped and it may not run again: it ends FAILED (INTERRUPTED)."""
        row = await self._row(task_id)
        if row is None or TaskStatus(row["status"]).is_terminal:
            return
        ended = await self._store.end_if_active(
            task_id,
            TaskStatus.FAILED,
            INTERRUPTED_MESSAGE,
            error_code=ErrorCode.INTERRUPTED.value,
            data={"previous_status": row["status"], "retryable": True},
        )
        if ended:
            await self._ended_without_worker(task_id)

    async def requeued(self, task_id: str, hand_back: Any) -> bool:
        """Its worker stopped and it runs again: `hand_back` (the statement that hands its
        queue job back) runs in the transaction that marks its next attempt. False when
        another worker handed the job back first."""
        row = await self._row(task_id)
        attempt = (row["attempt"] if row else 1) + 1
        message = f"Its worker stopped; running it again (attempt {attempt})"
        values = {
            "status": TaskStatus.PENDING.value,
            "message": message,
            "attempt": attempt,
            "progress": 0.0,
            "worker_id": None,
            "updated_at": utcnow(),
        }
        # One transaction: were the job handed back first, a worker could take it (the
        # next poll, under a second) and run it as the attempt that was lost, before the
        # task said which attempt comes next.
        if not await asyncio.to_thread(self._store.requeue, task_id, hand_back, values, message):
            return False
        if row is not None and not TaskStatus(row["status"]).is_terminal:
            self._announce({**row, **values})
        return True

    async def _cancel_queued(self, row: dict[str, Any]) -> bool:
        """Worker mode: cancel a task in Procrastinate's queue. A waiting one ends here
        (refunded); a running one is aborted by its worker, which records the end."""
        assert self._queue is not None
        job_id = row.get("queue_job_id")
        if job_id and not await self._queue.cancel(int(job_id)):
            return True  # running: its worker stops it and records CANCELLED
        if await self._store.end_if_active(row["id"], TaskStatus.CANCELLED, "Cancelled"):
            await self._ended_without_worker(row["id"])
            return True
        return False

    # -- the façade: what routes, pages, tools and scripts use -----------------
    async def start_job(
        self,
        spec: JobSpec,
        raw_args: Any,
        *,
        origin: str,
        owner_id: int | None = None,
        client_id: str | None = None,
        instance: Any = None,
        retry_of: str | None = None,
        schedule: Schedule | None = None,
    ) -> TaskView:
        """Validate the input (raises JobInputError) and start the job; returns the new task
        (PENDING) at once."""
        args = spec.parse_args(raw_args)
        row = await self._runner.submit(
            spec,
            args,
            origin=origin,
            owner_id=owner_id,
            client_id=client_id,
            instance=instance,
            retry_of=retry_of,
            schedule=schedule,
        )
        return TaskView.of(row)

    async def start_direct(
        self, spec: JobSpec, raw_args: Any, *, schedule: Schedule | None = None
    ) -> DirectTask:
        """`start_job` for the direct API (a token-free start, no owner): the new task as the
        direct API answers it, made from its row without a view (as `get_direct`)."""
        args = spec.parse_args(raw_args)
        row = await self._runner.submit(spec, args, origin="direct", schedule=schedule)
        return DirectTask.of(row)

    async def get(self, task_id: str) -> TaskView | None:
        """The freshest view of a task (the live one where it runs in this process), whoever
        asks: callers that act for a person use `get_visible`."""
        row = await self._row(task_id)
        return TaskView.of(row) if row is not None else None

    async def get_direct(self, task_id: str) -> DirectTask | None:
        """What the direct API answers for a task (as `get`'s view would give it, read
        without one: only the columns the answer takes)."""
        live = self._runner.live.get(task_id)
        row = (
            live.row if live is not None else await self._store.get_row(task_id, DIRECT_ROW_COLUMNS)
        )
        return DirectTask.of(row) if row is not None else None

    async def get_visible(self, task_id: str, viewer: Viewer | None) -> TaskView:
        """The task if the access policy lets `viewer` see it; 404 TASK_NOT_FOUND otherwise
        (another user's task answers exactly like an unknown one)."""
        task = await self.get(task_id) if viewer is not None else None
        if task is None or not access.can_read(task, viewer):
            raise TaskNotFound(task_id)
        return task

    async def get_actionable(self, task_id: str, viewer: Viewer | None) -> TaskView:
        """The task if `viewer` may act on it (cancel, retry, delete, upload, process): 404
        as `get_visible` when they may not even read it, 403 FORBIDDEN when they may only
        read it (a viewer; a user with an operator's reading rights)."""
        task = await self.get_visible(task_id, viewer)
        if not access.can_act(task, viewer):
            raise DomainError("FORBIDDEN", "Your role lets you read this task, not change it", 403)
        return task

    async def list_tasks(
        self, viewer: Viewer, query: TaskQuery = ALL_TASKS, *, limit: int = 20, offset: int = 0
    ) -> TaskPage:
        """The tasks `viewer` may see that match `query`, newest first: one query (each task
        with its main input file's name), with the live copies of tasks running here laid
        over the stored rows."""
        owner = access.owner_scope(viewer)
        if owner is None:  # an admin: everyone's, or the user the query names
            owner = query.owner_id
        flt = TaskFilter(
            statuses=[s.value for s in query.statuses],
            state_name=query.state_name,
            task_name=query.task_name,
            tool_id=query.tool_id,
            owner_id=owner,
            id_prefix=query.id_prefix,
            filename=query.filename,
            search=query.search,
            created_after=query.created_after,
            created_before=query.created_before,
        )
        rows, total = await self._store.list_tasks(flt, limit=limit, offset=offset)
        live = self._runner.live
        views = tuple(
            TaskView.of(
                {**live[r["id"]].row, "input_filename": r["input_filename"]}
                if r["id"] in live
                else r
            )
            for r in rows
        )
        return TaskPage(tasks=views, total=total, offset=offset, limit=limit)

    async def activity(
        self, *, since: datetime, until: datetime | None = None, bucket_seconds: int = 60
    ) -> ActivitySeries:
        """Everyone's tasks that started running, completed and failed, counted per bucket of
        `bucket_seconds` from `since` (rounded down to a bucket boundary) to `until` (now):
        one grouped query. For admins' figures."""
        if bucket_seconds < 1:
            raise ValueError("bucket_seconds must be at least 1")
        end = until or utcnow()
        first = int(since.timestamp()) // bucket_seconds * bucket_seconds
        start = datetime.fromtimestamp(first, UTC)
        count = max(1, -(-int(end.timestamp() - first) // bucket_seconds))
        series: dict[str, list[int]] = {k: [0] * count for k in ("started", "completed", "failed")}
        for kind, bucket, n in await self._store.activity(start, end, bucket_seconds):
            if 0 <= bucket < count:
                series[kind][bucket] += n
        return ActivitySeries(
            start=start,
            bucket_seconds=bucket_seconds,
            started=tuple(series["started"]),
            completed=tuple(series["completed"]),
            failed=tuple(series["failed"]),
        )

    async def job_run_stats(self, *, since: datetime) -> list[JobRunStats]:
        """Per job (tools included), everyone's runs that ended since `since`: completed,
        failed, and the run time of completed runs at p50 and p95 (one query). For admins'
        figures."""
        return [
            JobRunStats(state, job, completed, failed, p50, p95)
            for state, job, completed, failed, p50, p95 in await self._store.job_run_stats(since)
        ]

    async def events(
        self, task_id: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[EventView]:
        """The task's timeline after `after_seq`, in order (lines of a task running here that
        are still being coalesced are written first, and committed, so nothing reported here
        is missing)."""
        await self._store.flush_task(task_id)
        return [
            EventView(e.seq, e.timestamp, e.event_type, e.message, e.data)
            for e in await self._store.get_events(task_id, after_seq=after_seq, limit=limit)
        ]

    async def files(self, task_id: str, role: str) -> list[FileView]:
        """The task's stored files: `input` (uploaded) or `output` (produced), in order."""
        return [
            FileView(
                key=a.key,
                filename=a.filename,
                content_type=a.content_type,
                size_bytes=a.size_bytes,
                storage_key=a.storage_key,
                type=a.type,
                created_at=a.created_at,
            )
            for a in await self._store.get_artifacts(task_id, role)
        ]

    async def replace_inputs(self, task_id: str, files: Sequence[FileView]) -> None:
        """The task's input files become exactly these (a new upload replaces the old)."""
        now = utcnow()
        await self._store.replace_inputs(
            task_id,
            [
                {
                    "task_id": task_id,
                    "role": "input",
                    "key": f.key,
                    "filename": f.filename,
                    "content_type": f.content_type,
                    "size_bytes": f.size_bytes,
                    "storage_key": f.storage_key,
                    "type": f.type,
                    "created_at": f.created_at or now,
                }
                for f in files
            ],
        )

    async def _row(self, task_id: str) -> dict[str, Any] | None:
        """The freshest row of a task: the live one if it runs here, else the stored one."""
        live = self._runner.live.get(task_id)
        if live is not None:
            return dict(live.row)
        return await self._store.get_row(task_id)

    async def input_keys(self, task_id: str) -> set[str]:
        """The storage keys of the files a task announced as its inputs."""
        return {a.storage_key for a in await self._store.get_artifacts(task_id, "input")}

    def subscribe(self, topic: Topic) -> Subscription:
        """Every change of the tasks `topic` selects, from now on (use it as a context
        manager, or close it). Subscribe before reading a snapshot, then skip what the
        snapshot holds (`live_version`): nothing is missed."""
        return self._bus.subscribe(topic)

    def catch_up(self, sub: Subscription, shown: Iterable[TaskView]) -> None:
        """After reading these tasks for `sub` (a socket's snapshot, a page): ask the process
        running each of them, if it is another, to tell `sub` its current state. The
        database holds a running task's progress up to one flush window old; its status
        changes are written before they are told, so only a task read as PROCESSING can
        lag. The answer comes in order with the task's other messages, as a restatement
        (`TaskMessage.restated`). Ask only for tasks the reader may see."""
        for task in shown:
            if task.status is TaskStatus.PROCESSING and task.id not in self._runner.live:
                self._bus.request_current(task.id, sub)

    def live_version(self, task_id: str) -> int:
        """The version of a task running in this process (its bus messages carry it), or -1."""
        live = self._runner.live.get(task_id)
        return live.version if live is not None else -1

    async def wait(self, task_id: str, timeout: float | None = None) -> None:
        """Until a task running in this process has ended and its end is recorded."""
        await self._runner.wait(task_id, timeout=timeout)

    @property
    def database(self) -> SqlEngine:
        """The SQL database of tasks and accounts (SQLAlchemy), for the account service and
        the model portal."""
        return self._store.engine

    @property
    def worker_mode(self) -> bool:
        """Jobs are queued for `spyglass worker` processes (`SPYGLASS_EXECUTOR=procrastinate`)."""
        return self._queue is not None

    def status_counts(self) -> dict[str, int]:
        """How many tasks are in each status (blocking: call it in a thread)."""
        return self._store.status_counts()

    def on_status(self, hook: Callable[[StatusChange], None]) -> None:
        """Call `hook` with every status change of a task, wherever it is decided here (its
        runner, or a recovery for a worker that is gone)."""
        self._status_hooks.append(hook)

    def on_progress(self, hook: Callable[[TaskChange], None]) -> None:
        """Call `hook` with a `TaskChange` of a task running in this process each time its
        progress or message moves (as often as the job reports: a hook throttles for
        itself, and reads the change's view only when it acts)."""
        self._runner.on_progress.append(hook)

    def on_bus_lag(self, hook: Callable[[float], None]) -> None:
        """Call `hook` with the seconds each message spent between processes (Redis bus)."""
        self._bus.on_lag = hook

    async def run_worker(self, concurrency: int, queues: list[str] | None) -> None:
        """`spyglass worker`: run queued jobs until SIGTERM/SIGINT (worker mode only)."""
        if self._queue is None:
            raise RuntimeError("spyglass worker needs SPYGLASS_EXECUTOR=procrastinate")
        await self._queue.run_worker(
            concurrency=concurrency,
            queues=queues,
            on_start=lambda worker_id: self.worker_started(worker_id, concurrency, queues),
        )

    async def cancel(self, task_id: str) -> bool:
        """Ask a queued or running task to stop, wherever it runs; returns at once
        (False if it is not active)."""
        if self._runner.cancel(task_id):
            return True
        queued = await self._queued_row(task_id)
        if queued is not None:
            return await self._cancel_queued(queued)
        if await self._runs_elsewhere(task_id):
            self._bus.request_cancel(task_id)
            return True
        return await self._cancel_orphan(task_id)

    async def _queued_row(self, task_id: str) -> dict[str, Any] | None:
        """The row of an active task that Procrastinate holds (worker mode)."""
        if self._queue is None:
            return None
        row = await self._row(task_id)
        if row is None or row.get("queue_job_id") is None or row["status"] not in ACTIVE:
            return None
        return row

    async def cancel_and_wait(self, task_id: str) -> bool:
        """Cancel, then wait until the job has unwound and its end is recorded."""
        if self._runner.cancel(task_id):
            await self._runner.wait(task_id, timeout=CANCEL_GRACE)
            return True
        queued = await self._queued_row(task_id)
        if queued is not None:
            with self._bus.subscribe(Topic(task_id=task_id)) as sub:
                if not await self._cancel_queued(queued):
                    return False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CANCEL_GRACE + 2):
                        while (await self._queued_row(task_id)) is not None:
                            with contextlib.suppress(TimeoutError):
                                async with asyncio.timeout(0.5):
                                    await sub.get_batch()
            return True
        if not await self._runs_elsewhere(task_id):
            return await self._cancel_orphan(task_id)
        with self._bus.subscribe(Topic(task_id=task_id)) as sub:
            self._bus.request_cancel(task_id)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CANCEL_GRACE + 2):
                    while await self._runs_elsewhere(task_id):
                        batch = await sub.get_batch()
                        if any(m.terminal for m in batch):
                            break
        await self._cancel_orphan(task_id)
        return True

    async def _cancel_orphan(self, task_id: str) -> bool:
        """A task still active whose worker is gone (lease lapsed) cannot hear the cancel:
        this worker takes it over and records it CANCELLED. False if there was none."""
        if task_id in self._runner.live:
            return False
        now = utcnow()
        until = now + timedelta(seconds=self.settings.lease_ttl)
        row = await asyncio.to_thread(
            self._store.claim, task_id, self.worker_id, now, until, everyone=False
        )
        if row is None:
            return False
        await asyncio.to_thread(self._store.end_claimed, task_id, TaskStatus.CANCELLED, "Cancelled")
        await self._ended_without_worker(task_id)
        return True

    async def _ended_without_worker(self, task_id: str) -> None:
        """Announce a task ended for a worker that is gone (its refund, if due, was written
        with its end)."""
        ended = await self._row(task_id)
        if ended is not None:
            self._announce(ended, terminal=True)
            self._tell_status(StatusChange(ended, TaskStatus(ended["status"])))

    def _runner_status(self, live: LiveTask, status: TaskStatus) -> None:
        if not self._status_hooks:
            return
        waited = live.waited() if status is TaskStatus.PROCESSING else None
        ran = live.ran() if status.is_terminal and live.started_mono is not None else None
        self._tell_status(StatusChange(live.row, status, waited, ran))

    def _tell_status(self, change: StatusChange) -> None:
        for hook in self._status_hooks:
            try:
                hook(change)
            except Exception:  # a metrics hook never breaks a task
                log.exception("status hook failed")

    async def _runs_elsewhere(self, task_id: str) -> bool:
        """Active, held by another worker whose lease still holds."""
        row = await self._row(task_id)
        lease = (row or {}).get("lease_expires_at")
        return bool(
            row
            and row["status"] in ACTIVE
            and row.get("worker_id")
            and row["worker_id"] != self.worker_id
            and lease is not None
            and lease >= utcnow()
        )

    async def retry(self, task_id: str) -> TaskView:
        """A new PENDING task with the same job, inputs and owner, linked by `retry_of`.

        States with a retry handler (data tools: same files, charged again) use it instead.
        """
        row = await self._row(task_id)
        if row is None:
            raise TaskNotFound(task_id)
        if row["status"] not in RETRYABLE:
            raise TaskStateError(f"Cannot retry task with status: {row['status']}")
        handler = self.registry.retry_handlers.get(row["state_name"])
        if handler is not None:
            return await handler(TaskView.of(row))
        try:
            spec = self.registry.get(row["state_name"], row["task_name"])
        except UnknownJob:
            raise TaskStateError(f"The job {row['task_name']} no longer exists") from None
        if not spec.is_static:
            raise TaskStateError("Instance jobs are retried from their page")
        return await self.start_job(
            spec,
            row["input_args"],
            origin=row["origin"],
            owner_id=row["owner_id"],
            client_id=row["client_id"],
            retry_of=task_id,
        )

    async def delete(self, task_id: str) -> int:
        """Cancel if running, then delete the task, its events and its stored files.

        Subscribers are told. Returns how many stored files were deleted.
        """
        from spyglass.storage import get_storage
        from spyglass.storage.base import task_prefix

        row = await self._row(task_id)
        if row is None:
            raise TaskNotFound(task_id)
        await self.cancel_and_wait(task_id)
        await self._store.delete_task(task_id)
        self._bus.publish(
            TaskMessage(
                task_id=task_id,
                state_name=row["state_name"],
                owner_id=row["owner_id"],
                client_id=row["client_id"],
                version=1 << 62,
                terminal=True,
                droppable=False,
                payload=socket_payload("deleted", TaskView.of(row)),
            )
        )
        prefix = task_prefix(row["owner_id"], task_id)
        return await asyncio.to_thread(get_storage().delete_prefix, prefix)

    async def delete_matching(self, viewer: Viewer, query: TaskQuery) -> int:
        """Delete every task `viewer` may act on that `query` selects (bulk delete); returns
        how many went."""
        if not access.can_change_tasks(viewer):
            raise DomainError("FORBIDDEN", "Your role lets you read tasks, not change them", 403)
        # Whom it acts on: the tasks `list_tasks` shows them, as no role reads more
        # than it may act on, viewers aside (refused above).
        deleted = 0
        while True:
            page = await self.list_tasks(viewer, query, limit=100)
            if not page.tasks:
                return deleted
            for task in page.tasks:
                try:
                    await self.delete(task.id)
                    deleted += 1
                except TaskNotFound:
                    pass  # deleted meanwhile by someone else

    # -- bulk actions over a filter -----------------------------------------------------
    def _filter(self, viewer: Viewer, query: TaskQuery) -> TaskFilter:
        """What a bulk action of `viewer` acts on: their own tasks, or anyone's (admins and
        operators)."""
        if not access.can_change_tasks(viewer):
            raise DomainError("FORBIDDEN", "Your role lets you read tasks, not change them", 403)
        owner = access.act_scope(viewer)
        if owner is None:
            owner = query.owner_id
        return TaskFilter(
            statuses=[s.value for s in query.statuses],
            state_name=query.state_name,
            task_name=query.task_name,
            tool_id=query.tool_id,
            owner_id=owner,
        )

    async def count_matching(self, viewer: Viewer, query: TaskQuery) -> int:
        """How many tasks `viewer` may see that `query` selects."""
        return await asyncio.to_thread(self._store.count_tasks, self._filter(viewer, query))

    async def matching_ids(self, viewer: Viewer, query: TaskQuery, limit: int) -> list[str]:
        """The ids of up to `limit` tasks `viewer` may see that `query` selects, newest first."""
        found = await asyncio.to_thread(self._store.task_ids, self._filter(viewer, query), limit)
        return [task_id for task_id, _owner in found]

    # -- retention ------------------------------------------------------------------------
    async def retention_rules(self) -> list[RetentionRuleView]:
        rows = await asyncio.to_thread(self._store.retention_rules)
        return [RetentionRuleView(TaskStatus(s), j, d) for s, j, d in rows]

    async def set_retention_rules(self, rules: Sequence[RetentionRuleView]) -> None:
        """Replace every retention rule (finished statuses only; one rule per status and job)."""
        seen = set()
        for rule in rules:
            if not rule.status.is_terminal:
                raise DomainError(
                    "INVALID_RETENTION_RULE",
                    f"Only finished tasks are swept; {rule.status.value} is not a final status",
                    400,
                )
            if (rule.status, rule.job) in seen:
                raise DomainError(
                    "INVALID_RETENTION_RULE",
                    f"Two rules for {rule.status.value} {rule.job or '(every job)'}",
                    400,
                )
            seen.add((rule.status, rule.job))
        await asyncio.to_thread(
            self._store.replace_retention_rules,
            [(r.status.value, r.job, r.days) for r in rules],
        )

    def _retention_plan(
        self, rules: Sequence[RetentionRuleView], now: datetime
    ) -> list[tuple[str, str, datetime, list[str]]]:
        """(status, job, cutoff, jobs excepted) for each rule that deletes anything."""
        plan = []
        for rule in rules:
            if rule.days is None:
                continue
            others = [] if rule.job else [r.job for r in rules if r.status == rule.status and r.job]
            cutoff = now - timedelta(days=rule.days)
            plan.append((rule.status.value, rule.job, cutoff, others))
        return plan

    async def retention_preview(self) -> RetentionPreview:
        """What a sweep run now would delete, by status."""
        rules = await self.retention_rules()
        counts: dict[str, int] = {}
        for status, job, cutoff, others in self._retention_plan(rules, utcnow()):
            n = await asyncio.to_thread(self._store.count_expired, status, job, cutoff, others)
            counts[status] = counts.get(status, 0) + n
        return RetentionPreview(by_status=counts, rules=tuple(rules))

    def on_retention(self, hook: Callable[[str, int], None]) -> None:
        """Call `hook(status, count)` for each batch a retention sweep deletes."""
        self._retention_hooks.append(hook)

    async def sweep_retention(self, batch: int | None = None) -> dict[str, int]:
        """Delete what the retention rules say is due: files first (storage), then the
        tasks, events and file records, `batch` tasks per short transaction. Returns how
        many went, by status."""
        from spyglass.storage import get_storage
        from spyglass.storage.base import task_prefix

        size = batch or self.settings.retention_batch
        rules = await self.retention_rules()
        deleted: dict[str, int] = {}
        storage = get_storage()
        for status, job, cutoff, others in self._retention_plan(rules, utcnow()):
            while True:
                found = await asyncio.to_thread(
                    self._store.expired_tasks, status, job, cutoff, others, size
                )
                if not found:
                    break
                for task_id, owner_id, _state in found:
                    await asyncio.to_thread(storage.delete_prefix, task_prefix(owner_id, task_id))
                gone = await asyncio.to_thread(
                    self._store.delete_tasks, [t for t, _o, _s in found], [status]
                )
                for task_id, owner_id, state_name in found:
                    self._bus.publish(
                        TaskMessage(
                            task_id=task_id,
                            state_name=state_name,
                            owner_id=owner_id,
                            client_id=None,
                            version=1 << 62,
                            terminal=True,
                            droppable=True,
                            payload={"type": "deleted", "task_id": task_id},
                        )
                    )
                deleted[status] = deleted.get(status, 0) + gone
                for hook in self._retention_hooks:
                    try:
                        hook(status, gone)
                    except Exception:
                        log.exception("retention hook failed")
                if len(found) < size:
                    break
                await asyncio.sleep(0)  # let others write between batches
        return deleted

    async def take_sweep_lease(self, name: str, seconds: float) -> bool:
        """Whether this process runs the periodic sweep `name` now: one process holds it
        for `seconds` (across every process sharing the database)."""
        until = utcnow() + timedelta(seconds=seconds)
        return await asyncio.to_thread(self._store.take_lease, name, self.worker_id, until)

    # -- search ----------------------------------------------------------------------------
    async def search_events(
        self, viewer: Viewer, text: str, *, limit: int = 20, offset: int = 0
    ) -> tuple[list[SearchHit], int]:
        """Timeline lines of the tasks `viewer` may see whose message has every word of
        `text` (PostgreSQL full-text search, SQLite FTS5), newest first; and how many."""
        self._store.flush_pending()
        rows, total = await asyncio.to_thread(
            self._store.search_events, text, access.owner_scope(viewer), limit, offset
        )
        hits = [
            SearchHit(
                task_id=r["task_id"],
                seq=r["seq"],
                timestamp=r["timestamp"],
                event_type=r["event_type"],
                message=r["message"],
                state_name=r["state_name"],
                task_name=r["task_name"],
                task_status=TaskStatus(r["status"]),
            )
            for r in rows
        ]
        return hits, total

    async def create_waiting(
        self,
        *,
        state_name: str,
        task_name: str,
        tool_id: str,
        agents: list[str],
        cost: int,
        owner_id: int,
        origin: str = "api",
        retry_of: str | None = None,
    ) -> TaskView:
        """A CREATED task that waits for its files (S000 flow); nothing runs yet."""
        now = utcnow()
        row: dict[str, Any] = {
            "id": new_task_id(),
            "state_name": state_name,
            "task_name": task_name,
            "tool_id": tool_id,
            "agents": agents,
            "status": TaskStatus.CREATED.value,
            "progress": 0.0,
            "message": "Waiting for files",
            "origin": origin,
            "owner_id": owner_id,
            "retry_of": retry_of,
            "attempt": 1,
            "cost": cost,
            "created_at": now,
            "updated_at": now,
        }
        event = _event(row["id"], 1, "status", "Created", {"status": TaskStatus.CREATED.value})
        await self._store.insert_task(row, [event])
        self._announce(row)
        return TaskView.of((await self._row(row["id"])) or row)

    async def set_waiting_status(
        self,
        task_id: str,
        status: TaskStatus,
        message: str,
        values: dict[str, Any] | None = None,
        *,
        expect: Collection[TaskStatus],
    ) -> TaskView:
        """Move a task no runner holds from one of the `expect`ed statuses (CREATED,
        UPLOADING …) to `status`; record, announce. 409 TASK_NOT_WAITING if it was in
        none of them (another request moved it first), and nothing is written."""
        changes = {"status": status.value, "message": message, "updated_at": utcnow()}
        changes.update(values or {})
        event_type = (
            "error" if status in (TaskStatus.UPLOAD_FAILED, TaskStatus.EXPIRED) else "status"
        )
        expected = [s.value for s in expect]
        moved = await asyncio.to_thread(
            self._store.set_waiting, task_id, expected, changes, event_type, message
        )
        row = await self._row(task_id)
        if row is None:
            raise TaskNotFound(task_id)
        if not moved:
            raise not_waiting(row["status"])
        self._announce(row, terminal=status.is_terminal)
        return TaskView.of(row)

    async def start_waiting(
        self, task: TaskView, spec: JobSpec, args: Any, breakdown: dict[str, int], what: str
    ) -> TaskView:
        """Run `spec` on a task that waited for its files, charging its owner `breakdown`.

        The charge and the move to PENDING are one transaction: of concurrent calls exactly
        one wins, the others are told 409 TASK_NOT_WAITING and change nothing. Short of
        credits, the task ends FAILED and the caller gets the 402 with its shortfall.
        """
        if not self._runner.accepting:
            raise ShuttingDown()
        row = await self._row(task.id)
        if row is None:
            raise TaskNotFound(task.id)
        values = {
            "status": TaskStatus.PENDING.value,
            "message": "Queued",
            "cost": sum(breakdown.values()),  # what it is charged, hence what a refund returns
            "updated_at": utcnow(),
            **self._runner.lease(),
        }
        claim = await asyncio.to_thread(
            self._store.claim_waiting,
            row["id"],
            values,
            owner_id=row["owner_id"],
            breakdown=breakdown,
            what=what,
        )
        if claim.refused is not None:
            ended = await self._row(row["id"])
            if ended is not None:
                self._announce(ended, terminal=True)
            raise claim.refused
        if not claim.won:
            if claim.status is None:
                raise TaskNotFound(row["id"])
            raise not_waiting(claim.status)
        seq = await self._store.next_seq(row["id"]) - 1
        try:
            # Shielded: a caller that stops waiting does not stop a run it has paid for.
            started = self._runner.adopt(spec, args, {**row, **values}, seq)
            return TaskView.of(await asyncio.shield(started))
        except Exception:
            # Charged but not running: end it as interrupted, which refunds by the rule.
            await asyncio.to_thread(
                self._store.end_claimed,
                row["id"],
                TaskStatus.FAILED,
                INTERRUPTED_MESSAGE,
                error_code=ErrorCode.INTERRUPTED.value,
            )
            await self._ended_without_worker(row["id"])
            raise

    async def expire_uploads(self, max_age: float) -> list[str]:
        """End EXPIRED every task still UPLOADING `max_age` seconds after its URLs were given."""
        expired = await self._store.uploads_older_than(utcnow() - timedelta(seconds=max_age))
        ended = []
        for task_id in expired:
            try:
                await self.set_waiting_status(
                    task_id,
                    TaskStatus.EXPIRED,
                    "The upload URLs expired before processing started",
                    {
                        "error_code": "UPLOAD_EXPIRED",
                        "error_message": "The upload URLs expired before processing started",
                    },
                    expect=[TaskStatus.UPLOADING],
                )
            except DomainError:
                continue  # processed (or deleted) meanwhile
            ended.append(task_id)
        return ended

    def _announce(self, row: dict[str, Any], terminal: bool = False, local: bool = False) -> None:
        publish = self._bus.deliver_here if local else self._bus.publish
        publish(
            TaskMessage(
                task_id=row["id"],
                state_name=row["state_name"],
                owner_id=row["owner_id"],
                client_id=row.get("client_id"),
                version=0,
                terminal=terminal,
                droppable=False,
                payload=socket_payload("update", TaskView.of(row)),
                attempt=int(row.get("attempt") or 1),
            )
        )

    async def stats(self) -> Stats:
        figures = await self._store.stats(utcnow() - timedelta(hours=24))
        return Stats(
            running=figures["running"],
            queued=figures["queued"],
            failed_24h=figures["failed"],
            mean_run_ms=figures["mean_run_ms"],
        )

    async def health(self) -> EngineHealth:
        import sqlalchemy as sa

        def ping() -> None:
            with self._store.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))

        try:
            await asyncio.wait_for(asyncio.to_thread(ping), timeout=5)
            database: dict[str, Any] = {"status": "ok", "dialect": self._store.engine.dialect.name}
        except Exception as exc:
            database = {"status": "error", "detail": type(exc).__name__}
        workers = None
        if self._queue is not None:
            with contextlib.suppress(Exception):
                workers = await asyncio.wait_for(self._queue.alive_workers(), 5)
        return EngineHealth(
            database=database,
            bus=self._bus.health(),
            executor=self.settings.executor,
            worker=self.worker_id,
            running_tasks=self._runner.counts[TaskStatus.PROCESSING],
            workers=workers,
        )


def _event(task_id: str, seq: int, event_type: str, message: str, data: Any) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "seq": seq,
        "timestamp": utcnow(),
        "event_type": event_type,
        "message": message,
        "data": data,
    }


class TaskNotFound(DomainError):
    def __init__(self, task_id: str) -> None:
        super().__init__("TASK_NOT_FOUND", f"Task '{task_id}' not found", 404)


def not_waiting(status: str) -> DomainError:
    """409: the task is no longer waiting for processing (another call started it first)."""
    return DomainError(
        "TASK_NOT_WAITING",
        f"Task is not waiting for processing (it is {status}): another request already moved it on",
        409,
    )


class TaskStateError(DomainError):
    """The task's status does not allow the operation."""

    def __init__(self, message: str, code: str = "TASK_NOT_RETRYABLE") -> None:
        super().__init__(code, message, 400)


_engine: Engine | None = None


def get_engine() -> Engine:
    """The process's engine (created on first use, started by the app's lifespan)."""
    global _engine
    if _engine is None:
        _engine = Engine(get_settings())
    return _engine


def set_engine(engine: Engine | None) -> None:
    global _engine
    _engine = engine
