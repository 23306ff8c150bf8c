"""Runs jobs as asyncio tasks: queueing, concurrency limits, timeouts, retries, cancellation.

Each running task has a `LiveTask` in this process: the freshest view of its row
(progress included, before the coalesced write lands) and the asyncio tasks that
run it, kept referenced so they are never garbage-collected mid-run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from spyglass.errors import DomainError
from spyglass.tasks import credits
from spyglass.tasks.bus import Bus, TaskMessage
from spyglass.tasks.child import ResourceLimitError
from spyglass.tasks.context import TaskContext
from spyglass.tasks.messages import socket_payload
from spyglass.tasks.models import new_task_id, utcnow
from spyglass.tasks.registry import JobSpec
from spyglass.tasks.scheduling import PriorityGate, Schedule
from spyglass.tasks.status import ErrorCode, TaskStatus
from spyglass.tasks.store import INTERRUPTED_MESSAGE, TaskStore
from spyglass.tasks.view import TaskChange

if TYPE_CHECKING:
    from spyglass.tasks.queue import QueueExecutor

log = logging.getLogger(__name__)

#: How long a cancel request waits for a job to unwind before answering anyway.
CANCEL_GRACE = 5.0
#: A live row's status while it runs (the enum's value, looked up once).
_PROCESSING = TaskStatus.PROCESSING.value
_TERMINAL_TIMESTAMP = {
    TaskStatus.COMPLETED: "completed_at",
    TaskStatus.FAILED: "failed_at",
    TaskStatus.CANCELLED: "cancelled_at",
}


@dataclass
class LiveTask:
    spec: JobSpec
    row: dict[str, Any]
    args: Any
    instance: Any = None
    version: int = 0
    #: The status its last message told (`_publish`): a status written but not told yet
    #: is not restated (`Runner.current`).
    told_status: str | None = None
    seq: int = 0
    cancel_requested: bool = False
    shutdown_requested: bool = False
    warned_clamp: bool = False
    started_mono: float | None = None
    queued_mono: float = field(default_factory=time.monotonic)
    #: Until when (monotonic clock) this worker's lease on the task is known to hold.
    lease_until: float = float("inf")
    #: Another worker may have taken the task over: this one writes nothing more of it.
    lease_lost: bool = False
    last_message_event: str | None = None
    #: Credits its finished units of paid work earned (`agent_completed` events).
    spent: int = 0
    #: The agents (units of work) that finished, by name.
    finished_units: list[str] = field(default_factory=list)
    runner_task: asyncio.Task[Any] | None = field(default=None, repr=False)
    #: Worker mode: run by a Procrastinate job; a failed attempt with retries left is
    #: handed back to the queue (`retry_in` seconds) instead of retried here.
    queued: bool = False
    retry_in: float | None = None
    #: Its runner task has begun (a task cancelled before that would never run its body).
    entered: bool = False
    #: Worker mode: whether a cancellation of the job comes from the worker stopping.
    shutting_down: Callable[[], bool] | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.row["id"]

    @property
    def status(self) -> TaskStatus:
        return TaskStatus(self.row["status"])

    def waited(self) -> float:
        """Seconds from queued to started."""
        return (self.started_mono or time.monotonic()) - self.queued_mono

    def ran(self) -> float:
        """Seconds since the current attempt started."""
        return time.monotonic() - (self.started_mono or time.monotonic())

    def new_event(self, event_type: str, message: str | None, data: Any = None) -> dict[str, Any]:
        self.seq += 1
        return {
            "task_id": self.id,
            "seq": self.seq,
            "timestamp": utcnow(),
            "event_type": event_type,
            "message": message,
            "data": data,
        }


#: Failures that another attempt on the same input would repeat: never retried automatically.
_NOT_RETRIED = frozenset({ErrorCode.RESOURCE_LIMIT, ErrorCode.BAD_INPUT_FILE})


def declared_code(exc: BaseException) -> ErrorCode | None:
    """The error code an exception's class declares (`error_code = "BAD_INPUT_FILE"`, one of
    `ErrorCode`), or None: then the failure is a JOB_ERROR."""
    declared = getattr(type(exc), "error_code", None)
    if not isinstance(declared, str):
        return None
    try:
        return ErrorCode(declared)
    except ValueError:
        return None


class QueueUnavailable(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "QUEUE_UNAVAILABLE", "The task queue cannot be reached right now; try again", 503
        )


class ShuttingDown(DomainError):
    def __init__(self) -> None:
        super().__init__(
            "SHUTTING_DOWN", "This server is shutting down and takes no new tasks; try again", 503
        )


class Runner:
    def __init__(self, store: TaskStore, bus: Bus, worker_id: str = "", lease_ttl: float = 15.0):
        self.store = store
        self.bus = bus
        self.live: dict[str, LiveTask] = {}
        self.accepting = True
        #: This process's name on the tasks it runs, and how long its leases hold.
        self.worker_id = worker_id
        self.lease_ttl = lease_ttl
        #: Called with (live task, status) on every status change (metrics).
        self.on_status: list[Any] = []
        #: Called with a running task's change (`TaskChange`: its view on demand) each time
        #: its progress or message moves.
        self.on_progress: list[Callable[[TaskChange], None]] = []
        #: The status of each live task that passed a status change here, and how many are
        #: in each: what health and metrics ask often, kept as counters rather than scans.
        self._statuses: dict[str, TaskStatus] = {}
        self.counts: dict[TaskStatus, int] = dict.fromkeys(TaskStatus, 0)
        #: With other workers about, a task whose lease lapsed (this process stalled longer
        #: than the lease) may run elsewhere now: this one stops writing it.
        self.fenced = not bus.single_process
        #: Whether this process answers every read of the tasks it runs (from their live
        #: rows). Then a start's Queued line and its PROCESSING change ride with the task's
        #: next write (a short job's start and end are one). With other processes about
        #: (workers behind one port, worker machines), they read these tasks from the
        #: database: a status change and its line are committed before they are told, so a
        #: reader there that subscribed too late for a message reads what it said.
        self.alone = bus.single_process
        #: Worker mode: where static jobs are queued instead of run here.
        self.queue: QueueExecutor | None = None
        #: Inline mode: runs waiting for their job's `max_concurrency`, by priority.
        self._gates: dict[tuple[str, str], PriorityGate] = {}

    def renewed(self, task_ids: list[str], since: float) -> None:
        """The leases of these tasks were renewed by a write that started at `since`."""
        for task_id in task_ids:
            live = self.live.get(task_id)
            if live is not None:
                live.lease_until = since + self.lease_ttl

    def holds(self, live: LiveTask) -> bool:
        """Whether this worker may still write the task (its lease has not lapsed)."""
        if live.lease_lost:
            return False
        if self.fenced and time.monotonic() > live.lease_until:
            log.warning("lease of task %s lapsed while this worker stalled; leaving it", live.id)
            live.lease_lost = True
            if live.runner_task is not None:
                live.runner_task.cancel()  # lands at the job's next await, even from inside it
            return False
        return True

    def lease(self) -> dict[str, Any]:
        """The columns that make this worker the holder of a task, for a lease's time."""
        return {
            "worker_id": self.worker_id,
            "lease_expires_at": utcnow() + timedelta(seconds=self.lease_ttl),
        }

    # -- starting --------------------------------------------------------
    async def submit(
        self,
        spec: JobSpec,
        args: Any,
        *,
        origin: str,
        owner_id: int | None = None,
        client_id: str | None = None,
        instance: Any = None,
        retry_of: str | None = None,
        schedule: Schedule | None = None,
    ) -> dict[str, Any]:
        """Record a PENDING task, schedule it, and return its row at once.

        A costed job is charged to `owner_id` in the transaction that records it: 403
        JOB_NEEDS_ACCOUNT without an owner, 402 when the owner's credits fall short.
        """
        if not self.accepting:
            raise ShuttingDown()
        cost = spec.options.cost
        if cost and owner_id is None:
            raise credits.needs_account(spec.state_name, spec.task_name, cost)
        now = utcnow()
        row: dict[str, Any] = {
            "id": new_task_id(),
            "state_name": spec.state_name,
            "task_name": spec.task_name,
            "status": TaskStatus.PENDING.value,
            "progress": 0.0,
            "message": "Queued",
            "input_args": _jsonable_args(args),
            "result": None,
            "error_code": None,
            "error_message": None,
            "origin": origin,
            "owner_id": owner_id,
            "client_id": client_id,
            "retry_of": retry_of,
            "attempt": 1,
            "cost": cost,
            "created_at": now,
            "updated_at": now,
            **(schedule or Schedule()).columns(spec),
            **self._holder(spec),
        }
        live = LiveTask(spec=spec, row=row, args=args, instance=instance)
        live.lease_until = time.monotonic() + self.lease_ttl
        event = live.new_event("status", "Queued", _queued_data(row))
        queued = self._defer(live)
        try:
            if cost and owner_id is not None:
                short = await asyncio.to_thread(
                    self.store.insert_charged, row, [event], owner_id, cost, queued
                )
                if short is not None:
                    raise credits.insufficient(short, {spec.task_name: cost}, spec.task_name)
            elif queued or not self.alone:
                await self.store.insert_task(row, [event], also=queued)
            else:
                # The job runs here, numbering its own lines: its Queued line is written
                # with the task's next write (at the latest the next coalesced flush), as its
                # PROCESSING line is, so the start commits the row alone and a short job's
                # three lines are one statement with its end. A read of the timeline writes
                # what is coalesced first (`flush_task`).
                await self.store.insert_task(row, [])
                self.store.update_task_soon(live.id, {}, [event])
        except DomainError:
            raise
        except Exception:
            if not queued:
                raise
            log.exception("queueing a run of %s failed", spec.key)
            raise QueueUnavailable() from None  # nothing was recorded, nothing charged
        await self._launch(live)
        return dict(live.row)

    async def adopt(
        self,
        spec: JobSpec,
        args: Any,
        row: dict[str, Any],
        seq: int,
        *,
        message: str = "Queued",
        attempt: int | None = None,
    ) -> dict[str, Any]:
        """Queue `spec` on a task that already exists: a tool task whose files have arrived,
        or (`attempt`) a task whose worker stopped, run again here.

        `row` is the stored task; `seq` the last timeline number it has.
        """
        if not self.accepting:
            raise ShuttingDown()
        values = {
            "status": TaskStatus.PENDING.value,
            "message": message,
            "input_args": _jsonable_args(args),
            "updated_at": utcnow(),
            **self._holder(spec),
        }
        if attempt is not None:
            values.update(attempt=attempt, progress=0.0)
        live = LiveTask(spec=spec, row={**row, **values}, args=args, seq=seq)
        if attempt is not None and row.get("cost"):  # run again: work done before still counts
            live.spent = await self.store.spent(live.id, int(row.get("cost") or 0))
        live.lease_until = time.monotonic() + self.lease_ttl
        event = live.new_event("status", message, _queued_data(live.row))
        queued = self._defer(live)
        try:
            await self.store.update_task(live.id, values, [event], also=queued)
        except Exception:
            if not queued:
                raise
            log.exception("queueing task %s failed", live.id)
            raise QueueUnavailable() from None
        await self._launch(live)
        return dict(live.row)

    def queues(self, spec: JobSpec) -> bool:
        """Whether runs of `spec` go to the worker queue (worker mode, static jobs: an
        instance job needs its browser's state, so it runs in the web process)."""
        return self.queue is not None and spec.is_static

    def _holder(self, spec: JobSpec) -> dict[str, Any]:
        """Who holds a task being queued: Procrastinate (worker mode: the statement from
        `_defer` records its job), or this process under a lease."""
        if self.queues(spec):
            return {"worker_id": None, "lease_expires_at": None, "queue_job_id": None}
        return self.lease()

    def _defer(self, live: LiveTask) -> list[Any]:
        """Worker mode: the statement that queues `live` in the transaction recording it."""
        if self.queue is not None and self.queues(live.spec):
            return [self.queue.defer_statement(live.row, live.spec)]
        return []

    async def _launch(self, live: LiveTask) -> None:
        """Announce a recorded PENDING task: queued already (worker mode), or run it here."""
        if self.queue is not None and self.queues(live.spec):
            self._publish(live, "update", droppable=False)
            return
        self.live[live.id] = live
        self._publish(live, "update", droppable=False)
        live.runner_task = asyncio.create_task(self._run(live), name=f"spyglass-task-{live.id}")

    async def run_queued(
        self,
        spec: JobSpec,
        args: Any,
        row: dict[str, Any],
        seq: int,
        *,
        worker: str,
        shutting_down: Callable[[], bool],
    ) -> LiveTask:
        """Worker mode: run a queued task here, inside the Procrastinate job's own asyncio
        task (an abort of the job cancels it), and return it ended or handed back."""
        live = LiveTask(spec=spec, row=dict(row), args=args, seq=seq, queued=True)
        live.row["worker_id"] = worker[:64] or None
        live.shutting_down = shutting_down
        if row.get("attempt", 1) > 1 and row.get("cost"):
            live.spent = await self.store.spent(live.id, int(row.get("cost") or 0))
        live.runner_task = asyncio.current_task()
        self.live[live.id] = live
        await self._run(live)
        return live

    # -- control ---------------------------------------------------------
    def cancel(self, task_id: str) -> bool:
        """Ask a live task to stop; it ends CANCELLED once its job has unwound."""
        live = self.live.get(task_id)
        if live is None or live.cancel_requested or live.status.is_terminal:
            return False
        live.cancel_requested = True
        if live.runner_task is not None and live.entered:  # else `_run` sees the flag first
            live.runner_task.cancel()
        return True

    async def wait(self, task_id: str, timeout: float | None = None) -> None:
        live = self.live.get(task_id)
        if live is not None and live.runner_task is not None:
            await asyncio.wait({live.runner_task}, timeout=timeout)

    async def shutdown(self, grace: float = 0.0) -> None:
        """Stop taking work; let what runs finish for up to `grace` seconds, then end the
        rest FAILED/INTERRUPTED (retryable). Tasks still waiting for a slot end at once."""
        self.accepting = False
        for live in list(self.live.values()):
            if live.status is TaskStatus.PENDING:
                self._interrupt(live)
        running = [lv.runner_task for lv in self.live.values() if lv.runner_task is not None]
        if running and grace > 0:
            log.info("waiting up to %g s for %d running task(s) to finish", grace, len(running))
            await asyncio.wait(running, timeout=grace)
        lives = list(self.live.values())
        for live in lives:
            self._interrupt(live)
        tasks = [lv.runner_task for lv in lives if lv.runner_task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_GRACE + 1)

    def _interrupt(self, live: LiveTask) -> None:
        live.shutdown_requested = True
        if live.runner_task is not None and live.entered:
            live.runner_task.cancel()

    # -- reporting from the job -----------------------------------------
    def report_progress(
        self, live: LiveTask, progress: float | None, message: str | None, data: Any
    ) -> None:
        if not self.holds(live):
            return
        row = live.row
        changed: dict[str, Any] = {}
        events: list[dict[str, Any]] = []
        if progress is not None:
            value = float(progress)
            if not 0.0 <= value <= 100.0:
                clamped = min(100.0, max(0.0, value))
                if not live.warned_clamp:
                    live.warned_clamp = True
                    events.append(
                        live.new_event(
                            "warning",
                            f"progress {value:g} is outside 0–100; clamped to {clamped:g}",
                            {"reported": value},
                        )
                    )
                value = clamped
            if value > row["progress"]:
                changed["progress"] = value
        if message is not None and message != row.get("message"):
            changed["message"] = message
            if message != live.last_message_event:
                live.last_message_event = message
                now_progress = changed.get("progress", row["progress"])
                events.append(live.new_event("progress", message, {"progress": now_progress}))
        if not changed and data is None and not events:
            return
        row.update(changed)
        row["updated_at"] = utcnow()
        # Told first, made straight from the row (sockets wait for nothing else); written
        # at the next coalesced flush; then the hooks, with a view of the row.
        self._publish(live, "update", droppable=True, data=data)
        for ev in events:
            self._publish(live, "event", droppable=False, event=ev)
        self.store.update_task_soon(live.id, {**changed, "updated_at": row["updated_at"]}, events)
        if changed and self.on_progress:
            change = TaskChange(row)
            for hook in self.on_progress:
                try:
                    hook(change)
                except Exception:  # a hook never breaks a task
                    log.exception("progress hook failed")

    def record_event(self, live: LiveTask, level: str, message: str, data: Any) -> None:
        if not self.holds(live):
            return
        event = live.new_event(level, message, _jsonable(data))
        if level == credits.WORK_DONE:
            live.spent += credits.earned(data, int(live.row.get("cost") or 0))
            if isinstance(data, dict) and isinstance(data.get("agent"), str):
                live.finished_units.append(data["agent"])
        live.last_message_event = message  # an update() with the same message adds no line
        self.store.update_task_soon(live.id, {}, [event])
        self._publish(live, "event", droppable=False, event=event)

    async def save_output(
        self, live: LiveTask, filename: str, data: bytes, content_type: str, key: str, kind: str
    ) -> str:
        from spyglass.storage import get_storage, output_key

        if not self.holds(live):
            raise asyncio.CancelledError  # another worker has the task: stop running it
        storage = get_storage()
        storage_key = output_key(live.row.get("owner_id"), live.id, filename)
        await asyncio.to_thread(storage.write, storage_key, data, content_type)
        await self.store.add_output(
            {
                "task_id": live.id,
                "role": "output",
                "key": key,
                "filename": storage_key.rsplit("/", 1)[-1],
                "content_type": content_type,
                "size_bytes": len(data),
                "storage_key": storage_key,
                "type": kind,
                "created_at": utcnow(),
            }
        )
        return storage_key

    # -- running ---------------------------------------------------------
    async def _run(self, live: LiveTask) -> None:
        gate = None if live.queued else self._gate(live.spec)
        live.entered = True
        try:
            try:
                if live.cancel_requested or live.shutdown_requested:
                    raise asyncio.CancelledError  # asked to stop before it began
                scheduled = live.row.get("scheduled_at")
                if scheduled is not None and not live.queued:
                    delay = (scheduled - utcnow()).total_seconds()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if gate is not None:
                    await gate.acquire(int(live.row.get("priority") or 0))
                try:
                    await self._attempts(live)
                finally:
                    if gate is not None:
                        gate.release()
            except asyncio.CancelledError:
                await self._end_cancelled(live)
        except Exception:  # the engine itself failed: never leave the task hanging
            log.exception("runner failed for task %s", live.id)
            with suppress(Exception):
                await self._finish(
                    live,
                    TaskStatus.FAILED,
                    error_code=ErrorCode.JOB_ERROR,
                    error_message="Internal error while running the task",
                )
        finally:
            self.live.pop(live.id, None)
            self._count(live.id, None)

    def _count(self, task_id: str, status: TaskStatus | None) -> None:
        """Move a live task to `status` in the counters (None: it is live here no more)."""
        old = self._statuses.pop(task_id, None)
        if old is not None:
            self.counts[old] -= 1
        if status is not None:
            self._statuses[task_id] = status
            self.counts[status] += 1

    async def _end_cancelled(self, live: LiveTask) -> None:
        if live.row["status"] in _TERMINAL_TIMESTAMP:
            return
        if live.shutting_down is not None and live.shutting_down():
            live.shutdown_requested = True
        if live.shutdown_requested and not live.cancel_requested:
            await self._finish(
                live,
                TaskStatus.FAILED,
                error_code=ErrorCode.INTERRUPTED,
                error_message=INTERRUPTED_MESSAGE,
            )
        else:
            await self._finish(live, TaskStatus.CANCELLED, message="Cancelled")

    async def _attempts(self, live: LiveTask) -> None:
        spec = live.spec
        max_attempts = 1 + spec.options.retries
        first_start = utcnow()
        while True:
            attempt = live.row["attempt"]
            values: dict[str, Any] = {"attempt": attempt, "progress": 0.0}
            if attempt == 1:
                values["processing_started_at"] = first_start
            live.started_mono = time.monotonic()
            label = "Processing" if attempt == 1 else f"Processing (attempt {attempt})"
            await self._set_status(live, TaskStatus.PROCESSING, label, values)
            outcome, value = await self._run_body(live)
            if outcome == "ok":
                try:
                    result = _jsonable(value)  # plain JSON values, or it raises
                except (TypeError, ValueError) as exc:
                    await self._finish(
                        live,
                        TaskStatus.FAILED,
                        error_code=ErrorCode.RESULT_NOT_SERIALIZABLE,
                        error_message=f"The job returned a value that is not JSON: {exc}",
                    )
                    return
                await self._finish(live, TaskStatus.COMPLETED, result=result, message="Completed")
                return
            if outcome == "cancelled":
                await self._end_cancelled(live)
                return
            if outcome == "timeout":
                code = ErrorCode.TIMEOUT
                error = f"Timed out after {spec.options.timeout:g} s"
            elif isinstance(value, ResourceLimitError):
                code = ErrorCode.RESOURCE_LIMIT
                error = value.message
            else:
                code = declared_code(value) or ErrorCode.JOB_ERROR
                # Either way people read the exception's own words, never its class name
                # (that goes to the server log with the traceback).
                error = job_error_message(value)
            if attempt < max_attempts and code not in _NOT_RETRIED:
                delay = spec.options.retry_backoff * 2 ** (attempt - 1)
                self.record_event(
                    live,
                    "warning",
                    f"Attempt {attempt} of {max_attempts} failed ({error}); "
                    f"retrying in {delay:g} s",
                    {"error_code": code.value, "attempt": attempt, "retry_in": delay},
                )
                if live.queued:  # Procrastinate runs the next attempt, on any worker
                    live.retry_in = delay
                    await self._set_status(
                        live,
                        TaskStatus.PENDING,
                        f"Waiting to retry (attempt {attempt + 1} of {max_attempts})",
                        {
                            "attempt": attempt + 1,
                            "scheduled_at": utcnow() + timedelta(seconds=delay),
                            "worker_id": None,
                        },
                    )
                    return
                await asyncio.sleep(delay)
                live.row["attempt"] = attempt + 1
                live.row["progress"] = 0.0
                live.warned_clamp = False
                continue
            await self._finish(live, TaskStatus.FAILED, error_code=code, error_message=error)
            return

    async def _run_body(self, live: LiveTask) -> tuple[str, Any]:
        """Run one attempt; returns (outcome, value), outcome one of ok/error/timeout/cancelled.

        The job runs inside this runner task, so cancelling the runner task lands in the
        job's own await; the CancelledError propagates to `_run`, which records CANCELLED.
        """
        spec = live.spec
        ctx = TaskContext(_Run(self, live))
        timeout = spec.options.timeout
        if timeout is None:
            try:
                value = await _invoke(spec, live, ctx)
            except Exception as exc:
                return self._job_error(live, exc)
        else:
            loop = asyncio.get_running_loop()
            warning = loop.call_later(timeout * 0.8, self._warn_timeout, live, timeout)
            limit = asyncio.timeout(timeout)
            try:
                async with limit:
                    value = await _invoke(spec, live, ctx)
            except TimeoutError as exc:
                if limit.expired():
                    return ("timeout", None)
                return self._job_error(live, exc)
            except Exception as exc:
                return self._job_error(live, exc)
            finally:
                warning.cancel()
        if live.cancel_requested:  # the job swallowed the cancellation and returned
            return ("cancelled", None)
        return ("ok", value)

    def _job_error(self, live: LiveTask, exc: Exception) -> tuple[str, Any]:
        log.info("task %s failed: %s", live.id, exc, exc_info=exc)
        return ("error", exc)

    def _warn_timeout(self, live: LiveTask, timeout: float) -> None:
        if not live.status.is_terminal:
            self.record_event(
                live,
                "warning",
                f"80% of the {timeout:g} s time limit has passed",
                {"timeout": timeout},
            )

    # -- state changes ---------------------------------------------------
    async def _set_status(
        self, live: LiveTask, status: TaskStatus, message: str, extra: dict[str, Any]
    ) -> None:
        if not self.holds(live):
            raise asyncio.CancelledError  # another worker has the task: stop running it
        now = utcnow()
        values = {"status": status.value, "message": message, "updated_at": now, **extra}
        live.row.update(values)
        event = live.new_event("status", message, {"status": status.value})
        if status is TaskStatus.PROCESSING and self.alone:
            # Written with the next coalesced flush, or with the end if that comes first (a
            # short job's PROCESSING and COMPLETED are one write, its timeline complete);
            # announced at once, like progress. An end is always written before it is told.
            self.store.update_task_soon(live.id, values, [event])
        else:
            await self.store.update_task(live.id, values, [event])
        # The status line rides with the change, so a page drawing the timeline live has it.
        self._publish(live, "update", droppable=False, event=event)
        self._status_changed(live, status)

    async def _finish(
        self,
        live: LiveTask,
        status: TaskStatus,
        *,
        result: Any = None,
        message: str | None = None,
        error_code: ErrorCode | None = None,
        error_message: str | None = None,
    ) -> None:
        if not self.holds(live):
            return
        now = utcnow()
        started = live.row.get("processing_started_at")
        values: dict[str, Any] = {
            "status": status.value,
            "updated_at": now,
            _TERMINAL_TIMESTAMP[status]: now,
            "result": result,
            "error_code": error_code.value if error_code else None,
            "error_message": error_message,
            "message": message or error_message,
            "execution_time_ms": int((now - started).total_seconds() * 1000) if started else None,
            "lease_expires_at": None,
        }
        if status is TaskStatus.COMPLETED:
            values["progress"] = 100.0
        settled = live.row["status"] in _TERMINAL_TIMESTAMP  # its credits were settled then
        live.row.update(values)
        event_type = {"COMPLETED": "success", "CANCELLED": "status"}.get(status.value, "error")
        data: dict[str, Any] = {"status": status.value}
        if error_code:
            data["error_code"] = error_code.value
            data["retryable"] = error_code in (ErrorCode.INTERRUPTED, ErrorCode.TIMEOUT)
        refund = 0 if settled else credits.refund_due(live.row, status.value, live.spent)
        refunds = [credits.give_back(live.row["owner_id"], refund)] if refund else []
        line = values["message"]
        if refund:
            data["refunded"] = refund
            note = credits.refund_note(refund, live.row.get("agents"), live.finished_units)
            line = f"{line} · {note}"
        event = live.new_event(event_type, line, data)
        try:
            await self.store.update_task(live.id, values, [event], also=refunds)
        finally:  # the write is queued even if a late cancellation interrupts the wait
            self._publish(live, "update", droppable=False, terminal=True, event=event)
            self._status_changed(live, status)

    def _publish(
        self,
        live: LiveTask,
        kind: str,
        *,
        droppable: bool,
        terminal: bool = False,
        event: dict[str, Any] | None = None,
        data: Any = None,
    ) -> None:
        """Tell the task's subscribers (the message is made from its live row)."""
        live.version += 1
        live.told_status = live.row["status"]
        if self.bus.has_listeners(live.id):
            self.bus.publish(self._message(live, kind, droppable, terminal, event, data))

    def current(self, task_id: str) -> TaskMessage | None:
        """The current state of a task running here, restated as an update of its last
        version (for a reader in another process, `Bus.on_current`); None if it does not
        run here, or if its status changed and is not told yet (being written: the change
        itself is on its way, the end included)."""
        live = self.live.get(task_id)
        if live is None or live.row["status"] != live.told_status:
            return None
        return self._message(live, "update", droppable=True, restated=True)

    def _message(
        self,
        live: LiveTask,
        kind: str,
        droppable: bool,
        terminal: bool = False,
        event: dict[str, Any] | None = None,
        data: Any = None,
        restated: bool = False,
    ) -> TaskMessage:
        row = live.row
        eta = rate = None
        if kind == "update" and row["status"] == _PROCESSING and live.started_mono:
            elapsed = time.monotonic() - live.started_mono
            progress = row["progress"]
            # The ETA from the rate as measured, not as shown (a creeping job's rounds to 0);
            # both to the thousandth, by arithmetic (`round` to places is several times
            # dearer, and this runs on every update before any socket is written).
            per_second = progress / elapsed if elapsed > 0 else 0.0
            if per_second > 0:
                rate = int(per_second * 1000 + 0.5) / 1000
                left = (100.0 - progress) / per_second  # up to infinity for a tiny progress
                if left < ETA_MAX:
                    eta = int(left * 1000 + 0.5) / 1000
        payload = socket_payload(
            kind,
            row,
            eta_seconds=eta,
            rate=rate,
            event=event,
            data=_jsonable(data),
        )
        return TaskMessage(
            task_id=live.id,
            state_name=row["state_name"],
            owner_id=row.get("owner_id"),
            client_id=row.get("client_id"),
            version=live.version,
            terminal=terminal,
            droppable=droppable,
            payload=payload,
            fence=(lambda: self.holds(live)) if self.fenced else None,
            attempt=int(row.get("attempt") or 1),
            restated=restated,
        )

    def _status_changed(self, live: LiveTask, status: TaskStatus) -> None:
        self._count(live.id, None if status.is_terminal else status)
        for hook in self.on_status:
            try:
                hook(live, status)
            except Exception:  # a metrics hook never breaks a task
                log.exception("status hook failed")

    def _gate(self, spec: JobSpec) -> PriorityGate | None:
        limit = spec.options.max_concurrency
        if limit is None:
            return None
        gate = self._gates.get(spec.key)
        if gate is None:
            gate = self._gates[spec.key] = PriorityGate(limit)
        return gate


@dataclass(frozen=True, slots=True)
class _Run:
    """One run of a job as its `TaskContext` sees it: its live task, reported through the
    runner."""

    runner: Runner
    live: LiveTask

    @property
    def task_id(self) -> str:
        return self.live.id

    @property
    def args(self) -> Any:
        return self.live.args

    @property
    def attempt(self) -> int:
        return int(self.live.row["attempt"])

    @property
    def progress(self) -> float:
        return float(self.live.row["progress"])

    @property
    def cancel_requested(self) -> bool:
        return self.live.cancel_requested

    def report_progress(self, progress: float | None, message: str | None, data: Any) -> None:
        self.runner.report_progress(self.live, progress, message, data)

    def record_event(self, level: str, message: str, data: Any) -> None:
        self.runner.record_event(self.live, level, message, data)

    async def save_output(
        self, filename: str, data: bytes, content_type: str, key: str, kind: str
    ) -> str:
        return await self.runner.save_output(self.live, filename, data, content_type, key, kind)


async def _invoke(spec: JobSpec, live: LiveTask, ctx: TaskContext) -> Any:
    call: list[Any] = [] if spec.is_static else [live.instance]
    call.append(ctx)
    if spec.input_model is not None:
        return await spec.fn(*call, live.args)
    if spec.takes_kwargs:
        return await spec.fn(*call, **(live.args or {}))
    return await spec.fn(*call)


def job_error_message(exc: BaseException) -> str:
    """What a failed job tells people: the exception's own words, never its class name
    (that goes to the server log with the traceback)."""
    words = str(exc).strip()
    if isinstance(exc, KeyError) and words:
        # str(KeyError("price")) is just "'price'": say what it means.
        words = f"No value for the key {words}"
    return words[:2000] if words else "The job stopped on an error it did not describe"


def _queued_data(row: dict[str, Any]) -> dict[str, Any]:
    """The timeline data of a move to PENDING: when it may start, where it waits."""
    data: dict[str, Any] = {"status": TaskStatus.PENDING.value}
    if row.get("scheduled_at") is not None:
        data["scheduled_at"] = row["scheduled_at"].isoformat()
    if row.get("queue") not in (None, "default"):
        data["queue"] = row["queue"]
    if row.get("priority"):
        data["priority"] = row["priority"]
    return data


#: The longest ETA told, in seconds (about 31 million years): past it, none means anything.
ETA_MAX = 1e15

#: Values `to_jsonable_python` gives back as they are.
_SCALARS = frozenset({str, int, float, bool, type(None)})
_TEXT = frozenset({str})


def _jsonable(value: Any) -> Any:
    """`value` as plain JSON values (pydantic's `to_jsonable_python`); a scalar, or a flat
    dict of scalars by text keys (a progress report's usual data), without it."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if (
        kind is dict
        and _TEXT.issuperset(map(type, value))
        and _SCALARS.issuperset(map(type, value.values()))
    ):
        return dict(value)
    return to_jsonable_python(value)


def _jsonable_args(args: Any) -> dict[str, Any] | None:
    if args is None:
        return None
    if isinstance(args, BaseModel):
        return args.model_dump(mode="json")
    return _jsonable(args)
