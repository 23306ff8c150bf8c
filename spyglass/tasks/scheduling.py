"""When and in which order runs start: a start's schedule, and the inline executor's
priority-ordered concurrency gate (worker mode leaves both to Procrastinate)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from spyglass.errors import DomainError
from spyglass.tasks.models import utcnow
from spyglass.tasks.registry import QUEUE_NAME

if TYPE_CHECKING:
    from spyglass.tasks.registry import JobSpec

#: The farthest ahead a start may be scheduled.
MAX_AHEAD = timedelta(days=366)


@dataclass(frozen=True)
class Schedule:
    """What a start may say about its run: queue, priority (higher first), earliest start.

    Anything left out comes from the job's declaration.
    """

    queue: str | None = None
    priority: int | None = None
    start_at: datetime | None = None

    @classmethod
    def of(
        cls,
        *,
        queue: str | None = None,
        priority: int | None = None,
        start_at: datetime | None = None,
        start_in: float | None = None,
    ) -> Schedule:
        """Checked: 400 INVALID_SCHEDULE with a plain message when a value does not fit."""
        if queue is not None and not QUEUE_NAME.fullmatch(queue):
            raise invalid("queue must be 1–64 letters, digits, '-', '_' or '.'")
        if priority is not None and not -(2**31) <= priority < 2**31:
            raise invalid("priority must be between -2147483648 and 2147483647")
        if start_at is not None and start_at.tzinfo is None:
            raise invalid("start_at needs a time zone, e.g. 2026-12-01T09:00:00Z")
        if start_in is not None:
            if not 0 <= start_in <= MAX_AHEAD.total_seconds():
                raise invalid("start_in must be between 0 and 31,622,400 seconds (366 days)")
            # Both say "no earlier than": the later of the two holds.
            after = utcnow() + timedelta(seconds=start_in)
            start_at = after if start_at is None else max(start_at, after)
        if start_at is not None and start_at <= utcnow():
            start_at = None  # due already: start now
        return cls(queue=queue, priority=priority, start_at=start_at)

    def columns(self, spec: JobSpec) -> dict[str, Any]:
        return {
            "queue": self.queue or spec.options.queue,
            "priority": spec.options.priority if self.priority is None else self.priority,
            "scheduled_at": self.start_at,
        }


def invalid(message: str) -> DomainError:
    return DomainError("INVALID_SCHEDULE", message, 400)


class PriorityGate:
    """At most `limit` holders; waiters get in highest priority first, then in arrival
    order. A waiter cancelled while waiting leaves no trace."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self, priority: int = 0) -> None:
        if self.held < self.limit and not self._waiting:
            self.held += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (-priority, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # it was let in just as it was cancelled: pass it on
            raise

    def release(self) -> None:
        self.held -= 1
        while self._waiting and self.held < self.limit:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                self.held += 1
                future.set_result(None)
