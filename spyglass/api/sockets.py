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
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from spyglass.api.direct import visible_without_token
from spyglass.metrics import SOCKET_CLIENTS
from spyglass.tasks.bus import Subscription, Topic
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


async def stream_task(
    ws: WebSocket, sub: Subscription, snapshot_version: int, snapshot: TaskView
) -> None:
    """Send every change newer than the snapshot; stop after the terminal message.

    A task running on another worker has no version here (-1): its snapshot came from the
    database, so buffered updates older than it are recognised by their progress instead.
    """
    while True:
        batch = await sub.get_batch()
        for msg in batch:
            if msg.version <= snapshot_version or (
                snapshot_version < 0
                and not msg.terminal
                and msg.payload.get("type") == "update"
                and msg.payload.get("status") == snapshot.status.value
                and (msg.payload.get("progress") or 0) < snapshot.progress
            ):
                continue
            await ws.send_text(msg.json())
            if msg.terminal:
                return


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
        await serve_until_done(ws, stream_task(ws, sub, version, task), revoked)


router = APIRouter()


@router.websocket("/ws/{state_name}/task/ws/{task_id}")
async def direct_task_socket(ws: WebSocket, state_name: str, task_id: str) -> None:
    async with socket_session(ws):
        await serve_single_task(ws, task_id, lambda task: visible_without_token(task, state_name))
