"""`TaskContext`: what a running job holds to report progress, log, and notice cancellation."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from spyglass.tasks.child import run_in_child
from spyglass.tasks.status import TaskStatus

R = TypeVar("R")
#: What a progress may be (not a bool).
_NUMBERS = (int, float)
LOG_LEVELS = ("debug", "info", "success", "warning", "error", "agent_started", "agent_completed")


class JobRun(Protocol):
    """What a job's context needs of the run it belongs to (the runner gives one per run)."""

    @property
    def task_id(self) -> str: ...

    @property
    def args(self) -> Any: ...

    @property
    def attempt(self) -> int: ...

    @property
    def progress(self) -> float: ...

    @property
    def cancel_requested(self) -> bool: ...

    def report_progress(self, progress: float | None, message: str | None, data: Any) -> None: ...

    def record_event(self, level: str, message: str, data: Any) -> None: ...

    async def save_output(
        self, filename: str, data: bytes, content_type: str, key: str, kind: str
    ) -> str: ...


class TaskContext:
    def __init__(self, run: JobRun) -> None:
        self._run = run

    @property
    def task_id(self) -> str:
        return self._run.task_id

    @property
    def args(self) -> Any:
        """The validated input (a Pydantic model, a dict for `**kwargs` jobs, or None)."""
        return self._run.args

    @property
    def attempt(self) -> int:
        return self._run.attempt

    @property
    def progress(self) -> float:
        return self._run.progress

    @property
    def cancelled(self) -> bool:
        return self._run.cancel_requested

    async def check_cancelled(self) -> None:
        """Stop here if the task was cancelled (raises `asyncio.CancelledError`)."""
        await asyncio.sleep(0)  # a pending cancellation lands here
        if self._run.cancel_requested:  # the job swallowed it earlier: stop now
            raise asyncio.CancelledError("task cancelled")

    async def update(
        self,
        progress: float | None = None,
        status: TaskStatus | str | None = None,
        message: str | None = None,
        data: Any = None,
    ) -> None:
        """Report progress (0–100, never going back), a status word, a message, extra data.

        Subscribers see it at once; the database gets it coalesced. A job may only
        set PROCESSING: it completes by returning and fails by raising.
        """
        if self._run.cancel_requested:
            await asyncio.sleep(0)  # a pending cancellation lands here
            raise asyncio.CancelledError("task cancelled")  # it was swallowed: stop now
        if progress is not None:
            kind = type(progress)  # a float or an int, the usual case, in two comparisons
            if (
                kind is not float
                and kind is not int
                and (kind is bool or not isinstance(progress, _NUMBERS))
            ):
                raise TypeError(f"progress must be a number from 0 to 100, got {progress!r}")
            if math.isnan(progress):
                raise ValueError("progress must be a number from 0 to 100, got NaN")
        if status is not None:
            parsed = TaskStatus.parse(status)
            if parsed is not TaskStatus.PROCESSING:
                raise ValueError(
                    f"a job cannot set status {parsed.value}: return a value to complete, "
                    "raise an exception to fail"
                )
        if message is not None and not isinstance(message, str):
            message = str(message)
        self._run.report_progress(progress, message, data)
        await asyncio.sleep(0)  # a cooperative point: other jobs run, cancellation lands

    async def log(self, message: str, level: str = "info", data: Any = None) -> None:
        """Add a line to the timeline (`level`: debug, info, success, warning, error,
        agent_started, agent_completed)."""
        if level not in LOG_LEVELS:
            raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
        self._run.record_event(level, str(message), data)
        await asyncio.sleep(0)

    async def save_output(
        self, filename: str, data: bytes, content_type: str, *, key: str, kind: str = "data"
    ) -> str:
        """Store an output file of this task (listed by the downloads endpoint)."""
        return await self._run.save_output(filename, data, content_type, key, kind)

    async def run_sync(
        self,
        fn: Callable[..., R],
        *args: Any,
        on_message: Callable[[Any], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> R:
        """Run CPU-bound `fn(*args, **kwargs)` in a child process of its own; return its result.

        `fn` (a module-level function), its arguments and its result are pickled across.
        Cancelling the task (a cancel, its timeout, shutdown) terminates the child at once;
        the child may use `SPYGLASS_JOB_MEMORY_MB` of memory, past which the task ends FAILED
        with `error_code=RESOURCE_LIMIT`. An exception `fn` raises is raised here.
        `on_message` is awaited, in order, with each message the child sends with
        `spyglass.tasks.child.send(…)` while it runs (e.g. to log or report progress).
        """
        return await run_in_child(fn, *args, on_message=on_message, **kwargs)
