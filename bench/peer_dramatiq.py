"""Dramatiq's side of the executor benchmark (`python -m bench.executor_bench`).

The broker and the result store (Dramatiq's Results middleware) are the Redis at
`BENCH_REDIS_URL`; the worker is `dramatiq bench.peer_dramatiq`. The actor is the same
no-op as SpyGlass's `bench.stamp`: it returns the time its body began.
"""

from __future__ import annotations

import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

broker = RedisBroker(url=REDIS_URL)
broker.add_middleware(Results(backend=RedisBackend(url=REDIS_URL)))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True, max_retries=0)
def stamp() -> float:
    """A no-op that returns the time its body began."""
    return time.time()
