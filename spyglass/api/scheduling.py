"""When and in which order a started run goes: the query parameters every start path takes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query

from spyglass.tasks.scheduling import Schedule


def start_schedule(
    priority: Annotated[
        int | None,
        Query(description="Runs with a higher priority start first (default: the job's)"),
    ] = None,
    queue: Annotated[
        str | None,
        Query(
            description="The queue it waits in (worker mode: workers take chosen queues)",
            max_length=64,
        ),
    ] = None,
    start_at: Annotated[
        datetime | None,
        Query(description="Start no earlier than this time (ISO 8601 with a time zone)"),
    ] = None,
    start_in: Annotated[
        float | None, Query(description="Start no earlier than this many seconds from now")
    ] = None,
) -> Schedule:
    return Schedule.of(priority=priority, queue=queue, start_at=start_at, start_in=start_in)


#: The schedule a start asked for (400 INVALID_SCHEDULE when it does not fit).
StartSchedule = Annotated[Schedule, Depends(start_schedule)]
