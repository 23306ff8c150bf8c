"""The floor of a no-op start → COMPLETED over HTTP on this stack, for `bench.executor_bench`.

A bare ASGI app on Granian (the server Reflex runs the backend on, started the way Reflex
starts it: one worker, the ASGI interface) that does only what the direct API must do for a
start and a result read, the cheapest way Python allows:

* `POST /api/bench/task/start/stamp`: insert the task's row (PENDING) and commit it before
  answering, on the event loop with `sqlite3` (WAL, `synchronous=NORMAL`, as SpyGlass's store
  configures SQLite), answer `{"task_id": …}`; then, in the next turn of the loop, run the
  no-op and commit its end (COMPLETED, its result, when it ended).
* `GET /api/bench/task/result/<id>`: read the row, answer `{"status", "result", "timestamp"}`.

No framework, no validation, no timeline, no live bus, no access policy: what SpyGlass costs
above this is what its features and its layers cost. Run with
`granian --interface asgi --workers 1 bench.start_floor:app` and `FLOOR_DB=<file>`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from typing import Any

START = "/api/bench/task/start/stamp"
RESULT = "/api/bench/task/result/"

_db: sqlite3.Connection | None = None


def db() -> sqlite3.Connection:
    global _db
    if _db is None:
        _db = sqlite3.connect(os.environ["FLOOR_DB"], isolation_level=None)
        _db.execute("PRAGMA journal_mode=WAL")
        _db.execute("PRAGMA synchronous=NORMAL")
        _db.execute(
            "CREATE TABLE IF NOT EXISTS task (id TEXT PRIMARY KEY, status TEXT NOT NULL, "
            "result TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )
    return _db


def now() -> str:
    return datetime.now(UTC).isoformat()


def run(task_id: str) -> None:
    result = json.dumps(time.time())  # the no-op: the time its body began
    db().execute(
        "UPDATE task SET status = 'COMPLETED', result = ?, updated_at = ? WHERE id = ?",
        (result, now(), task_id),
    )


async def answer(send: Any, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                db()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "POST" and path == START:
        task_id = str(uuid.uuid4())
        stamp = now()
        db().execute(
            "INSERT INTO task (id, status, created_at, updated_at) VALUES (?, 'PENDING', ?, ?)",
            (task_id, stamp, stamp),
        )
        asyncio.get_running_loop().call_soon(run, task_id)
        await answer(send, 200, {"task_id": task_id, "status": "PENDING"})
    elif scope["method"] == "GET" and path.startswith(RESULT):
        row = (
            db()
            .execute(
                "SELECT status, result, updated_at FROM task WHERE id = ?",
                (path[len(RESULT) :],),
            )
            .fetchone()
        )
        if row is None:
            await answer(send, 404, {"detail": "not found"})
        else:
            result = json.loads(row[1]) if row[1] is not None else None
            await answer(send, 200, {"status": row[0], "result": result, "timestamp": row[2]})
    else:
        await answer(send, 404, {"detail": "not found"})
