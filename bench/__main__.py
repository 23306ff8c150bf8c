"""SpyGlass benchmarks against a real server: `python -m bench` (or `make bench`).

Prints: progress update → WebSocket latency (1 and 100 subscribers) beside a raw
`websockets` baseline, direct-API submit → COMPLETED throughput for a no-op job, and
database writes per second for a job reporting progress 1,000 times a second, and
profile-my-data on a 1,000,000 × 20 CSV beside pyarrow read + describe().
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.harness import SpyGlassServer, free_port

ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50):6.2f} ms  p99 {pct(values, 99):6.2f} ms  "
        f"max {max(values):6.2f} ms  (n={len(values)})"
    )


async def _listen(
    url: str, latencies: list[float], connected: asyncio.Event | None = None
) -> tuple[int, bool]:
    """One-way latency of every stamped message until the stream ends; returns how many
    stamped messages came and whether the end (terminal status) came before the close."""
    received, ended = 0, False
    async with websockets.connect(url, compression=None, max_queue=None, open_timeout=60) as ws:
        if connected is not None:
            connected.set()
        async for raw in ws:
            now = time.monotonic_ns()
            msg = json.loads(raw)
            stamp = (msg.get("data") or {}).get("t")
            if stamp is not None:
                latencies.append((now - stamp) / 1e6)
                received += 1
            if msg.get("type") == "end" or msg.get("status") in {"COMPLETED", "FAILED"}:
                ended = True
                break
    return received, ended


def _listen_group(url: str, count: int) -> tuple[list[float], list[tuple[int, bool]]]:
    """One client process: `count` sockets on `url` (runs in a worker process)."""

    async def run() -> tuple[list[float], list[tuple[int, bool]]]:
        latencies: list[float] = []
        outcomes = await asyncio.gather(*(_listen(url, latencies) for _ in range(count)))
        return latencies, list(outcomes)

    return asyncio.run(run())


async def _listen_spread(
    url: str, subscribers: int, processes: int
) -> tuple[list[float], list[tuple[int, bool]]]:
    """Spread subscribers over client processes, so one client's queue does not set the floor."""
    loop = asyncio.get_running_loop()
    per = [subscribers // processes + (i < subscribers % processes) for i in range(processes)]
    with ProcessPoolExecutor(processes) as pool:
        parts = await asyncio.gather(
            *(loop.run_in_executor(pool, _listen_group, url, n) for n in per if n)
        )
    return [x for lat, _ in parts for x in lat], [c for _, cs in parts for c in cs]


async def spyglass_latency(
    server: SpyGlassServer, subscribers: int, updates: int, processes: int
) -> list[float]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        body = {"updates": updates, "interval": 0.02, "start_delay": 2.0 + subscribers * 0.02}
        task_id = (await client.post("/api/bench/task/start/pulse", json=body)).json()["task_id"]
    url = f"{server.ws_url}/ws/bench/task/ws/{task_id}"
    latencies, outcomes = await _listen_spread(url, subscribers, processes)
    assert outcomes == [(updates, True)] * subscribers, f"lost updates: {outcomes}"
    return latencies


async def baseline_latency(
    subscribers: int, updates: int, size: int, processes: int
) -> list[float]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.baseline_server",
            str(port),
            str(subscribers),
            str(updates),
            "0.02",
            str(size),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        latencies, _ = await _listen_spread(f"ws://127.0.0.1:{port}", subscribers, processes)
        return latencies
    finally:
        proc.wait(timeout=30)


async def echo_rtt(rounds: int = 500) -> list[float]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.baseline_server", str(port), "2", "0", "0", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        rtts: list[float] = []
        async with websockets.connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
            for _ in range(rounds):
                t0 = time.monotonic_ns()
                await ws.send("ping")
                while await ws.recv() != "ping":
                    pass
                rtts.append((time.monotonic_ns() - t0) / 1e6)
        return rtts
    finally:
        proc.kill()
        proc.wait()


def throughput(server: SpyGlassServer, seconds: int, connections: int) -> dict[str, float]:
    """`wrk` posts no-op starts for `seconds`; then every task must reach COMPLETED.

    End-to-end rate = tasks completed / (last completed_at − first request), both on
    this machine's clock. wrk (C) keeps the load generator's own cost out of the figure.
    """
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: `make bench` installs it (Debian package wrk)")
    db = sqlite3.connect(server.data_dir / "spyglass.db")
    (before,) = db.execute("SELECT count(*) FROM task WHERE task_name='noop'").fetchone()
    t0 = time.time()
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "-s",
            str(ROOT / "bench/post.lua"),
            f"{server.url}/api/bench/task/start/noop",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"(\d+) requests in", out)
    assert match, out
    requests = int(match.group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert errors is None, f"failed requests: {errors.group(1)}"
    while True:
        total, done, last = db.execute(
            "SELECT count(*), sum(status='COMPLETED'), max(completed_at) FROM task "
            "WHERE task_name='noop'"
        ).fetchone()
        if total - before >= requests and total == done:
            break
        time.sleep(0.05)
    tasks = total - before
    finished = datetime.fromisoformat(last).replace(tzinfo=UTC).timestamp()
    return {
        "tasks": tasks,
        "submit_per_s": requests / seconds,
        "completed_per_s": tasks / (finished - t0),
        "seconds": finished - t0,
    }


async def db_writes(rate: int, seconds: float) -> dict[str, float]:
    """In-process engine on a real SQLite file; counts every statement touching the task."""
    from sqlalchemy import event

    import bench.jobs  # noqa: F401
    from spyglass.config import Settings
    from spyglass.tasks.engine import Engine
    from spyglass.tasks.registry import registry

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            db_url=f"sqlite:///{tmp}/bench.db",
            port=0,
            secret_key="bench",
            progress_flush_interval=0.25,
        )
        engine = Engine(settings)
        await engine.start()
        statements: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith(("UPDATE", "INSERT")):
                statements.append(statement)

        commits: list[int] = []
        event.listen(engine.database, "before_cursor_execute", count)
        event.listen(engine.database, "commit", lambda conn: commits.append(1))
        spec = registry.get("bench", "chatty")
        t0 = time.monotonic()
        task = await engine.start_job(spec, {"rate": rate, "seconds": seconds}, origin="direct")
        await engine.wait(task.id)
        elapsed = time.monotonic() - t0
        stored = await engine.get(task.id)
        await engine.stop()
    assert stored is not None and stored.status == "COMPLETED", stored
    return {
        "updates": rate * seconds,
        "updates_per_s": rate * seconds / elapsed,
        "statements_per_s": len(statements) / elapsed,
        "commits_per_s": len(commits) / elapsed,
        "seconds": elapsed,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=5, help="throughput run length")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--profile-rows", type=int, default=1_000_000)
    args = parser.parse_args()

    print("SpyGlass benchmarks (2-core machine figures vary ±20 % run to run)\n")
    writes = await db_writes(1000, 5)
    print("database writes for one job reporting progress 1,000 times a second:")
    print(
        f"  {writes['updates_per_s']:.0f} updates/s over {writes['seconds']:.1f} s → "
        f"{writes['statements_per_s']:.1f} write statements/s, "
        f"{writes['commits_per_s']:.1f} commits/s   (target ≤ 5/s)\n"
    )

    with tempfile.TemporaryDirectory() as tmp:
        # Throughput is measured, not the rate limits (an empty rate is none).
        unlimited = {"SPYGLASS_LIMIT_DIRECT_START": "", "SPYGLASS_LIMIT_API_TOKEN": ""}
        server = SpyGlassServer(Path(tmp), job_modules="bench.jobs", env=unlimited).start()
        try:
            print("progress update → WebSocket client latency:")
            for n, procs in ((1, 1), (100, 1), (100, args.client_processes)):
                ours = await spyglass_latency(server, n, args.updates, procs)
                base = await baseline_latency(n, args.updates, 420, procs)
                label = f"{n:>3} subscriber(s), {procs} client process(es)"
                print(f"  {label}  spyglass  {summary(ours)}")
                print(f"  {label}  baseline  {summary(base)}   (raw websockets)")
            rtt = await echo_rtt()
            print(f"  raw websockets echo round trip   {summary(rtt)}")
            print("  (targets at 100 subscribers: p50 ≤ 2 ms, p99 ≤ 10 ms)\n")

            result = throughput(server, args.seconds, args.connections)
            print(
                f"direct-API submit → COMPLETED, no-op job, {result['tasks']} tasks, "
                f"{args.connections} keep-alive connections (wrk):"
            )
            print(
                f"  {result['completed_per_s']:.0f} tasks/s end to end "
                f"({result['submit_per_s']:.0f} submits/s)   (target ≥ 1,000/s)"
            )
        finally:
            server.stop()
    print()
    from bench.profile_bench import main as profile_main

    profile_main(args.profile_rows)


if __name__ == "__main__":
    asyncio.run(main())
