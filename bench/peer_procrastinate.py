"""Procrastinate alone, the floor of SpyGlass's worker mode (`python -m bench.executor_bench`).

The same PostgreSQL-backed queue SpyGlass's worker mode stands on, with nothing of SpyGlass:
the client defers a no-op job straight into PostgreSQL and a plain `procrastinate worker`
runs it. What this costs per job is what worker mode cannot go below; what SpyGlass adds on
top (the HTTP start, its task record and timeline, live progress on Redis) is the difference.
The database is the one at `BENCH_PG_CONNINFO`.
"""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_PG_CONNINFO", "")))


@app.task(name="bench.noop")
async def noop() -> None:
    """A no-op (Procrastinate keeps no results: the job's `succeeded` event is its end)."""
