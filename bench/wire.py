"""What the fan-out baselines broadcast: a task's progress update shaped as SpyGlass's sockets
send it (the same fields, the same size give or take a few bytes), so that the clients read
the same JSON whichever server they listen to and a difference in latency is the server's.

A client's time to read a message is part of every latency after it in that client (one
client process reads many sockets): a baseline whose messages are cheaper to parse would
measure its clients, not its server.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

#: The task every baseline message is of.
TASK_ID = "95d7b042-3b64-41b1-acb2-87f4cae6c7c5"


def task_update(i: int, updates: int, began: float) -> str:
    """Update `i` of `updates` of a task that began at `began` (`time.monotonic()`),
    stamped (`data.t`, monotonic ns) before anything else is done for it."""
    stamp = time.monotonic_ns()
    progress = (i + 1) * 100 / updates
    rate = round(progress / max(time.monotonic() - began, 1e-6), 3)
    return json.dumps(
        {
            "type": "update",
            "task_id": TASK_ID,
            "state_name": "bench_state",
            "task_name": "pulse",
            "tool_id": None,
            "agents": None,
            "status": "PROCESSING",
            "progress": progress,
            "message": "Processing",
            "result": None,
            "error_code": None,
            "error_message": None,
            "scheduled_at": None,
            "timestamp": datetime.now(UTC).isoformat(),
            "eta_seconds": round((100.0 - progress) / rate, 3),
            "rate": rate,
            "data": {"t": stamp},
        },
        separators=(",", ":"),
    )


#: The last message: the stream is over.
END = json.dumps({"type": "end"})
