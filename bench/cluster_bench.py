"""Several workers on Redis + PostgreSQL: `python -m bench.cluster_bench` (part of `make bench`).

1. One task, 1,000 socket clients spread evenly over three worker processes, the task
   reporting 50 updates a second on one of them: one-way latency (p50/p99, on the
   machine's monotonic clock) and whether every client got the terminal message.
2. Direct-API submit → COMPLETED throughput of a no-op job (wrk), one Granian worker
   against three behind the same port, both on the same Redis and PostgreSQL.

Starts its own redis-server and postgresql (Debian's; `make bench` installs them).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench.__main__ import (
    PULSE_STATUSES,
    ROOT,
    _listen_group,
    baseline_latency,
    summary,
    told,
)
from tests.harness import SpyGlassServer
from tests.services import new_database, postgres_server, redis_server


def workers(
    tmp: Path, redis_url: str, db_url: str, count: int, granian_workers: int = 1
) -> list[SpyGlassServer]:
    env = {
        "REDIS_URL": redis_url,
        "SPYGLASS_REDIS_PREFIX": f"b{uuid.uuid4().hex[:8]}",
        "SPYGLASS_DB_URL": db_url,
        "GRANIAN_WORKERS": str(granian_workers),
        # Throughput is measured, not the rate limits (an empty rate is none).
        "SPYGLASS_LIMIT_DIRECT_START": "",
        "SPYGLASS_LIMIT_API_TOKEN": "",
    }
    return [
        SpyGlassServer(tmp / "data", job_modules="bench.jobs", env=env).start()
        for _ in range(count)
    ]


async def fan_out(servers: list[SpyGlassServer], clients: int, updates: int, procs: int) -> None:
    async with httpx.AsyncClient(base_url=servers[0].url, timeout=30) as client:
        body = {"updates": updates, "interval": 0.02, "start_delay": 4.0 + clients * 0.004}
        r = await client.post("/api/bench/task/start/pulse", json=body)
        task_id = r.json()["task_id"]
    n = len(servers)
    per_worker = [clients // n + (i < clients % n) for i in range(n)]
    groups = [
        (f"{s.ws_url}/ws/bench/task/ws/{task_id}", count // procs_each + (j < count % procs_each))
        for s, count in zip(servers, per_worker, strict=True)
        for procs_each in [max(1, procs // n)]
        for j in range(procs_each)
    ]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(len(groups)) as pool:
        parts = await asyncio.gather(
            *(loop.run_in_executor(pool, _listen_group, url, k) for url, k in groups if k)
        )
    latencies = [x for lat, _ in parts for x in lat]
    outcomes = [o for _, os_ in parts for o in os_]
    ended = sum(1 for o in outcomes if o.ended)
    complete = sum(1 for o in outcomes if o.received == updates)
    print(
        f"  1 task, {clients} clients over {n} workers "
        f"({', '.join(map(str, per_worker))}), {updates} updates at 50/s:"
    )
    print(f"    latency {summary(latencies)}")
    print(
        f"    terminal message received: {ended}/{clients}; every update received: "
        f"{complete}/{clients}; fewest updates seen: {min(o.received for o in outcomes)}"
    )
    assert ended == clients, "a client lost the terminal message"
    statuses = sum(1 for o in outcomes if told(o, PULSE_STATUSES))
    print(f"    every status change ({' → '.join(PULSE_STATUSES)}): {statuses}/{clients}")
    assert statuses == clients, "a client lost a status change"
    floor = await baseline_latency(clients, updates, procs)
    print(f"    raw websockets broadcast, 1 process, same clients: {summary(floor)}")


def submit_rate(server: SpyGlassServer, db_url: str, seconds: int, connections: int) -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: `make bench` installs it (Debian package wrk)")
    db = sa.create_engine(db_url)
    with db.connect() as conn:
        before = conn.execute(sa.text("SELECT count(*) FROM task")).scalar_one()
    t0 = time.time()
    out = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(ROOT / "bench/post.lua"),
         f"{server.url}/api/bench/task/start/noop"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    match = re.search(r"(\d+) requests in", out)
    assert match, out
    requests = int(match.group(1))
    assert "Non-2xx" not in out, out
    deadline = time.time() + 120
    while True:
        with db.connect() as conn:
            total, done, last = conn.execute(
                sa.text(
                    "SELECT count(*), count(*) FILTER (WHERE status = 'COMPLETED'), "
                    "extract(epoch FROM max(completed_at)) FROM task"
                )
            ).one()
        if total - before >= requests and total == done:
            break
        assert time.time() < deadline, (total, done)
        time.sleep(0.1)
    db.dispose()
    # completed_at is stored as naive UTC; extract(epoch) reads it as UTC.
    elapsed = float(last) - t0
    tasks = total - before
    return (
        f"{tasks / elapsed:6.0f} tasks/s end to end ({requests / seconds:.0f} submits/s, "
        f"{tasks} tasks)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=250)
    parser.add_argument("--client-processes", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    print("several workers on Redis + PostgreSQL:")
    with redis_server() as redis_url, postgres_server() as pg_url:
        with tempfile.TemporaryDirectory() as tmp:
            db_url = new_database(pg_url)
            servers = workers(Path(tmp), redis_url, db_url, 3)
            try:
                await fan_out(servers, args.clients, args.updates, args.client_processes)
            finally:
                for s in servers:
                    s.stop()
        print(f"  direct-API submit → COMPLETED, no-op job, wrk, {args.connections} connections:")
        for count in (1, 3):
            with tempfile.TemporaryDirectory() as tmp:
                db_url = new_database(pg_url)
                (server,) = workers(Path(tmp), redis_url, db_url, 1, granian_workers=count)
                try:
                    rate = submit_rate(server, db_url, args.seconds, args.connections)
                finally:
                    server.stop()
            print(f"    {count} Granian worker(s) on one port: {rate}")


if __name__ == "__main__":
    asyncio.run(main())
