"""The engine: one store, one bus, one runner per process, started and stopped with the server."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from spyglass.config import Settings, get_settings
from spyglass.errors import DomainError
from spyglass.tasks.bus import Bus, LocalBus, Subscription, TaskMessage, Topic
from spyglass.tasks.messages import row_of, socket_payload
from spyglass.tasks.models import new_task_id, utcnow
from spyglass.tasks.registry import JobSpec, Registry, UnknownJob, registry
from spyglass.tasks.runner import CANCEL_GRACE, Runner
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.store import TaskFilter, TaskStore

log = logging.getLogger(__name__)
RETRYABLE = (TaskStatus.FAILED.value, TaskStatus.CANCELLED.value)


class Engine:
    def __init__(self, settings: Settings, jobs: Registry = registry, bus: Bus | None = None):
        self.settings = settings
        self.registry = jobs
        self.store = TaskStore(settings.db_url, settings.progress_flush_interval)
        self.bus = bus or LocalBus()
        self.runner = Runner(self.store, self.bus)
        self.started = False
        self.interrupted_at_start: list[str] = []

    async def start(self) -> None:
        if self.started:
            return
        self.store.migrate()
        self.interrupted_at_start = self.store.fail_interrupted()
        if self.interrupted_at_start:
            log.warning(
                "marked %d task(s) left running by a stopped server as FAILED/INTERRUPTED",
                len(self.interrupted_at_start),
            )
        await self.store.start()
        await self.bus.start()
        self.started = True

    async def stop(self) -> None:
        if not self.started:
            return
        await self.runner.shutdown()
        await self.bus.close()
        await self.store.close()
        self.started = False

    # -- the operations pages and routes use ----------------------------
    async def start_job(self, spec: JobSpec, raw_args: Any, **who: Any) -> dict[str, Any]:
        """Validate the input (raises JobInputError) and start the job; returns the new row."""
        args = spec.parse_args(raw_args)
        return await self.runner.submit(spec, args, **who)

    async def get_row(self, task_id: str) -> dict[str, Any] | None:
        """The freshest view of a task: the live one if it runs here, else the stored one."""
        live = self.runner.live.get(task_id)
        if live is not None:
            return dict(live.row)
        task = await self.store.get_task(task_id)
        return row_of(task) if task is not None else None

    async def cancel(self, task_id: str) -> bool:
        """Ask a running task to stop; returns at once (False if it is not running here)."""
        return self.runner.cancel(task_id)

    async def cancel_and_wait(self, task_id: str) -> bool:
        """Cancel, then wait until the job has unwound and CANCELLED is recorded."""
        if not self.runner.cancel(task_id):
            return False
        await self.runner.wait(task_id, timeout=CANCEL_GRACE)
        return True

    async def retry(self, task_id: str) -> dict[str, Any]:
        """A new PENDING task with the same job, inputs and owner, linked by `retry_of`.

        States with a retry handler (data tools: same files, charged again) use it instead.
        """
        row = await self.get_row(task_id)
        if row is None:
            raise TaskNotFound(task_id)
        if row["status"] not in RETRYABLE:
            raise TaskStateError(f"Cannot retry task with status: {row['status']}")
        handler = self.registry.retry_handlers.get(row["state_name"])
        if handler is not None:
            return await handler(row)
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

        row = await self.get_row(task_id)
        if row is None:
            raise TaskNotFound(task_id)
        await self.cancel_and_wait(task_id)
        await self.store.delete_task(task_id)
        self.bus.publish(
            TaskMessage(
                task_id=task_id,
                state_name=row["state_name"],
                owner_id=row["owner_id"],
                client_id=row["client_id"],
                version=1 << 62,
                terminal=True,
                droppable=False,
                payload=socket_payload("deleted", row),
            )
        )
        prefix = task_prefix(row["owner_id"], task_id)
        return await asyncio.to_thread(get_storage().delete_prefix, prefix)

    async def delete_matching(self, flt: TaskFilter) -> int:
        """Delete every task that `flt` selects (bulk delete); returns how many went."""
        deleted = 0
        while True:
            tasks, _ = await self.store.list_tasks(flt, limit=100)
            if not tasks:
                return deleted
            for task in tasks:
                try:
                    await self.delete(task.id)
                    deleted += 1
                except TaskNotFound:
                    pass  # deleted meanwhile by someone else

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
    ) -> dict[str, Any]:
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
        await self.store.insert_task(row, [event])
        self._announce(row)
        return (await self.get_row(row["id"])) or row

    async def set_waiting_status(
        self, task_id: str, status: TaskStatus, message: str, values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Move a task no runner holds (CREATED, UPLOADING …) to `status`; record, announce."""
        now = utcnow()
        changes = {"status": status.value, "message": message, "updated_at": now, **(values or {})}
        seq = await self.store.next_seq(task_id)
        event_type = (
            "error" if status in (TaskStatus.UPLOAD_FAILED, TaskStatus.EXPIRED) else "status"
        )
        event = _event(task_id, seq, event_type, message, {"status": status.value})
        await self.store.update_task(task_id, changes, [event])
        row = await self.get_row(task_id)
        assert row is not None
        self._announce(row, terminal=status.is_terminal)
        return row

    async def expire_uploads(self, max_age: float) -> list[str]:
        """End EXPIRED every task still UPLOADING `max_age` seconds after its URLs were given."""
        expired = await self.store.uploads_older_than(utcnow() - timedelta(seconds=max_age))
        for task_id in expired:
            await self.set_waiting_status(
                task_id,
                TaskStatus.EXPIRED,
                "The upload URLs expired before processing started",
                {
                    "error_code": "UPLOAD_EXPIRED",
                    "error_message": "The upload URLs expired before processing started",
                },
            )
        return expired

    async def sweep_expired_uploads(self, max_age: float) -> None:
        """Run for the server's lifetime: expire abandoned uploads soon after their URLs die."""
        interval = max(0.5, min(60.0, max_age / 4))
        while True:
            try:
                await self.expire_uploads(max_age)
            except Exception:
                log.exception("sweeping expired uploads failed")
            await asyncio.sleep(interval)

    def _announce(self, row: dict[str, Any], terminal: bool = False) -> None:
        self.bus.publish(
            TaskMessage(
                task_id=row["id"],
                state_name=row["state_name"],
                owner_id=row["owner_id"],
                client_id=row.get("client_id"),
                version=0,
                terminal=terminal,
                droppable=False,
                payload=socket_payload("update", row),
            )
        )

    async def stats(self) -> dict[str, Any]:
        return await self.store.stats(utcnow() - timedelta(hours=24))

    async def watch(self, topic: Topic) -> Subscription:
        return self.bus.subscribe(topic)

    def snapshot_message(self, row: dict[str, Any]) -> dict[str, Any]:
        return socket_payload("snapshot", row)

    def live_version(self, task_id: str) -> int:
        live = self.runner.live.get(task_id)
        return live.version if live is not None else -1

    async def health(self) -> dict[str, Any]:
        import asyncio

        import sqlalchemy as sa

        def ping() -> None:
            with self.store.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))

        try:
            await asyncio.wait_for(asyncio.to_thread(ping), timeout=5)
            database: dict[str, Any] = {"status": "ok", "dialect": self.store.engine.dialect.name}
        except Exception as exc:
            database = {"status": "error", "detail": type(exc).__name__}
        return {
            "database": database,
            "bus": self.bus.health(),
            "running_tasks": sum(
                1 for lv in self.runner.live.values() if lv.status is TaskStatus.PROCESSING
            ),
        }


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
