"""SpyGlass benchmarks against a real server: `python -m bench` (or `make bench`).

Prints: database writes per second for a job reporting progress 1,000 times a second;
progress update → WebSocket latency (1 and 100 subscribers) beside a raw `websockets`
baseline; the fan-out of one task to 1,000 subscribers at 50 updates/s beside a raw
`websockets` broadcast to as many clients, in the same run (every client must get every
status change and the end); direct-API submit → COMPLETED throughput for a no-op job;
`/api/health` latency with 10,000 running (sleeping) jobs; profile-my-data on a
1,000,000 × 20 CSV beside pyarrow read + describe() and ydata-profiling (`bench.profile_bench`;
`--profile-memory-rows 10000000` adds its peak memory on a 10M-row file).
`--only fanout,health` runs a few.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import psutil
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


class Outcome(NamedTuple):
    """What one client got: stamped updates, whether the end came, and the statuses it was
    told in order (consecutive repeats folded; the snapshot's first)."""

    received: int
    ended: bool
    statuses: tuple[str, ...] = ()
    #: The first stamp received (when the server sent it) and when the stream ended, on the
    #: machine's monotonic clock (ns; 0: none): the window the servers' CPU is read over.
    first: int = 0
    last: int = 0


async def _listen(url: str, latencies: list[float]) -> Outcome:
    """One-way latency of every stamped message until the stream ends; returns how many
    stamped messages came, whether the end (terminal status) came before the close, and
    the status changes seen."""
    received, ended, first, last = 0, False, 0, 0
    statuses: list[str] = []
    async with websockets.connect(url, compression=None, max_queue=None, open_timeout=60) as ws:
        async for raw in ws:
            now = time.monotonic_ns()
            msg = json.loads(raw)
            stamp = (msg.get("data") or {}).get("t")
            if stamp is not None:
                latencies.append((now - stamp) / 1e6)
                received += 1
                first = first or stamp
            status = msg.get("status")
            if status is not None and (not statuses or statuses[-1] != status):
                statuses.append(status)
            if msg.get("type") == "end" or status in {"COMPLETED", "FAILED"}:
                ended, last = True, now
                break
    return Outcome(received, ended, tuple(statuses), first, last)


class CpuSampler:
    """The CPU time (user + system) of a process and its descendants, sampled every 10 ms
    while in use; `between` reads what they spent over a window of the monotonic clock."""

    def __init__(self, pid: int) -> None:
        root = psutil.Process(pid)
        self.procs = [root, *root.children(recursive=True)]
        self.samples: list[tuple[int, float]] = []

    def _total(self) -> float:
        total = 0.0
        for proc in self.procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    async def _sample(self) -> None:
        while True:
            self.samples.append((time.monotonic_ns(), self._total()))
            await asyncio.sleep(0.01)

    @contextlib.asynccontextmanager
    async def sampling(self) -> AsyncIterator[CpuSampler]:
        task = asyncio.create_task(self._sample())
        try:
            yield self
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self.samples.append((time.monotonic_ns(), self._total()))

    def at(self, t: int) -> float:
        """CPU seconds at monotonic time `t` (ns), interpolated between samples."""
        stamps = [ts for ts, _ in self.samples]
        i = bisect.bisect_left(stamps, t)
        if i == 0:
            return self.samples[0][1]
        if i == len(stamps):
            return self.samples[-1][1]
        (t0, c0), (t1, c1) = self.samples[i - 1], self.samples[i]
        return c0 + (c1 - c0) * (t - t0) / max(1, t1 - t0)

    def between(self, t0: int, t1: int) -> float:
        return self.at(t1) - self.at(t0)


def window(outcomes: list[Outcome]) -> tuple[int, int]:
    """From the first update sent to the last client's end (monotonic ns)."""
    firsts = [o.first for o in outcomes if o.first]
    lasts = [o.last for o in outcomes if o.last]
    return (min(firsts), max(lasts)) if firsts and lasts else (0, 0)


def _listen_group(url: str, count: int) -> tuple[list[float], list[Outcome]]:
    """One client process: `count` sockets on `url` (runs in a worker process)."""

    async def run() -> tuple[list[float], list[Outcome]]:
        latencies: list[float] = []
        outcomes = await asyncio.gather(*(_listen(url, latencies) for _ in range(count)))
        return latencies, list(outcomes)

    return asyncio.run(run())


async def _listen_spread(
    url: str, subscribers: int, processes: int
) -> tuple[list[float], list[Outcome]]:
    """Spread subscribers over client processes, so one client's queue does not set the floor."""
    loop = asyncio.get_running_loop()
    per = [subscribers // processes + (i < subscribers % processes) for i in range(processes)]
    with ProcessPoolExecutor(processes) as pool:
        parts = await asyncio.gather(
            *(loop.run_in_executor(pool, _listen_group, url, n) for n in per if n)
        )
    return [x for lat, _ in parts for x in lat], [c for _, cs in parts for c in cs]


class Run(NamedTuple):
    latencies: list[float]
    outcomes: list[Outcome]
    #: The server's CPU seconds from the first update sent to the last client's end, and
    #: that window's length (s).
    cpu: float
    span: float


async def _measured(pid: int, url: str, subscribers: int, processes: int) -> Run:
    async with CpuSampler(pid).sampling() as cpu:
        latencies, outcomes = await _listen_spread(url, subscribers, processes)
    t0, t1 = window(outcomes)
    return Run(latencies, outcomes, cpu.between(t0, t1), (t1 - t0) / 1e9)


async def spyglass_run(
    server: SpyGlassServer, subscribers: int, updates: int, processes: int
) -> Run:
    """`subscribers` sockets on one pulse task reporting `updates` times, 50 a second."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        # The first update waits until every subscriber is connected.
        body = {"updates": updates, "interval": 0.02, "start_delay": 2.0 + subscribers * 0.01}
        task_id = (await client.post("/api/bench/task/start/pulse", json=body)).json()["task_id"]
    assert server.proc is not None
    url = f"{server.ws_url}/ws/bench/task/ws/{task_id}"
    return await _measured(server.proc.pid, url, subscribers, processes)


#: What each client of a pulse task must be told: its snapshot (running), then its end.
PULSE_STATUSES = ("PROCESSING", "COMPLETED")


def told(outcome: Outcome, statuses: tuple[str, ...]) -> bool:
    """Whether a client was told `statuses` in order: from its snapshot, or (a client that
    subscribed before the job began) from a PENDING snapshot and then the change to the first."""
    return outcome.statuses in (statuses, ("PENDING", *statuses))


def incomplete(outcomes: list[Outcome], statuses: tuple[str, ...] = ()) -> int:
    """How many clients missed a status change or the end."""
    return sum(not o.ended or (bool(statuses) and not told(o, statuses)) for o in outcomes)


def delivered(outcomes: list[Outcome], updates: int) -> str:
    """Progress updates received of those sent (a reader that fell behind is sent only the
    newest progress: the rest are coalesced, never a status change or the end)."""
    got = sum(o.received for o in outcomes)
    return f"{got}/{updates * len(outcomes)} updates"


async def spyglass_latency(
    server: SpyGlassServer, subscribers: int, updates: int, processes: int
) -> tuple[list[float], str]:
    run = await spyglass_run(server, subscribers, updates, processes)
    missed = incomplete(run.outcomes, PULSE_STATUSES)
    assert not missed, f"{missed} clients missed a status change or the end"
    return run.latencies, delivered(run.outcomes, updates)


#: The raw `websockets` broadcast, and the same broadcast as a bare ASGI app on Granian (the
#: server SpyGlass runs on): the floors a fan-out is compared with.
RAW = "bench.baseline_server"
GRANIAN = "bench.granian_broadcast"


async def baseline_run(subscribers: int, updates: int, processes: int, module: str = RAW) -> Run:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            module,
            str(port),
            str(subscribers),
            str(updates),
            "0.02",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return await _measured(proc.pid, f"ws://127.0.0.1:{port}", subscribers, processes)
    finally:
        proc.wait(timeout=30)


async def baseline_latency(subscribers: int, updates: int, processes: int) -> list[float]:
    return (await baseline_run(subscribers, updates, processes)).latencies


def cpu_line(run: Run, subscribers: int, updates: int) -> str:
    per_write = run.cpu / (subscribers * updates) * 1e6
    return f"CPU {run.cpu:5.2f} s in {run.span:4.1f} s ({per_write:4.1f} µs/write)"


async def fanout(
    server: SpyGlassServer, subscribers: int, updates: int, processes: int, rounds: int
) -> None:
    """`subscribers` sockets on one task at 50 updates a second, beside a raw `websockets`
    broadcast to as many clients, in alternate rounds; each client must get every status
    change and the end. Also each server's CPU time while it streams: on a shared machine
    latency follows whatever else runs, CPU time much less."""
    ours: list[float] = []
    raw: list[float] = []
    bare: list[float] = []
    cpu = [0.0, 0.0, 0.0]
    ratios: list[tuple[float, float]] = []
    for r in range(rounds):
        run = await spyglass_run(server, subscribers, updates, processes)
        missed = incomplete(run.outcomes, PULSE_STATUSES)
        base = await baseline_run(subscribers, updates, processes)
        base_missed = incomplete(base.outcomes)
        floor = await baseline_run(subscribers, updates, processes, GRANIAN)
        ours += run.latencies
        raw += base.latencies
        bare += floor.latencies
        cpu[0] += run.cpu
        cpu[1] += base.cpu
        cpu[2] += floor.cpu
        lat, blat = run.latencies, base.latencies
        ratios.append((pct(lat, 50) / pct(blat, 50), pct(lat, 99) / pct(blat, 99)))
        print(
            f"  round {r + 1}: spyglass p50 {pct(lat, 50):6.2f} p99 {pct(lat, 99):7.2f} ms"
            f" | raw p50 {pct(blat, 50):6.2f} p99 {pct(blat, 99):7.2f} ms"
            f" | p99 ratio {pct(lat, 99) / pct(blat, 99):4.2f}×\n"
            f"           bare ASGI on Granian p50 {pct(floor.latencies, 50):6.2f}"
            f" p99 {pct(floor.latencies, 99):7.2f} ms, {cpu_line(floor, subscribers, updates)},"
            f" {delivered(floor.outcomes, updates)}\n"
            f"           spyglass {cpu_line(run, subscribers, updates)}"
            f" | raw {cpu_line(base, subscribers, updates)}\n"
            f"           statuses and end: spyglass {len(run.outcomes) - missed}"
            f"/{len(run.outcomes)}, raw {len(base.outcomes) - base_missed}/{len(base.outcomes)}"
            f" clients | spyglass {delivered(run.outcomes, updates)},"
            f" raw {delivered(base.outcomes, updates)}"
        )
        assert not missed, f"{missed} clients missed a status change or the end"
    print(f"  {subscribers:>4} subscribers  spyglass  {summary(ours)}")
    print(f"  {subscribers:>4} subscribers  raw       {summary(raw)}")
    print(f"  {subscribers:>4} subscribers  Granian   {summary(bare)}  (bare ASGI broadcast)")
    print(
        f"  bare Granian to raw: p50 {pct(bare, 50) / pct(raw, 50):.2f}×, "
        f"p99 {pct(bare, 99) / pct(raw, 99):.2f}×, server CPU {cpu[2] / cpu[1]:.2f}×;  "
        f"spyglass to bare Granian: p50 {pct(ours, 50) / pct(bare, 50):.2f}×, "
        f"p99 {pct(ours, 99) / pct(bare, 99):.2f}×, server CPU {cpu[0] / cpu[2]:.2f}×"
    )
    print(
        f"  ratio to raw: p50 {pct(ours, 50) / pct(raw, 50):.2f}×, "
        f"p99 {pct(ours, 99) / pct(raw, 99):.2f}×, server CPU {cpu[0] / cpu[1]:.2f}×   "
        f"(every client: {' → '.join(PULSE_STATUSES)} and the end)"
    )
    print(
        f"  median of the rounds' ratios: p50 {statistics.median(r[0] for r in ratios):.2f}×, "
        f"p99 {statistics.median(r[1] for r in ratios):.2f}×"
    )


async def echo_rtt(rounds: int = 500) -> list[float]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.baseline_server", str(port), "2", "0", "0"],
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


async def health_probes(server: SpyGlassServer, probes: int) -> list[float]:
    """`probes` sequential `GET /api/health` on one keep-alive connection (ms each)."""
    times: list[float] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for _ in range(probes):
            t0 = time.perf_counter()
            response = await client.get("/api/health")
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.text
    return times


async def health_under_load(server: SpyGlassServer, jobs: int, probes: int) -> None:
    """`/api/health` latency idle, then with `jobs` running (sleeping) jobs."""
    idle = await health_probes(server, probes)
    print(f"  {0:>6} running jobs   {summary(idle)}")
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
        pending = iter(range(jobs))

        async def starter() -> None:
            for _ in pending:
                response = await client.post(
                    "/api/bench/task/start/sleeper", json={"seconds": 1800}
                )
                assert response.status_code == 200, response.text

        await asyncio.gather(*(starter() for _ in range(16)))
        while (running := (await client.get("/api/health")).json()["running_tasks"]) < jobs:
            await asyncio.sleep(0.2)
    loaded = await health_probes(server, probes)
    print(f"  {running:>6} running jobs   {summary(loaded)}   (target p99 ≤ 10 ms)")


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


SCENARIOS = ("writes", "latency", "fanout", "throughput", "health", "profile")


def raise_fd_limit() -> None:
    """A socket per client: the soft limit of open files up to the hard one (the client
    processes inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=5, help="throughput run length")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--profile-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--profile-memory-rows",
        type=int,
        default=0,
        help="also the profile's peak memory on a file of this many rows (e.g. 10000000)",
    )
    parser.add_argument("--no-profile-peer", action="store_true", help="leave ydata-profiling out")
    parser.add_argument(
        "--fanout-subscribers", default="100,1000", help="comma-separated subscriber counts"
    )
    parser.add_argument("--fanout-rounds", type=int, default=3)
    parser.add_argument("--health-jobs", type=int, default=10_000)
    parser.add_argument("--health-probes", type=int, default=1000)
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run (default all: {','.join(SCENARIOS)})",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    unknown = only - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    raise_fd_limit()

    print("SpyGlass benchmarks (2-core machine figures vary ±20 % run to run)\n")
    if "writes" in only:
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
        server = SpyGlassServer(Path(tmp), job_modules="bench.jobs", env=unlimited)
        if only & {"latency", "fanout", "throughput", "health"}:
            server.start()
        try:
            if "latency" in only:
                print("progress update → WebSocket client latency:")
                for n, procs in ((1, 1), (100, 1), (100, args.client_processes)):
                    ours, got = await spyglass_latency(server, n, args.updates, procs)
                    base = await baseline_latency(n, args.updates, procs)
                    label = f"{n:>3} subscriber(s), {procs} client process(es)"
                    print(f"  {label}  spyglass  {summary(ours)}  {got}")
                    print(f"  {label}  baseline  {summary(base)}   (raw websockets)")
                    print(
                        f"  {label}  ratio     p50 {pct(ours, 50) / pct(base, 50):.2f}×  "
                        f"p99 {pct(ours, 99) / pct(base, 99):.2f}×"
                    )
                rtt = await echo_rtt()
                print(f"  raw websockets echo round trip   {summary(rtt)}")
                print(
                    "  (targets at 100 subscribers: p50 ≤ 1.2× raw, p99 ≤ 1.5× raw; "
                    "p50 ≤ 2 ms, p99 ≤ 10 ms)\n"
                )

            if "fanout" in only:
                for n in (int(x) for x in args.fanout_subscribers.split(",")):
                    print(
                        f"fan-out: one task, {n} WebSocket subscribers, 50 updates/s, "
                        f"{args.client_processes} client processes, {args.fanout_rounds} rounds:"
                    )
                    await fanout(server, n, args.updates, args.client_processes, args.fanout_rounds)
                    target = "p99 ≤ 2× raw" if n >= 1000 else "p50 ≤ 1.2× raw, p99 ≤ 1.5× raw"
                    print(f"  (target: {target})\n")

            if "throughput" in only:
                result = throughput(server, args.seconds, args.connections)
                print(
                    f"direct-API submit → COMPLETED, no-op job, {result['tasks']} tasks, "
                    f"{args.connections} keep-alive connections (wrk):"
                )
                print(
                    f"  {result['completed_per_s']:.0f} tasks/s end to end "
                    f"({result['submit_per_s']:.0f} submits/s)   (target ≥ 1,000/s)\n"
                )

            if "health" in only:
                print("GET /api/health, sequential probes on one connection:")
                await health_under_load(server, args.health_jobs, args.health_probes)
                print()
        finally:
            server.stop()
    if "profile" in only:
        from bench.profile_bench import main as profile_main

        profile_main(args.profile_rows, args.profile_memory_rows, not args.no_profile_peer)


if __name__ == "__main__":
    asyncio.run(main())
