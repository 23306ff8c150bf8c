"""Raw `websockets` baseline: waits for N clients, then broadcasts timestamped messages.

Usage: python -m bench.baseline_server PORT CLIENTS UPDATES INTERVAL
Each message is a task update shaped as SpyGlass's (`bench.wire`). Also echoes anything a
client sends (for the round-trip figure).
"""

from __future__ import annotations

import asyncio
import sys
import time

import websockets

from bench.wire import END, task_update


async def main(port: int, clients: int, updates: int, interval: float) -> None:
    connected: set[websockets.ServerConnection] = set()
    ready = asyncio.Event()

    async def handler(ws: websockets.ServerConnection) -> None:
        connected.add(ws)
        if len(connected) >= clients:
            ready.set()
        try:
            async for message in ws:  # echo
                await ws.send(message)
        finally:
            connected.discard(ws)

    async with websockets.serve(handler, "127.0.0.1", port, compression=None):
        print("ready", flush=True)
        await ready.wait()
        await asyncio.sleep(0.5)
        began = time.monotonic()
        for i in range(updates):
            websockets.broadcast(connected, task_update(i, updates, began))
            await asyncio.sleep(interval)
        websockets.broadcast(connected, END)
        await asyncio.sleep(0.5)


if __name__ == "__main__":
    port, clients, updates = (int(a) for a in sys.argv[1:4])
    asyncio.run(main(port, clients, updates, float(sys.argv[4])))
