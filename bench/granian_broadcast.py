"""The floor of a WebSocket fan-out on SpyGlass's server: a bare ASGI app on Granian (the
server Reflex runs the backend on) that waits for N clients, then broadcasts timestamped
messages, the same messages (`bench.wire`) at the same pace as `bench.baseline_server` (raw
`websockets`).

Each message is encoded once and written to every socket with Granian's `send`, which starts
the write at once and returns a future; a socket whose last write is not done yet is skipped
for that message (a reader that falls behind gets the newest, as SpyGlass's progress) but
always gets the end. Nothing else: no bus, no subscriptions, no access checks, no framework.

Usage: python -m bench.granian_broadcast PORT CLIENTS UPDATES INTERVAL
(prints "ready" once it listens, exits after the end is sent).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

from bench.wire import END, task_update

_sends: list[Any] = []
_started = False


def _config() -> tuple[int, int, float]:
    clients, updates, interval = os.environ["BROADCAST"].split(",")
    return int(clients), int(updates), float(interval)


async def _broadcast() -> None:
    _, updates, interval = _config()
    await asyncio.sleep(0.5)
    last: list[Any] = [None] * len(_sends)
    began = time.monotonic()
    for i in range(updates):
        frame = {"type": "websocket.send", "text": task_update(i, updates, began)}
        for k, send in enumerate(_sends):
            previous = last[k]
            if previous is None or previous.done():
                last[k] = asyncio.ensure_future(send(frame))
        await asyncio.sleep(interval)
    end = {"type": "websocket.send", "text": END}
    for k, send in enumerate(_sends):
        if last[k] is not None:
            await asyncio.gather(last[k], return_exceptions=True)
        last[k] = asyncio.ensure_future(send(end))
    await asyncio.gather(*(f for f in last if f is not None), return_exceptions=True)
    await asyncio.sleep(0.5)
    os.kill(os.getppid(), signal.SIGTERM)  # the server's main process: stop


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _started
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                print("ready", flush=True)
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    _sends.append(send)
    if len(_sends) >= _config()[0] and not _started:
        _started = True
        asyncio.get_running_loop().create_task(_broadcast())
    while (await receive())["type"] != "websocket.disconnect":
        pass


def main() -> None:
    from granian.constants import Interfaces
    from granian.server import Server

    port, clients, updates = (int(a) for a in sys.argv[1:4])
    os.environ["BROADCAST"] = f"{clients},{updates},{sys.argv[4]}"
    Server(
        target="bench.granian_broadcast:app",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        log_enabled=False,
    ).serve()


if __name__ == "__main__":
    main()
