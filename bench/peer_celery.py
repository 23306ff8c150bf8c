"""Celery's side of the executor benchmark (`python -m bench.executor_bench`).

The broker and the result backend are the Redis at `BENCH_REDIS_URL`; the worker is
`celery -A bench.peer_celery worker`. The task is the same no-op as SpyGlass's
`bench.stamp`: it returns the time its body began.
"""

from __future__ import annotations

import os
import time

from celery import Celery

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.stamp")
def stamp() -> float:
    """A no-op that returns the time its body began."""
    return time.time()
