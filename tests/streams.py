"""A fast and a slow reader of one task's progress socket, and what each must have been told.

Used against one server (its own bus) and across workers (the task runs on one, the readers
are on another: its messages come through Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}

#: What a `flood` job of these tests sends: `UPDATES` large updates, a line every
#: `LINE_EVERY`.
UPDATES = 60
LINE_EVERY = 10


def flood_body(go: Path) -> dict[str, Any]:
    """A `flood` job's arguments: it begins once `go` exists (both readers are connected)."""
    return {"go": str(go), "updates": UPDATES, "size": 200_000, "line_every": LINE_EVERY}


def _key(m: dict[str, Any]) -> tuple[Any, ...]:
    """What tells one message of a stream from the others."""
    return (
        m["type"],
        m["status"],
        m["progress"],
        (m.get("event") or {}).get("seq"),
        (m.get("data") or {}).get("i"),
    )


async def _read_to_close(ws: websockets.ClientConnection) -> tuple[list[dict[str, Any]], Any]:
    messages: list[dict[str, Any]] = []
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            messages.append(json.loads(raw))
    await ws.wait_closed()
    return messages, ws.close_code


async def _read_until_ended(
    ws: websockets.ClientConnection, tasks: set[str]
) -> list[dict[str, Any]]:
    """An all-tasks socket's messages until each of `tasks` has ended (it stays open)."""
    messages: list[dict[str, Any]] = []
    going = set(tasks)
    while going:
        message = json.loads(await ws.recv())
        messages.append(message)
        if message["status"] in TERMINAL:
            going.discard(message["task_id"])
    return messages


async def read_fast_and_slow(
    url: str, host: str, port: int, go: Path, tasks: set[str] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two readers of the socket at `url`: one keeps up, the other (a 4 KiB receive
    buffer, so the server's writes to it soon wait) reads nothing until the first has
    the end. Touches `go` once both have their snapshots. A task's socket is read until it
    closes (1000); an all-tasks socket (`tasks`: the tasks it shows) until each of them
    ended. Returns what each was told after its snapshots."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((host, port))
    options: dict[str, Any] = {"compression": None, "max_size": None}
    async with (
        asyncio.timeout(90),
        websockets.connect(url, sock=raw, max_queue=1, **options) as slow,
        websockets.connect(url, **options) as fast,
    ):
        for ws in (slow, fast):
            for _ in tasks or (None,):
                assert json.loads(await ws.recv())["type"] == "snapshot"
        go.touch()  # both follow the tasks: they may begin
        if tasks is not None:
            return await _read_until_ended(fast, tasks), await _read_until_ended(slow, tasks)
        kept_up, fast_code = await _read_to_close(fast)
        behind, slow_code = await _read_to_close(slow)
    assert fast_code == slow_code == 1000
    return kept_up, behind


def _from_its_work(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A task's messages from the first of its work on (`go`): before it, a reader may have
    been told the task's start (PENDING, then PROCESSING, in that order), or read it in its
    snapshot, as the moment it subscribed falls (through Redis, a reader on another worker
    may subscribe before the start is announced there)."""
    first = next(i for i, m in enumerate(messages) if (m.get("data") or {}).get("i") is not None)
    statuses = [m["status"] for m in messages[:first]]
    assert set(statuses) <= {"PENDING", "PROCESSING"}, messages[:first]
    assert statuses == sorted(statuses, key=["PENDING", "PROCESSING"].index), statuses
    return messages[first:]


def check_fast_and_slow(kept_up: list[dict[str, Any]], behind: list[dict[str, Any]]) -> None:
    """The reader that kept up got every update, line and the end; the slow one the same
    stream in the same order but for older progress, each left out for a newer one."""
    kept_up, behind = _from_its_work(kept_up), _from_its_work(behind)
    numbers = [m["data"]["i"] for m in kept_up if m["type"] == "update" and m.get("data")]
    assert numbers == list(range(UPDATES))
    lines = [m["event"]["message"] for m in kept_up if m["type"] == "event"]
    every = range(LINE_EVERY - 1, UPDATES, LINE_EVERY)
    assert [x for x in lines if x.startswith("line")] == [f"line {i}" for i in every]
    parts = range(1, UPDATES // LINE_EVERY + 1)
    assert [x for x in lines if x.startswith("part")] == [f"part {n}" for n in parts]
    assert kept_up[-1]["status"] == "COMPLETED" and kept_up[-1]["result"] == UPDATES

    told = [_key(m) for m in behind]
    stream = [_key(m) for m in kept_up]
    got = set(told)
    assert told == [k for k in stream if k in got], "reordered, or not in the stream"
    left_out = [i for i, k in enumerate(stream) if k not in got]
    assert left_out, "the slow reader's buffers held the whole run: nothing was tested"
    for i in left_out:
        m = kept_up[i]
        assert m["type"] == "update" and m["status"] == "PROCESSING", m["type"]
        after = next(k for k in stream[i + 1 :] if k in got)  # what took its place
        assert after[0] == "update" and after[4] is not None and after[4] > m["data"]["i"]
    assert behind[-1]["status"] == "COMPLETED" and behind[-1]["result"] == UPDATES
    assert sum(m["type"] == "event" for m in behind) == len(lines)


async def read_until_progress(
    ws: websockets.ClientConnection, progress: float, timeout: float = 10
) -> list[dict[str, Any]]:
    """A socket's messages until one tells `progress` (TimeoutError if none does in time)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not seen or seen[-1].get("progress") != progress:
            seen.append(json.loads(await ws.recv()))
    return seen
