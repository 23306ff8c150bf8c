"""Raw `websockets` baseline: waits for N clients, then broadcasts timestamped messages.

Usage: python -m bench.baseline_server PORT CLIENTS UPDATES INTERVAL PAYLOAD_BYTES
Also echoes anything a client sends (for the round-trip figure).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import websockets


async def main(port: int, clients: int, updates: int, interval: float, size: int) -> None:
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
        pad = "x" * max(0, size - 60)
        for i in range(updates):
            msg = json.dumps(
                {"type": "update", "i": i, "data": {"t": time.monotonic_ns()}, "p": pad}
            )
            websockets.broadcast(connected, msg)
            await asyncio.sleep(interval)
        websockets.broadcast(connected, json.dumps({"type": "end"}))
        await asyncio.sleep(0.5)


if __name__ == "__main__":
    port, clients, updates = (int(a) for a in sys.argv[1:4])
    asyncio.run(main(port, clients, updates, float(sys.argv[4]), int(sys.argv[5])))
