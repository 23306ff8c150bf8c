"""One writer thread that commits queued writes in groups.

Every write is its own unit of work, but all the units waiting when the thread
wakes are committed in one transaction: a status change is durable before its
caller goes on, yet a thousand tasks changing state at once cost a handful of
commits instead of a thousand. A unit that fails is retried alone, so one bad
write never takes its neighbours down with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

WriteFn = Callable[[Connection], None]
MAX_GROUP = 1000


@dataclass(slots=True)
class _Unit:
    fn: WriteFn
    future: asyncio.Future[None] | None
    loop: asyncio.AbstractEventLoop | None


_STOP = object()


class GroupCommitWriter:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[_Unit | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.commits = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="spyglass-db-writer", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Commit everything queued so far, then end the thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def submit(self, fn: WriteFn) -> asyncio.Future[None]:
        """Queue a write; the returned future resolves once it is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Unit(fn, future, loop))
        return future

    def submit_nowait(self, fn: WriteFn) -> None:
        """Queue a write nobody waits for (coalesced progress); failures are logged."""
        self._queue.put(_Unit(fn, None, None))

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            group: list[_Unit] = [first]  # type: ignore[list-item]
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)  # type: ignore[arg-type]
            self._commit(group)

    def _commit(self, group: list[_Unit]) -> None:
        try:
            with self._engine.begin() as conn:
                for unit in group:
                    unit.fn(conn)
            self.commits += 1
            _resolve(group, None)
        except Exception:
            if len(group) == 1:
                log.exception("database write failed")
                _resolve(group, _current_exception())
                return
            for unit in group:  # find the bad unit; commit the rest
                self._commit([unit])


def _current_exception() -> BaseException:
    import sys

    exc = sys.exc_info()[1]
    assert exc is not None
    return exc


def _resolve(group: list[_Unit], error: BaseException | None) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for unit in group:
        if unit.future is not None and unit.loop is not None:
            by_loop.setdefault(unit.loop, []).append(unit.future)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
            loop.call_soon_threadsafe(_settle, futures, error)


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
