"""`@monitored_background_task`: marks a coroutine as a job of the state declaring it.

The decorator only records the function and its options; the state class
(`MonitorState`) turns each marked method into a registered `JobSpec` and a
page event that starts it, when the class is created.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, overload

from spyglass.tasks.registry import JobOptions, JobSpec, analyse_signature

JOB_MARKER = "__spyglass_job__"


class MonitoredJob:
    """A job function with its options, waiting for its state class to register it."""

    def __init__(self, fn: Callable[..., Any], options: JobOptions) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"{fn.__qualname__}: a monitored job must be `async def`")
        self.fn = fn
        self.options = options

    def __repr__(self) -> str:
        return f"<monitored job {self.fn.__qualname__}>"


@overload
def monitored_background_task(fn: Callable[..., Any], /) -> Any: ...
@overload
def monitored_background_task(
    fn: None = None,
    /,
    *,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    direct: bool | None = None,
    retries: int = 0,
    retry_backoff: float = 1.0,
    cost: int = 0,
    queue: str = "default",
    priority: int = 0,
    cron: str | None = None,
) -> Callable[[Callable[..., Any]], Any]: ...


def monitored_background_task(
    fn: Any = None,
    /,
    *,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    direct: bool | None = None,
    retries: int = 0,
    retry_backoff: float = 1.0,
    cost: int = 0,
    queue: str = "default",
    priority: int = 0,
    cron: str | None = None,
) -> Any:
    """Declare a monitored job; use bare or with options.

    `timeout` seconds (warning at 80 %, then FAILED/TIMEOUT), `max_concurrency`
    running at once (extra starts wait PENDING), `direct` (token-free API;
    default: static methods only), `retries` with exponential backoff starting
    at `retry_backoff` seconds, `cost` in credits; `queue` and `priority` (higher
    first) say where and in which order its runs wait; `cron` (five fields, UTC) also
    starts it on a schedule.
    """
    options = JobOptions(
        timeout=timeout,
        max_concurrency=max_concurrency,
        direct=direct,
        retries=retries,
        retry_backoff=retry_backoff,
        cost=cost,
        queue=queue,
        priority=priority,
        cron=cron,
    )

    def wrap(target: Any) -> Any:
        # The function itself is returned, tagged: Reflex's state metaclass must see a function.
        fn = target.__func__ if isinstance(target, staticmethod) else target
        setattr(fn, JOB_MARKER, MonitoredJob(fn, options))
        return target

    return wrap(fn) if fn is not None else wrap


def find_jobs(namespace: Mapping[str, Any]) -> Iterator[tuple[str, MonitoredJob, bool]]:
    """Yield (name, job, is_static) for each job declared in a class body."""
    for name, value in namespace.items():
        is_static = isinstance(value, staticmethod)
        job = getattr(value.__func__ if is_static else value, JOB_MARKER, None)
        if isinstance(job, MonitoredJob):
            yield name, job, is_static


def build_spec(
    state_name: str,
    aliases: tuple[str, ...],
    task_name: str,
    job: MonitoredJob,
    is_static: bool,
    state_cls: Any = None,
) -> JobSpec:
    sig = analyse_signature(job.fn, is_static)
    return JobSpec(
        state_name=state_name,
        task_name=task_name,
        fn=job.fn,
        is_static=is_static,
        options=job.options,
        doc=inspect.cleandoc(job.fn.__doc__ or ""),
        aliases=aliases,
        state_cls=state_cls,
        **sig,
    )
