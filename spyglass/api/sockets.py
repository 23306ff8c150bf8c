"""Progress sockets (S004): the current state first, then every change, one JSON object per message.

A late subscriber misses nothing: the socket subscribes to the bus before it
reads the snapshot, and skips buffered changes the snapshot already contains.
A single-task socket closes 1000 after the terminal message; an unknown task
gets an error message and close 1008, with nothing else disclosed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.types import Message
from starlette.websockets import WebSocketDisconnect, WebSocketState

from spyglass.api.direct import visible_without_token
from spyglass.api.front import RAW_SEND
from spyglass.metrics import SOCKET_CLIENTS
from spyglass.tasks.bus import Subscription, SubscriptionClosed, TaskMessage, Topic
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import socket_payload
from spyglass.tasks.view import TaskView

POLICY_VIOLATION = 1008
NORMAL_CLOSURE = 1000


@contextlib.asynccontextmanager
async def socket_session(ws: WebSocket) -> AsyncIterator[None]:
    """Accept; however the body ends (a client leaving included), leave the socket closed."""
    await ws.accept()
    SOCKET_CLIENTS.inc()
    try:
        yield
    except WebSocketDisconnect:
        pass
    finally:
        SOCKET_CLIENTS.dec()
        if ws.application_state is not WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError):
                await ws.close(NORMAL_CLOSURE)


async def reject(ws: WebSocket, detail: str, error_code: str) -> None:
    await ws.send_text(json.dumps({"type": "error", "detail": detail, "error_code": error_code}))
    await ws.close(POLICY_VIOLATION)


async def _wait_disconnect(ws: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return


def frame_sender(ws: WebSocket) -> Callable[[Message], Awaitable[None]]:
    """What writes a data frame to `ws`: the server's own `send` when the front door left it
    (every layer between only hands `websocket.send` on), else Starlette's."""
    raw: Callable[[Message], Awaitable[None]] | None = ws.scope.get(RAW_SEND)
    return raw if raw is not None else ws.send


class Feed:
    """Writes a subscription's messages to one socket, in order: each as soon as it is
    published if the socket's last write is done, else as soon as that write is done.

    No task waits per socket: the subscription calls `_pump` when a message arrives. A write
    still in flight then is followed up by a callback (`_written`); one done by the time the
    next message comes (the usual case) needs none, so a socket that keeps up costs one
    `send` per message and nothing more. While a write is in flight the subscription buffers
    what comes, coalescing older progress for a reader that falls behind (status changes,
    timeline lines and the end are never dropped nor reordered). Each message is encoded
    once (`TaskMessage.json`) whatever the number of sockets.
    """

    __slots__ = (
        "_done",
        "_end_at_terminal",
        "_followed",
        "_futures",
        "_keep",
        "_keeps_on",
        "_last",
        "_over",
        "_raw",
        "_send",
        "_sent",
        "_sub",
    )

    def __init__(
        self,
        ws: WebSocket,
        sub: Subscription,
        keep: Callable[[TaskMessage], bool],
        *,
        end_at_terminal: bool,
        keeps_on: bool = False,
    ) -> None:
        self._send = frame_sender(ws)
        #: Whether `_send` is the server's own (it returns a future; see `frame_sender`).
        self._raw = ws.scope.get(RAW_SEND) is not None
        #: Whether the server's own send returns futures (Granian's), once it has sent.
        self._futures: bool | None = None
        self._sub = sub
        #: Which messages this socket is sent; None: every one (`keeps_on`: once `keep`
        #: took one, it takes every later one, as a task's own messages come in order).
        self._keep: Callable[[TaskMessage], bool] | None = keep
        self._keeps_on = keeps_on
        self._end_at_terminal = end_at_terminal
        #: The last write, until it is seen done; whether a callback follows it up; whether
        #: it was of the terminal message.
        self._sent: asyncio.Future[None] | None = None
        self._followed = False
        self._last = False
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: `_finish` was called: read on every message (an attribute, not a call). `_pump`
        #: asks `_done` itself, which a cancelled `run` also cancels: a write still in
        #: flight then calls `_written` to write nothing more.
        self._over = False

    async def run(self) -> None:
        """Until the terminal message is written (`end_at_terminal`); raises if a write fails
        or the subscription closes."""
        self._sub.listen(self._pump, self._offer)
        try:
            self._pump()
            await self._done
        finally:
            self._sub.listen(None)
            if self._sent is not None:  # its outcome is of no more use: not reported
                self._sent.add_done_callback(_outcome_read)

    def _finish(self, error: BaseException | None = None) -> None:
        self._over = True
        if not self._done.done():
            if error is None:
                self._done.set_result(None)
            else:
                self._done.set_exception(error)

    def _idle(self) -> bool:
        """Whether the last write is done and the stream goes on (a write that failed, or
        that was of the end, finishes the feed)."""
        sent = self._sent
        return sent is None or (sent.done() and self._settle(sent))

    def _settle(self, sent: asyncio.Future[None]) -> bool:
        """Look at the outcome of the last write, done: True if the stream goes on."""
        self._sent = None
        error = _failure(sent)
        if error is not None or self._last:
            self._finish(error)
            return False
        return True

    def _write(self, msg: TaskMessage) -> None:
        self._last = msg.terminal and self._end_at_terminal
        # Granian's send starts the write at once and returns a future; another server's,
        # or Starlette's (tests), is a coroutine, run as a task. The server's own takes the
        # frame every socket is sent (it only reads it); Starlette's, with layers of the
        # app's between, a frame of its own.
        if self._raw:
            sent = self._send(msg.frame())
            if self._futures is None:  # what the server's send gives, seen once
                self._futures = asyncio.isfuture(sent)
            if self._futures:
                self._sent = sent  # type: ignore[assignment]  # a future (`_futures`)
                return
        else:
            sent = self._send({"type": "websocket.send", "text": msg.json()})
        self._sent = sent if asyncio.isfuture(sent) else asyncio.ensure_future(sent)

    def _pump(self) -> None:
        """Write what waits, one message at a time (called by the publisher and by
        `_written`: never raises)."""
        try:
            while not self._done.done():
                if not self._idle():
                    sent = self._sent
                    if sent is not None and not self._followed:
                        self._followed = True
                        sent.add_done_callback(self._written)
                    return
                msg = self._sub.take()
                if msg is None:
                    if self._sub.closed:
                        self._finish(SubscriptionClosed())
                    return
                if not self._kept(msg):
                    continue
                self._write(msg)
                if not self._last and not self._sub.waiting:
                    return  # idle: the next message looks at this write
        except Exception as exc:
            self._finish(exc)

    def _offer(self, msg: TaskMessage) -> bool:
        """A message published while none waits for this socket: written at once if the last
        write is done (a reader that keeps up, the usual case: one `send`, no buffering, no
        wake-up), else False and the subscription buffers it for `_pump` (never raises)."""
        try:
            sent = self._sent
            if sent is not None:  # `_idle`, inlined for a write that went well
                if not sent.done():
                    return False
                try:  # `_failure`, inlined
                    over = self._last or sent.exception() is not None
                except asyncio.CancelledError:
                    over = True
                if over:
                    return self._settle(sent)  # the feed is over
                self._sent = None
            if self._over:
                return False
            keep = self._keep
            if keep is None or self._kept(msg):
                if self._futures and not msg.terminal:  # `_write`'s usual case, inlined
                    self._sent = self._send(msg.frame())  # type: ignore[assignment]
                    return True
                self._write(msg)
                if self._last:
                    self._pump()  # the end is being written: finish once it is
            return True  # written, or not for this reader (`_pump` skips it too)
        except Exception as exc:
            self._finish(exc)
            return False

    def _kept(self, msg: TaskMessage) -> bool:
        """Whether this socket is sent `msg`."""
        keep = self._keep
        if keep is None:
            return True
        if not keep(msg):
            return False
        if self._keeps_on:
            self._keep = None
        return True

    def _written(self, sent: asyncio.Future[None]) -> None:
        self._followed = False
        self._pump()


def _failure(sent: asyncio.Future[None]) -> BaseException | None:
    """The error of a write that is done (a cancelled one's too), or None."""
    try:
        return sent.exception()
    except asyncio.CancelledError as exc:
        return exc


def _outcome_read(sent: asyncio.Future[None]) -> None:
    if not sent.cancelled():
        sent.exception()


async def stream_task(
    ws: WebSocket, sub: Subscription, snapshot_version: int, snapshot: TaskView
) -> None:
    """Send every change newer than the snapshot; stop after the terminal message.

    A task running on another worker has no version here (-1): its snapshot came from the
    database, so buffered updates older than it are recognised by their progress instead,
    and the restatement of its current state asked for (`Engine.catch_up`) is skipped if
    the socket was told the same state already (`Told`).
    """
    if snapshot_version >= 0:

        def newer(msg: TaskMessage) -> bool:
            return msg.version > snapshot_version

    else:
        told = Told([snapshot])

        def newer(msg: TaskMessage) -> bool:
            return (
                msg.terminal
                or msg.payload.get("type") != "update"
                or msg.payload.get("status") != snapshot.status.value
                or (msg.payload.get("progress") or 0) >= snapshot.progress
            ) and told.fresh(msg)

    # With a version, a message newer than the snapshot is followed only by newer ones.
    await Feed(ws, sub, newer, end_at_terminal=True, keeps_on=snapshot_version >= 0).run()


class Told:
    """What a socket was told last of each task it read from the database (`Engine.catch_up`
    may have asked another worker for their current state), until that answer comes: the
    answer, a restatement, is not told to a socket that was told the same already (its
    snapshot, or the change itself, came first)."""

    __slots__ = ("_last",)

    def __init__(self, snapshots: Iterable[TaskView]) -> None:
        self._last: dict[str, tuple[Any, ...]] = {
            task.id: (task.status.value, task.progress, task.message) for task in snapshots
        }

    def fresh(self, msg: TaskMessage) -> bool:
        """Whether `msg` tells the socket something new."""
        told = self._last.get(msg.task_id)
        if told is None:
            return True
        payload = msg.payload
        state = (payload.get("status"), payload.get("progress"), payload.get("message"))
        if msg.restated:
            del self._last[msg.task_id]  # the answer: nothing more to compare with
            return state != told
        self._last[msg.task_id] = state
        return True


class TokenEnd(asyncio.Event):
    """Set when a socket's token stops working: revoked, or (`expire`) past its expiry."""

    expired = False

    def expire(self) -> None:
        self.expired = True
        self.set()


async def serve_until_done(
    ws: WebSocket, streamer: Any, revoked: asyncio.Event | None = None
) -> None:
    """Run the streamer until it ends (close 1000), the client leaves, or the token is revoked."""
    pump = asyncio.create_task(streamer)
    gone = asyncio.create_task(_wait_disconnect(ws))
    waiters = {pump, gone}
    stop = asyncio.create_task(revoked.wait()) if revoked is not None else None
    if stop is not None:
        waiters.add(stop)
    try:
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Stop the reader before closing: Granian does not deliver a close frame while
        # another task is still waiting in receive().
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    if stop is not None and stop in done:
        if isinstance(revoked, TokenEnd) and revoked.expired:
            await reject(ws, "Token expired", "TOKEN_EXPIRED")
        else:
            await reject(ws, "Token revoked", "TOKEN_REVOKED")
    elif pump in done and not pump.cancelled() and pump.exception() is None:
        await ws.close(NORMAL_CLOSURE)


async def serve_single_task(
    ws: WebSocket,
    task_id: str,
    visible: Callable[[TaskView], bool],
    revoked: asyncio.Event | None = None,
) -> None:
    """Snapshot then stream one task; `visible(task)` decides if this socket may see it."""
    engine = get_engine()
    with engine.subscribe(Topic(task_id=task_id)) as sub:
        version = engine.live_version(task_id)
        task = await engine.get(task_id)
        if task is None or not visible(task):
            await reject(ws, "Task not found", "TASK_NOT_FOUND")
            return
        await ws.send_text(json.dumps(socket_payload("snapshot", task), default=str))
        if task.is_terminal:
            await ws.close(NORMAL_CLOSURE)
            return
        engine.catch_up(sub, [task])  # if it runs in another process
        await serve_until_done(ws, stream_task(ws, sub, version, task), revoked)


router = APIRouter()


@router.websocket("/ws/{state_name}/task/ws/{task_id}")
async def direct_task_socket(ws: WebSocket, state_name: str, task_id: str) -> None:
    async with socket_session(ws):
        await serve_single_task(ws, task_id, lambda task: visible_without_token(task, state_name))
