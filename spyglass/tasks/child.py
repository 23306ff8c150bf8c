"""CPU-bound work of a job in a child process of its own (pebble), killable and memory-capped.

Every call runs `fn` in a fresh process forked from a `multiprocessing` fork server (so the
web process's threads are never forked), under an address-space cap of
`SPYGLASS_JOB_MEMORY_MB` set in the child itself. Cancelling the awaiting job (a cancel, its
timeout, shutdown) terminates the child at once; so does the death of the web process. The
function, its arguments and its result cross the process boundary pickled.

The child may send messages to the job while it runs (`send`), which the job handles in
order (`on_message`): that is how the data tools stream their per-agent progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

import psutil
from pebble import ProcessExpired, concurrent

from spyglass.config import get_settings
from spyglass.errors import DomainError

R = TypeVar("R")
#: Modules the fork server imports once, so that each child starts warm.
PRELOAD = ["__main__", "spyglass.tasks.child", "pandas", "spyglass.tools.run"]
_PR_SET_PDEATHSIG = 1
#: Seconds between a child's looks at whether the web process is still there.
WATCH_INTERVAL = 0.25
_channel: Connection | None = None
_launcher: Callable[..., Any] | None = None
_lock = threading.Lock()


class ResourceLimitError(DomainError):
    """The job's child process needed more memory than a task may use, or died."""

    def __init__(self, message: str) -> None:
        super().__init__("RESOURCE_LIMIT", message, 413)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,))


def memory_message(limit_mb: int) -> str:
    return (
        f"This file needs more memory than a task may use ({limit_mb} MB): try a smaller "
        "file (fewer rows or columns), or ask the administrator to raise SPYGLASS_JOB_MEMORY_MB"
    )


def send(message: Any) -> None:
    """From inside a child: send `message` (picklable) to the job's `on_message`."""
    if _channel is None:
        raise RuntimeError("send() is only for code running in a job's child process")
    _channel.send(message)


def _watch(web_pid: int) -> None:
    """A thread of the child: end it once the web process that wants its result is gone.

    (Its parent is the fork server, which stays up while any child holds its alive pipe.)
    """
    while True:
        time.sleep(WATCH_INTERVAL)
        try:
            alive = psutil.Process(web_pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            alive = False
        if not alive:
            os._exit(1)


def _child_main(
    memory_mb: int,
    web_pid: int,
    channel: Connection | None,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    global _channel
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # stop at once, even inside C code
    if sys.platform.startswith("linux"):  # die with the fork server
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_watch, args=(web_pid,), name="web-watch", daemon=True).start()
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _channel = channel
    try:
        return fn(*args, **kwargs)
    except MemoryError:
        raise ResourceLimitError(memory_message(memory_mb)) from None


def _context() -> BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _launch() -> Callable[..., Any]:
    global _launcher
    with _lock:
        if _launcher is None:
            process: Any = concurrent.process  # it reads `context` (its stubs: `mp_context`)
            _launcher = process(daemon=True, context=_context())(_child_main)
        return _launcher


def _pump(reader: Connection, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any]) -> None:
    """A thread: the child's messages onto the job's queue, then None once the child is gone."""
    try:
        while True:
            message = reader.recv()
            loop.call_soon_threadsafe(queue.put_nowait, (message,))
    except (EOFError, OSError):
        pass
    finally:
        reader.close()
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(queue.put_nowait, None)


def _cancel_started(launching: asyncio.Future[Any]) -> None:
    """A child whose job stopped while it was being started: terminate it."""
    if not launching.cancelled() and launching.exception() is None:
        launching.result().cancel()


async def run_in_child(
    fn: Callable[..., R],
    *args: Any,
    on_message: Callable[[Any], Awaitable[None]] | None = None,
    **kwargs: Any,
) -> R:
    """Run `fn(*args, **kwargs)` in a child process and return its result.

    An exception raised by `fn` is raised here; a child that runs out of memory or dies
    raises `ResourceLimitError`. Cancelling this coroutine terminates the child.
    """
    memory_mb = get_settings().job_memory_mb
    loop = asyncio.get_running_loop()
    reader: Connection | None = None
    writer: Connection | None = None
    if on_message is not None:
        reader, writer = _context().Pipe(duplex=False)
    launch = _launch()
    web_pid = os.getpid()

    def start() -> Any:
        try:
            return launch(memory_mb, web_pid, writer, fn, args, kwargs)
        finally:
            if writer is not None:
                writer.close()  # the child holds its own end: EOF comes once it is gone

    # Off the event loop: starting the child waits for the fork server (the first time in a
    # process, for it to start and import PRELOAD: seconds on a busy machine), and every
    # other job and page of this process goes on meanwhile.
    launching = loop.run_in_executor(None, start)
    try:
        future = await asyncio.shield(launching)
    except asyncio.CancelledError:  # a cancel or timeout while it starts: stop it once up
        launching.add_done_callback(_cancel_started)
        if reader is not None:
            reader.close()
        raise
    try:
        if reader is not None and on_message is not None:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            pump = threading.Thread(
                target=_pump, args=(reader, loop, queue), name="child-messages", daemon=True
            )
            pump.start()  # it closes the reader
            reader = None
            while (item := await queue.get()) is not None:
                await on_message(item[0])
        return await asyncio.wrap_future(future)  # type: ignore[no-any-return]
    except MemoryError:
        raise ResourceLimitError(memory_message(memory_mb)) from None
    except ProcessExpired as exc:
        raise ResourceLimitError(
            f"The task's worker process stopped abruptly (exit code {exc.exitcode}), most "
            f"likely because it needed more memory than a task may use ({memory_mb} MB)"
        ) from None
    finally:
        future.cancel()  # terminates the child if it still runs (a cancel, a timeout)
        if reader is not None:
            reader.close()
