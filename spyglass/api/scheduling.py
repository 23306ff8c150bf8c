"""When and in which order a started run goes: the query parameters every start path takes.

Their schema says exactly what is accepted (bounds, the queue-name pattern, an RFC 3339
time with its zone), so a value that does not fit is FastAPI's 422 with the parameter named.
The dependency is a coroutine function, so FastAPI calls it in place rather than in its
thread pool (a thread hand-off per start for a few comparisons).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError

from spyglass.tasks.registry import QUEUE_NAME
from spyglass.tasks.scheduling import MAX_AHEAD, Schedule

INT32 = 2**31
#: RFC 3339 `date-time` (years 1900–2199), e.g. `2026-12-01T09:00:00Z` or `…+01:00`.
START_AT = (
    r"^(19|20|21)\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(\.\d{1,9})?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)


def parse_start_at(raw: str, name: str = "start_at") -> datetime:
    """An RFC 3339 time the pattern admitted (query parameter `name`); a day the calendar
    has not is a 422."""
    try:
        return datetime.fromisoformat(raw.upper())
    except ValueError:
        raise RequestValidationError(
            [
                {
                    "type": "datetime_from_date_parsing",
                    "loc": ("query", name),
                    "msg": f"{raw!r} is not a time on the calendar",
                    "input": raw,
                }
            ]
        ) from None


async def start_schedule(
    priority: Annotated[
        int | None,
        Query(
            description="Runs with a higher priority start first (default: the job's)",
            ge=-INT32,
            le=INT32 - 1,
        ),
    ] = None,
    queue: Annotated[
        str | None,
        Query(
            description="The queue it waits in (worker mode: workers take chosen queues)",
            min_length=1,
            max_length=64,
            pattern=f"^{QUEUE_NAME.pattern}$",
        ),
    ] = None,
    start_at: Annotated[
        str | None,
        Query(
            description="Start no earlier than this time (RFC 3339, with its time zone); "
            "a time already past starts it now",
            pattern=START_AT,
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    start_in: Annotated[
        float | None,
        Query(
            description="Start no earlier than this many seconds from now (at most 366 days; "
            "with start_at too, the later of the two)",
            ge=0,
            le=MAX_AHEAD.total_seconds(),
            allow_inf_nan=False,
        ),
    ] = None,
) -> Schedule:
    at = parse_start_at(start_at) if start_at is not None else None
    return Schedule.of(priority=priority, queue=queue, start_at=at, start_in=start_in)


#: The schedule of a start that asks for none: now, in the job's queue, at its priority.
NO_SCHEDULE = Schedule()


#: The schedule a start asked for (422 when a value does not fit its parameter).
StartSchedule = Annotated[Schedule, Depends(start_schedule)]
