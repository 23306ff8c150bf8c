"""Worker mode (`SPYGLASS_EXECUTOR=procrastinate`): Procrastinate queues and runs the jobs.

The web tier records a task PENDING and defers one Procrastinate job naming it, in one
transaction (with its charge, as inline): a task is queued exactly when it is recorded,
never one without the other. `spyglass worker` processes, on any number
of machines that reach the same PostgreSQL, fetch those jobs and run the task through
the same runner as inline mode, publishing progress on the Redis bus. What Procrastinate
already does well is its to do:

- the durable queue, its order (`priority`, higher first) and `queue` names, `start_at`
  (`schedule_at`), and `max_concurrency` across the whole cluster: a job limited to N
  takes one of N Procrastinate locks (`state.job#slot`), and jobs sharing a lock never
  run at once, so at most N run anywhere;
- retries: a failed attempt with retries left is handed back with its backoff
  (`RetryLater`), and Procrastinate schedules it again, on any worker;
- cancel of a running job (`abort=True`: the worker cancels the job's asyncio task,
  which kills its CPU children), and of a queued one (it never starts);
- cron (`cron=` on the decorator is a Procrastinate periodic task, deferred once per
  tick across all workers);
- worker heartbeats: a job whose worker stopped beating for `worker_stalled_after`
  seconds is run again when it has retries left, else ended FAILED/INTERRUPTED
  (`recover_stalled`, run by every worker).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import time
import weakref
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg_pool
import sqlalchemy as sa
from procrastinate import App, JobContext, PsycopgConnector
from procrastinate import exceptions as pq_exceptions
from procrastinate.jobs import Status
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from procrastinate.worker import Worker

from spyglass.config import Settings
from spyglass.tasks.models import Task
from spyglass.tasks.registry import JobSpec

if TYPE_CHECKING:
    from procrastinate.jobs import Job

    from spyglass.tasks.engine import Engine

log = logging.getLogger(__name__)

RUN_TASK = "spyglass.run_task"
START_CRON = "spyglass.start_cron"
#: Defers the Procrastinate job of a task and records its id on the task, as a statement of
#: the transaction that records the task. It calls what Procrastinate's own `defer_jobs`
#: query calls (`procrastinate_defer_jobs_v1`, `procrastinate/sql/queries.sql`), so its
#: triggers (NOTIFY to the workers, the job's events) run as for any deferred job.
DEFER = sa.text(
    f"UPDATE {Task.__tablename__} SET queue_job_id = (procrastinate_defer_jobs_v1(ARRAY[ROW("
    "CAST(:queue AS varchar), CAST(:task_name AS varchar), CAST(:priority AS integer), "
    "CAST(:lock AS text), CAST(NULL AS text), CAST(:args AS jsonb), "
    "CAST(:scheduled_at AS timestamptz))::procrastinate_job_to_defer_v1]))[1] "
    "WHERE id = :task_id"
)


#: Hands a job back to the queue, to run again now (what Procrastinate's `retry_job` calls),
#: if it is still `doing` on the worker found stalled; returns a row when it did.
HAND_BACK = (
    "SELECT procrastinate_retry_job_v2(id, NOW(), CAST(NULL AS integer), "
    "CAST(NULL AS varchar), CAST(NULL AS varchar)) FROM procrastinate_jobs "
    "WHERE id = :job_id AND status = 'doing' AND worker_id IS NOT DISTINCT FROM :worker_id"
)


class RetryLater(Exception):
    """An attempt failed and the job has retries left: Procrastinate runs it again."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"retry in {delay:g} s")
        self.delay = delay


class TaskEnded(Exception):
    """The task ended FAILED: the Procrastinate job is marked failed, not retried."""


class _RetryWhenAsked(BaseRetryStrategy):
    """Procrastinate's retry, with the job's own backoff (`retry_backoff · 2^(n-1)`)."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, RetryLater):
            return RetryDecision(retry_in={"seconds": max(0, round(exception.delay))})
        return None


def conninfo(db_url: str) -> str:
    """The libpq address of an SQLAlchemy PostgreSQL URL."""
    url = sa.make_url(db_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


#: A pooled connection idle longer than this is tested before it is used (as the database
#: engine's own pool does: `spyglass.tasks.store.PING_AFTER_IDLE`).
PING_AFTER_IDLE = 5.0


def _pool_checking_idle_connections(**kwargs: Any) -> psycopg_pool.AsyncConnectionPool:
    """Procrastinate's pool, whose `check` (a round trip on every checkout: three or four a
    job) runs only on a connection that sat idle for `PING_AFTER_IDLE` seconds; one back
    from use within that is handed out as it is (the pool drops a connection that broke in
    use when it comes back)."""
    returned: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    async def reset(conn: Any) -> None:
        returned[conn] = time.monotonic()

    async def check(conn: Any) -> None:
        at = returned.get(conn)
        if at is None or time.monotonic() - at >= PING_AFTER_IDLE:
            await psycopg_pool.AsyncConnectionPool.check_connection(conn)

    return psycopg_pool.AsyncConnectionPool(**{**kwargs, "check": check, "reset": reset})


class QueueExecutor:
    """Procrastinate's app, as the web tier (defer, cancel) and a worker (run) use it."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.app = App(
            connector=PsycopgConnector(
                conninfo=conninfo(settings.db_url),
                kwargs={"application_name": "spyglass"},
                pool_factory=_pool_checking_idle_connections,
            )
        )
        self._slots: dict[tuple[str, str], itertools.count[int]] = {}
        self.worker: Worker | None = None
        self.app.task(name=RUN_TASK, pass_context=True, retry=_RetryWhenAsked())(self._run_task)
        self._cron_task = self.app.task(name=START_CRON, pass_context=False)(self._start_cron)
        self._opened = False

    # -- lifecycle -----------------------------------------------------------
    async def open(self) -> None:
        if self._opened:
            return
        await self.app.open_async()
        await self._ensure_schema()
        self._opened = True

    async def close(self) -> None:
        if self._opened:
            await self.app.close_async()
            self._opened = False

    async def _ensure_schema(self) -> None:
        """Apply Procrastinate's schema to a new database (one process at a time)."""
        connector = self.app.connector
        async with (
            connector.pool.connection() as conn,  # type: ignore[attr-defined]
            conn.transaction(),
        ):
            await conn.execute("SELECT pg_advisory_xact_lock(7279102)")
            cur = await conn.execute("SELECT to_regclass('procrastinate_jobs')")
            row = await cur.fetchone()
            if row is not None and row[0] is not None:
                return
            await conn.execute(self.app.schema_manager.get_schema())

    # -- the web tier ----------------------------------------------------------
    def defer_statement(self, row: dict[str, Any], spec: JobSpec) -> sa.TextClause:
        """The statement that queues a run of the task `row` (to run in the transaction that
        records it): its queue, priority, earliest start and concurrency slot."""
        lock = None
        limit = spec.options.max_concurrency
        if limit is not None:
            slots = self._slots.setdefault(spec.key, itertools.count())
            lock = f"{spec.state_name}.{spec.task_name}#{next(slots) % limit}"
        scheduled: datetime | None = row.get("scheduled_at")
        return DEFER.bindparams(
            queue=row.get("queue") or spec.options.queue,
            task_name=RUN_TASK,
            priority=int(row.get("priority") or 0),
            lock=lock,
            args=json.dumps({"task_id": row["id"]}),
            scheduled_at=scheduled,
            task_id=row["id"],
        )

    async def cancel(self, job_id: int) -> bool:
        """Ask Procrastinate to stop the job: a queued one is cancelled at once (True), a
        running one is aborted by its worker (False: the worker records the end)."""
        jm = self.app.job_manager
        await jm.cancel_job_by_id_async(job_id, abort=True)
        status = await jm.get_job_status_async(job_id)
        return status is not Status.DOING

    # -- the worker ---------------------------------------------------------------
    async def _run_task(self, context: JobContext, task_id: str) -> None:
        def aborted_for_shutdown() -> bool:
            return context.abort_reason() is not None and not self._aborted_by_user(context)

        outcome = await self.engine.run_queued(
            task_id, worker=context.worker_name or "", shutting_down=aborted_for_shutdown
        )
        if isinstance(outcome, RetryLater):
            raise outcome
        if outcome == "CANCELLED":
            raise pq_exceptions.JobAborted()
        if outcome == "FAILED":
            raise TaskEnded(task_id)

    @staticmethod
    def _aborted_by_user(context: JobContext) -> bool:
        from procrastinate.job_context import AbortReason

        return context.abort_reason() is AbortReason.USER_REQUEST

    async def _start_cron(self, timestamp: int, state_name: str, task_name: str) -> None:
        await self.engine.start_cron(state_name, task_name, timestamp)

    def add_cron(self, spec: JobSpec) -> None:
        """Start `spec` on its cron schedule (deferred once per tick by the workers)."""
        assert spec.options.cron is not None
        self.app.periodic(
            cron=spec.options.cron,
            periodic_id=f"{spec.state_name}.{spec.task_name}",
            task_kwargs={"state_name": spec.state_name, "task_name": spec.task_name},
        )(self._cron_task)

    async def run_worker(
        self,
        *,
        concurrency: int,
        queues: list[str] | None,
        on_start: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        """Run a Procrastinate worker until SIGTERM/SIGINT (graceful: running jobs get
        `shutdown_grace` seconds, then end INTERRUPTED), recovering stalled jobs."""
        name = f"{socket.gethostname()}:{os.getpid()}"
        self.worker = Worker(
            self.app,
            queues=queues or None,
            name=name,
            concurrency=concurrency,
            shutdown_graceful_timeout=self.settings.shutdown_grace,
            update_heartbeat_interval=self.settings.worker_heartbeat,
            stalled_worker_timeout=self.settings.worker_stalled_after,
            abort_job_polling_interval=min(2.0, self.settings.worker_heartbeat),
            # Jobs come by LISTEN/NOTIFY; the poll only bounds a missed wake-up (seen once
            # at 5 s, Procrastinate's default, under heavy load).
            fetch_job_polling_interval=1.0,
            install_signal_handlers=True,
        )
        sweeper = asyncio.create_task(self._sweep_forever(on_start), name="spyglass-stalled")
        try:
            await self.worker.run()
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)

    async def _sweep_forever(self, on_start: Callable[[int], Awaitable[None]] | None) -> None:
        while self.worker is not None and self.worker.worker_id is None:
            await asyncio.sleep(0.05)
        if on_start is not None and self.worker is not None and self.worker.worker_id:
            await on_start(self.worker.worker_id)
        while True:
            try:
                await self.recover_stalled()
            except Exception:
                log.exception("looking for stalled jobs failed")
            await asyncio.sleep(self.settings.worker_heartbeat)

    async def recover_stalled(self) -> list[str]:
        """Jobs whose worker stopped beating: run again (retries left) or end INTERRUPTED.

        Every worker looks; Procrastinate's own status change (`retry_job` or
        `finish_job` of a job still `doing`) decides which one acts on each job.
        """
        jm = self.app.job_manager
        await jm.prune_stalled_workers(self.settings.worker_stalled_after)
        stalled = await jm.get_stalled_jobs(
            task_name=RUN_TASK, seconds_since_heartbeat=self.settings.worker_stalled_after
        )
        taken = []
        for job in stalled:
            task_id = job.task_kwargs.get("task_id")
            if not isinstance(task_id, str) or job.id is None:
                continue
            try:
                rerun = await self.engine.can_rerun(task_id)
                if rerun:
                    hand_back = sa.text(HAND_BACK).bindparams(
                        job_id=job.id, worker_id=job.worker_id
                    )
                    if not await self.engine.requeued(task_id, hand_back):
                        continue  # another worker acted on it first
                else:
                    await jm.finish_job_by_id_async(job.id, status=Status.FAILED, delete_job=False)
            except Exception:  # another worker acted on it first
                log.info("stalled job %s (task %s) taken by another worker", job.id, task_id)
                continue
            if not rerun:
                await self.engine.interrupted(task_id)
            taken.append(task_id)
        return taken

    # -- what admins see -------------------------------------------------------------
    async def workers(self) -> list[dict[str, Any]]:
        """Each live Procrastinate worker: id, last heartbeat, and the tasks it runs."""
        async with self.app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
            cur = await conn.execute(
                "SELECT w.id, w.last_heartbeat, "
                "COALESCE(array_agg(j.args->>'task_id') FILTER (WHERE j.id IS NOT NULL), "
                "'{}') FROM procrastinate_workers w LEFT JOIN procrastinate_jobs j "
                "ON j.worker_id = w.id AND j.status = 'doing' GROUP BY w.id ORDER BY w.id"
            )
            rows = await cur.fetchall()
        return [
            {"id": int(r[0]), "last_heartbeat": r[1], "running": list(r[2] or [])} for r in rows
        ]

    async def alive_workers(self) -> int:
        async with self.app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
            cur = await conn.execute(
                "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > "
                "NOW() - make_interval(secs => %s)",
                (self.settings.worker_stalled_after,),
            )
            row = await cur.fetchone()
        return int(row[0]) if row else 0
