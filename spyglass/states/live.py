"""Streaming engine changes into a browser tab's Reflex state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from spyglass.tasks.bus import Subscription, TaskMessage

log = logging.getLogger(__name__)
R = TypeVar("R")

#: At most one delta per tab per PUSH_INTERVAL seconds, however chatty the jobs.
PUSH_INTERVAL = 0.05
#: How often a feed asks Reflex whether its tab is still open (busy or idle).
CONNECTION_CHECK = 5.0


async def client_connected(token: str) -> bool:
    """Whether the browser tab behind `token` still has a Reflex socket open."""
    try:
        from reflex_base.registry import RegistrationContext

        namespace = RegistrationContext.get().app.event_namespace
        if namespace is None:
            return True
        manager = namespace._token_manager  # noqa: SLF001  (Reflex has no public way to ask)
        return await manager.is_token_connected(token)
    except Exception:  # an internal API moved: keep the stream rather than cut it
        log.debug("could not ask Reflex whether %s is connected", token, exc_info=True)
        return True


def supersede_watch(state: Any) -> tuple[int, str]:
    """Call inside `async with state`: this watch replaces the tab's earlier one (which stops
    at its next change, seeing a newer `_watch_gen`). Returns (generation, tab token)."""
    state._watch_gen += 1  # noqa: SLF001  (a backend-only var of every watching state)
    return state._watch_gen, state.router.session.client_token  # noqa: SLF001


class LiveFeed:
    """Batches of bus messages for one tab; `next()` returns None once the tab has closed.

    Task data is pushed by the bus, never polled: the only timer is the liveness check
    of the tab itself.
    """

    def __init__(self, sub: Subscription, client_token: str) -> None:
        self.sub = sub
        self.client_token = client_token
        self._loop = asyncio.get_running_loop()
        self._checked = self._loop.time()

    async def next(self, wait: float = CONNECTION_CHECK) -> list[TaskMessage] | None:
        """The next batch, or [] after `wait` seconds without one."""
        try:
            batch = await asyncio.wait_for(self.sub.get_batch(), timeout=wait)
        except TimeoutError:
            batch = []
        if self._loop.time() - self._checked >= CONNECTION_CHECK:
            if not await client_connected(self.client_token):
                return None
            self._checked = self._loop.time()
        return batch


def merge_page(
    rows: list[R],
    batch: list[TaskMessage],
    *,
    make_row: Callable[[TaskMessage, R | None], R],
    keeps: Callable[[TaskMessage], bool],
    add_new: bool,
    limit: int,
) -> list[R]:
    """A page of rows after a batch of changes: rows updated in place, rows that were deleted
    or stopped matching the page's filter dropped, and (`add_new`: the first page) tasks the
    page did not show yet put on top, newest first. `row.task_id` identifies a row."""
    latest: dict[str, TaskMessage] = {}
    for msg in batch:
        if msg.payload["type"] != "event":
            latest[msg.task_id] = msg
    if not latest:
        return rows
    out: list[R | None] = list(rows)
    index = {row.task_id: i for i, row in enumerate(rows)}  # type: ignore[attr-defined]
    fresh: list[R] = []
    for task_id, msg in latest.items():
        keep = msg.payload["type"] != "deleted" and keeps(msg)
        if task_id in index:
            i = index[task_id]
            out[i] = make_row(msg, rows[i]) if keep else None
        elif keep and add_new:
            fresh.append(make_row(msg, None))
    fresh.reverse()
    return (fresh + [r for r in out if r is not None])[:limit]
