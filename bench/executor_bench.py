"""SpyGlass's executors beside Celery and Dramatiq: `python -m bench.executor_bench`.

One run, on this machine, side by side (part of `make bench`):

1. no-op submit → COMPLETED throughput: N no-op jobs (`--jobs`, `--worker-jobs` in the
   slower worker mode) submitted as fast as the client can, then every one confirmed
   done; jobs/s = N / (first submit → the last completion that the system recorded:
   SpyGlass's COMPLETED `timestamp`, Celery's `date_done`; Dramatiq records none, so its
   job's own end). SpyGlass: inline executor on SQLite (the embedded default) and on
   PostgreSQL + Redis (the production-like one), worker mode with one and with two
   `spyglass worker` processes. Peers: Celery (Redis broker and result backend, one
   prefork worker) and Dramatiq (Redis broker, Results middleware, one `dramatiq`
   worker). Median of `--repeats` runs.
2. CPU per job: user + system CPU of every process involved, children included (reaped
   ones through their parent's `children_*` times), before/after each run: the client
   (this process: it submits and confirms), web process, workers and their children,
   PostgreSQL (postmaster and its backends) and Redis; for the peers their client, their
   worker processes and their Redis. The same sides for all; the servers-only share is
   printed too.
3. dispatch latency (start request sent → the job's body begins, both `time.time()` on
   this box) on an idle cluster, one job at a time.
4. cancel of a CPU-bound job (`task.run_sync` child spinning): cancel request → the child's
   pid gone (psutil) and → CANCELLED readable from the result endpoint.

Every figure is printed beside its target. Starts its own redis-server and PostgreSQL
(Debian's, `make bench` installs them) and stops every process it started, also on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import sqlalchemy as sa

from tests.harness import ROOT, SpyGlassServer, free_port, wait_for
from tests.services import new_database, postgres_server, redis_server

BIN = Path(sys.executable).parent
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
STATE = "bench"


# -- measuring -------------------------------------------------------------------------


def tree_cpu(roots: list[int]) -> float:
    """CPU seconds (user + system) of every live process under `roots`, each with the
    times of its children that already ended (so an exited child is not lost)."""
    total, seen = 0.0, set()
    for root in roots:
        try:
            top = psutil.Process(root)
            procs = [top, *top.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
    return total


def cpu_by_part(parts: dict[str, list[int]]) -> dict[str, float]:
    return {name: tree_cpu(roots) for name, roots in parts.items()}


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def listener_pid(url: str) -> int:
    """The pid of the process listening on the URL's port (Redis, PostgreSQL)."""
    port = urlsplit(url).port
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    raise RuntimeError(f"nothing listens on port {port}")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def async_wait_for(
    check: Callable[[], Any], timeout: float, what: str, every: float = 0.005
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(every)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


def utc_seconds(value: str | datetime) -> float:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@dataclass
class Run:
    """One throughput run: jobs/s and CPU ms per job (all processes; servers only), and
    the CPU ms per job of each part."""

    rate: float
    cpu_all_ms: float
    cpu_servers_ms: float
    parts_ms: dict[str, float]


def measure(
    parts: Callable[[], dict[str, list[int]]],
    jobs: int,
    body: Callable[[], tuple[float, float]],
) -> Run:
    """Run `body` (returns its first submit time and last completion time) between two
    CPU readings of the server processes (by part) and of this client process."""
    before, client0 = cpu_by_part(parts()), own_cpu()
    first, last = body()
    after, client1 = cpu_by_part(parts()), own_cpu()
    per_part = {name: (after[name] - before.get(name, 0.0)) * 1000 / jobs for name in after}
    servers = sum(per_part.values())
    return Run(
        rate=jobs / (last - first),
        cpu_all_ms=servers + (client1 - client0) * 1000 / jobs,
        cpu_servers_ms=servers,
        parts_ms={"client": (client1 - client0) * 1000 / jobs, **per_part},
    )


# -- a lean HTTP client ------------------------------------------------------------------


class HttpPool:
    """Keep-alive HTTP/1.1 connections on asyncio streams: a client as cheap as wrk's, so
    that the load generator does not eat the core the server needs (httpx costs several
    times the server's own work per no-op request)."""

    def __init__(self, url: str, size: int) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.size = size
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._all: list[asyncio.StreamWriter] = []

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._all.append(writer)
        return reader, writer

    async def __aenter__(self) -> HttpPool:
        for _ in range(self.size):
            self._idle.put_nowait(await self._connect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._all:
            writer.close()

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        conn = await self._idle.get()
        try:
            for attempt in (1, 2):
                reader, writer = conn
                writer.write(head + payload)
                line = await reader.readline()
                if line:
                    break
                # The server closed an idle connection before reading: send it again.
                writer.close()
                conn = await self._connect()
                if attempt == 2:
                    raise ConnectionError("the server closed the connection")
            status = int(line.split()[1])
            length, chunked, close = None, False, False
            while True:
                header = await reader.readline()
                if header in (b"\r\n", b"\n", b""):
                    break
                name, _, value = header.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
                elif name == b"connection" and b"close" in value.lower():
                    close = True
            if chunked:
                data = b""
                while size := int((await reader.readline()).split(b";")[0], 16):
                    data += await reader.readexactly(size)
                    await reader.readline()
                await reader.readline()
            elif length is not None:
                data = await reader.readexactly(length)
            else:
                data, close = await reader.read(), True
            if close:
                writer.close()
                conn = await self._connect()
        finally:
            self._idle.put_nowait(conn)
        return status, json.loads(data) if data else None


# -- SpyGlass deployments -----------------------------------------------------------------


@dataclass
class Deployment:
    """One web process (and, in worker mode, `spyglass worker` processes)."""

    label: str
    folder: Path
    env: dict[str, str]
    #: Processes counted beside the web process and the workers, by name (Redis, PostgreSQL).
    services: dict[str, int] = field(default_factory=dict)
    web: SpyGlassServer | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.web is not None
        return self.web.url

    @property
    def db_url(self) -> str:
        return self.env.get("SPYGLASS_DB_URL") or f"sqlite:///{self.folder}/spyglass.db"

    def start(self) -> Deployment:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.web = SpyGlassServer(self.folder, job_modules="bench.jobs", env=self.env).start()
        return self

    def add_worker(self, concurrency: int) -> None:
        log = (self.folder / f"worker-{len(self.workers)}.log").open("ab")
        self.workers.append(
            subprocess.Popen(
                [str(BIN / "spyglass"), "worker", "--concurrency", str(concurrency)],
                cwd=ROOT,
                env={
                    **os.environ,
                    **self.env,
                    "SPYGLASS_DATA_DIR": str(self.folder),
                    "SPYGLASS_JOB_MODULES": "bench.jobs",
                    "PYTHONPATH": str(ROOT),
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

        def registered() -> bool:
            for proc in self.workers:
                if proc.poll() is not None:
                    raise RuntimeError(f"a worker exited: see {self.folder}/worker-*.log")
            health = httpx.get(f"{self.url}/api/health", timeout=10).json()
            return int(health.get("workers") or 0) >= len(self.workers)

        wait_for(registered, 60, "the worker to register")

    def parts(self) -> dict[str, list[int]]:
        assert self.web is not None and self.web.proc is not None
        parts = {"web": [self.web.proc.pid]}
        if self.workers:
            parts["workers"] = [w.pid for w in self.workers]
        return {**parts, **{name: [pid] for name, pid in self.services.items()}}

    def stop(self) -> None:
        for proc in self.workers:
            stop_group(proc)
        self.workers.clear()
        if self.web is not None:
            self.web.stop()
            self.web = None


@dataclass
class FloorServer:
    """`bench.start_floor` on Granian: the least a start and a result read can cost on this
    stack (HTTP through Granian into Python, a durable SQLite row before the answer)."""

    folder: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FloorServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        log_file = (self.folder / "floor.log").open("ab")
        self.proc = subprocess.Popen(
            [
                str(BIN / "granian"), "--interface", "asgi", "--workers", "1",
                "--host", "127.0.0.1", "--port", str(self.port), "bench.start_floor:app",
            ],
            cwd=ROOT,
            env={**os.environ, "FLOOR_DB": str(self.folder / "floor.db"), "PYTHONPATH": str(ROOT)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

        def answers() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the floor server exited: see {self.folder}/floor.log")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url}/", timeout=2).status_code == 404
            return False

        wait_for(answers, 60, "the floor server to answer")
        return self

    def parts(self) -> dict[str, list[int]]:
        assert self.proc is not None
        return {"web": [self.proc.pid]}

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None


def stop_group(proc: subprocess.Popen[Any], grace: float = 20) -> None:
    """SIGTERM to the process group started for `proc`, SIGKILL if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


async def spyglass_batch(url: str, jobs: int, connections: int) -> tuple[float, float]:
    """Submit `jobs` no-op starts over `connections` connections, then read every result
    until it is COMPLETED; returns (first submit, last recorded completion)."""
    async with HttpPool(url, connections) as http:

        async def submit() -> str:
            status, body = await http.request("POST", f"/api/{STATE}/task/start/stamp")
            assert status == 200, body
            return str(body["task_id"])

        first = time.time()
        ids = await asyncio.gather(*(submit() for _ in range(jobs)))

        async def done(task_id: str, every: float) -> dict[str, Any]:
            while True:
                status, body = await http.request("GET", f"/api/{STATE}/task/result/{task_id}")
                assert status == 200, body
                if body["status"] in TERMINAL:
                    return dict(body)
                await asyncio.sleep(every)

        # Jobs run in the order they came: wait for the last one with one slow poll (a
        # poll per waiting task would load the web process more than the jobs do), then
        # read every result once (all but a few are done by then).
        await done(ids[-1], 0.05)
        rows = await asyncio.gather(*(done(t, 0.02) for t in ids))
    failed = [r for r in rows if r["status"] != "COMPLETED"]
    assert not failed, failed[:3]
    return first, max(utc_seconds(r["timestamp"]) for r in rows)


async def spyglass_dispatch(url: str, samples: int) -> list[tuple[str, float, float]]:
    """One no-op at a time: (task id, start request sent, its body began)."""
    seen = []
    async with HttpPool(url, 1) as http:
        for _ in range(samples):
            sent = time.time()
            status, body = await http.request("POST", f"/api/{STATE}/task/start/stamp")
            assert status == 200, body
            task_id = body["task_id"]
            while body["status"] not in TERMINAL:
                await asyncio.sleep(0.005)
                _, body = await http.request("GET", f"/api/{STATE}/task/result/{task_id}")
            assert body["status"] == "COMPLETED", body
            seen.append((task_id, sent, float(body["result"])))
    return seen


def dispatch_stages(db_url: str, seen: list[tuple[str, float, float]]) -> dict[str, list[float]]:
    """Where dispatch time goes, read from the database afterwards (ms after the start
    request was sent): the task row recorded (`created_at`), in worker mode Procrastinate's
    job deferred and fetched by a worker (its `procrastinate_events`), SpyGlass's
    PROCESSING (`processing_started_at`), the body began."""
    stages: dict[str, list[float]] = {}

    def add(name: str, value: Any, sent: float) -> None:
        stages.setdefault(name, []).append((utc_seconds(value) - sent) * 1000)

    db = sa.create_engine(db_url)
    try:
        with db.connect() as conn:
            for task_id, sent, began in seen:
                created, processing, job_id = conn.execute(
                    sa.text(
                        "SELECT created_at, processing_started_at, queue_job_id FROM task "
                        "WHERE id = :id"
                    ),
                    {"id": task_id},
                ).one()
                add("row recorded", created, sent)
                if job_id is not None:
                    events = dict(
                        conn.execute(
                            sa.text(
                                "SELECT type::text, at FROM procrastinate_events "
                                "WHERE job_id = :id AND type IN ('deferred', 'started')"
                            ),
                            {"id": job_id},
                        ).all()
                    )
                    add("job queued", events["deferred"], sent)
                    add("job fetched", events["started"], sent)
                add("PROCESSING", processing, sent)
                stages.setdefault("body began", []).append((began - sent) * 1000)
    finally:
        db.dispose()
    return stages


async def cancel_once(http: HttpPool, runs_in: set[int], folder: Path) -> tuple[float, float]:
    """Start a job spinning in its `run_sync` child, cancel it once the child is busy on
    the CPU: seconds from the cancel request to the child gone, and to CANCELLED."""
    pid_file = folder / f"spin-{uuid.uuid4().hex[:8]}.pid"
    status, body = await http.request(
        "POST", f"/api/{STATE}/task/start/spin", {"pid_file": str(pid_file)}
    )
    assert status == 200, body
    task_id = body["task_id"]
    text = await async_wait_for(
        lambda: pid_file.exists() and pid_file.read_text().strip(), 60, "the child's pid"
    )
    child = psutil.Process(int(text))
    ancestors = {p.pid for p in child.parents()}
    assert ancestors & runs_in, f"the child runs under {ancestors}, not under {runs_in}"
    await async_wait_for(lambda: sum(child.cpu_times()[:2]) >= 0.1, 30, "the CPU work")
    asked = time.monotonic()
    answer = asyncio.create_task(http.request("POST", f"/api/{STATE}/task/cancel/{task_id}"))

    async def child_gone() -> float:
        await async_wait_for(lambda: gone(child.pid), 30, "the child to be gone", every=0.001)
        return time.monotonic() - asked

    async def cancelled() -> float:
        while True:
            _, row = await http.request("GET", f"/api/{STATE}/task/result/{task_id}")
            if row["status"] in TERMINAL:
                assert row["status"] == "CANCELLED", row
                return time.monotonic() - asked
            await asyncio.sleep(0.005)

    killed, ended = await asyncio.wait_for(asyncio.gather(child_gone(), cancelled()), 30)
    status, body = await answer
    assert status == 200, body
    return killed, ended


async def spyglass_cancel(
    dep: Deployment, samples: int, folder: Path
) -> tuple[list[float], list[float]]:
    """Cancel latencies (ms): request → child gone, request → CANCELLED."""
    assert dep.web is not None and dep.web.proc is not None
    runs_in = {w.pid for w in dep.workers} or {dep.web.proc.pid}
    gone_ms, cancelled_ms = [], []
    async with HttpPool(dep.url, 2) as http:
        for _ in range(samples):
            killed, ended = await cancel_once(http, runs_in, folder)
            gone_ms.append(killed * 1000)
            cancelled_ms.append(ended * 1000)
    return gone_ms, cancelled_ms


# -- peers --------------------------------------------------------------------------------


@dataclass
class Peer:
    """Celery or Dramatiq: a worker command on its own Redis, and its client calls."""

    label: str
    command: list[str]
    redis_pid: int
    worker: subprocess.Popen[bytes] | None = None
    send: Callable[[], Any] = field(default=lambda: None)
    result: Callable[[Any], float] = field(default=lambda _: 0.0)
    #: The completion time the system recorded for a finished handle (None: not recorded).
    recorded: Callable[[Any], float | None] = field(default=lambda _: None)

    def start(self, folder: Path, env: dict[str, str]) -> None:
        log = (folder / f"{self.label.split()[0].lower()}.log").open("ab")
        self.worker = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def parts(self) -> dict[str, list[int]]:
        assert self.worker is not None
        return {"workers": [self.worker.pid], "redis": [self.redis_pid]}

    def batch(self, jobs: int) -> tuple[float, float]:
        first = time.time()
        handles = [self.send() for _ in range(jobs)]
        ends = [self.result(h) for h in handles]
        recorded = [self.recorded(h) for h in handles]
        if all(r is not None for r in recorded):
            return first, max(r for r in recorded if r is not None)
        return first, max(ends)

    def dispatch(self, samples: int) -> list[float]:
        latencies = []
        for _ in range(samples):
            sent = time.time()
            began = self.result(self.send())
            latencies.append((began - sent) * 1000)
        return latencies

    def stop(self) -> None:
        if self.worker is not None:
            stop_group(self.worker)
            self.worker = None


def celery_peer(redis_url: str, folder: Path) -> Peer:
    os.environ["BENCH_REDIS_URL"] = redis_url
    from bench import peer_celery

    peer_celery.app.conf.update(broker_url=redis_url, result_backend=redis_url)
    peer = Peer(
        label=f"Celery {metadata.version('celery')}, prefork ×2",
        command=[
            str(BIN / "celery"), "-A", "bench.peer_celery", "worker", "--loglevel", "WARNING",
            "--pool", "prefork", "--concurrency", "2",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ],
        redis_pid=listener_pid(redis_url),
        send=peer_celery.stamp.delay,
        result=lambda h: float(h.get(timeout=300)),
        recorded=lambda h: utc_seconds(h.date_done) if h.date_done else None,
    )  # fmt: skip
    peer.start(folder, {"BENCH_REDIS_URL": redis_url})
    return peer


def dramatiq_peer(redis_url: str, folder: Path) -> Peer:
    os.environ["BENCH_REDIS_URL"] = redis_url
    from bench import peer_dramatiq

    peer = Peer(
        label=f"Dramatiq {metadata.version('dramatiq')}, 2 proc × 8 thr",
        command=[
            str(BIN / "dramatiq"), "bench.peer_dramatiq", "--processes", "2", "--threads", "8",
        ],
        redis_pid=listener_pid(redis_url),
        send=peer_dramatiq.stamp.send,
        result=lambda h: float(h.get_result(block=True, timeout=300_000)),
    )  # fmt: skip
    peer.start(folder, {"BENCH_REDIS_URL": redis_url})
    return peer


@dataclass
class ProcrastinatePeer:
    """Procrastinate alone on its own database: the client defers no-op jobs straight into
    PostgreSQL (`--connections` in flight, like SpyGlass's client), a `procrastinate worker`
    with the same concurrency as `spyglass worker` runs them."""

    label: str
    conninfo: str
    pg_pid: int
    concurrency: int
    connections: int
    worker: subprocess.Popen[bytes] | None = None

    def start(self, folder: Path) -> None:
        os.environ["BENCH_PG_CONNINFO"] = self.conninfo
        from bench import peer_procrastinate

        with peer_procrastinate.app.open():
            peer_procrastinate.app.schema_manager.apply_schema()
        log_file = (folder / "procrastinate.log").open("ab")
        self.worker = subprocess.Popen(
            [
                str(BIN / "procrastinate"), "--app", "bench.peer_procrastinate.app", "worker",
                "--concurrency", str(self.concurrency),
            ],
            cwd=ROOT,
            env={**os.environ, "BENCH_PG_CONNINFO": self.conninfo, "PYTHONPATH": str(ROOT)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def parts(self) -> dict[str, list[int]]:
        assert self.worker is not None
        return {"workers": [self.worker.pid], "postgres": [self.pg_pid]}

    def batch(self, jobs: int) -> tuple[float, float]:
        return asyncio.run(self._batch(jobs))

    async def _batch(self, jobs: int) -> tuple[float, float]:
        from psycopg import AsyncConnection

        from bench import peer_procrastinate

        app = peer_procrastinate.app
        query = (
            "SELECT count(*), extract(epoch FROM max(e.at)) FROM procrastinate_jobs j "
            "JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'succeeded' "
            "WHERE j.id > %s"
        )
        async with (
            app.open_async(),
            await AsyncConnection.connect(self.conninfo, autocommit=True) as conn,
        ):
            cur = await conn.execute("SELECT coalesce(max(id), 0) FROM procrastinate_jobs")
            start = (await cur.fetchone() or (0,))[0]
            first = time.time()
            gate = asyncio.Semaphore(self.connections)

            async def one() -> None:
                async with gate:
                    await peer_procrastinate.noop.defer_async()

            await asyncio.gather(*(one() for _ in range(jobs)))
            while True:
                cur = await conn.execute(query, (start,))
                done, last = await cur.fetchone() or (0, None)
                if done >= jobs:
                    return first, float(last)
                await asyncio.sleep(0.02)

    def stop(self) -> None:
        if self.worker is not None:
            stop_group(self.worker)
            self.worker = None


# -- the run --------------------------------------------------------------------------------


ONE_IN_FLIGHT = "inline, SQLite, 1 request in flight"
FLOOR_ONE = "floor: Granian + sqlite3, 1 in flight"
FLOOR_MANY = "floor: Granian + sqlite3"


@dataclass
class Row:
    label: str
    jobs: int = 0
    runs: list[Run] = field(default_factory=list)
    dispatch: list[float] = field(default_factory=list)
    dispatch_stages: dict[str, list[float]] = field(default_factory=dict)
    cancel_gone: list[float] = field(default_factory=list)
    cancel_status: list[float] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def throughput(
    row: Row,
    parts: Callable[[], dict[str, list[int]]],
    body: Callable[[int], tuple[float, float]],
    args: Any,
    jobs: int,
) -> None:
    body(args.warmup)  # connections, imports and caches warm, untimed
    row.jobs = jobs
    for i in range(args.repeats):
        run = measure(parts, jobs, lambda: body(jobs))
        row.runs.append(run)
        split = ", ".join(f"{k} {v:.2f}" for k, v in run.parts_ms.items())
        log(
            f"{row.label}: run {i + 1}: {run.rate:.0f} jobs/s, {run.cpu_all_ms:.2f} ms CPU/job "
            f"({split})"
        )


def run_spyglass(
    row: Row,
    dep: Deployment,
    args: Any,
    tmp: Path,
    *,
    dispatch: bool,
    cancel: bool,
    connections: int | None = None,
) -> None:
    def body(n: int) -> tuple[float, float]:
        return asyncio.run(spyglass_batch(dep.url, n, connections or args.connections))

    throughput(row, dep.parts, body, args, args.worker_jobs if dep.workers else args.jobs)
    if dispatch:
        seen = asyncio.run(spyglass_dispatch(dep.url, args.dispatch_samples))
        row.dispatch = [(began - sent) * 1000 for _, sent, began in seen]
        row.dispatch_stages = dispatch_stages(dep.db_url, seen)
        log(f"{row.label}: dispatch p50 {pct(row.dispatch, 50):.1f} ms")
    if cancel:
        row.cancel_gone, row.cancel_status = asyncio.run(
            spyglass_cancel(dep, args.cancel_samples, tmp)
        )
        log(f"{row.label}: cancel, child gone max {max(row.cancel_gone):.0f} ms")


def run_peer(row: Row, peer: Peer, args: Any) -> None:
    wait_for(lambda: peer.result(peer.send()) > 0, 60, f"{peer.label} to answer")
    throughput(row, peer.parts, peer.batch, args, args.jobs)
    row.dispatch = peer.dispatch(args.dispatch_samples)
    log(f"{row.label}: dispatch p50 {pct(row.dispatch, 50):.1f} ms")


def report(rows: list[Row], args: Any, load: tuple[float, float]) -> None:
    celery = next((r for r in rows if r.label.startswith("Celery")), None)
    dramatiq = next((r for r in rows if r.label.startswith("Dramatiq")), None)

    def ratio(value: float, peer: Row | None, attr: str, width: int) -> str:
        return f"{value / peer.median(attr):{width - 1}.2f}×" if peer else f"{'—':>{width}}"

    print(
        f"\nExecutors: {args.jobs} no-op jobs per run ({args.worker_jobs} in worker mode), "
        f"median of {args.repeats} runs; "
        f"{datetime.now().date()}, {os.cpu_count()} cores, load average "
        f"{load[0]:.1f} before / {load[1]:.1f} after (other work on the machine shows here)"
    )
    print(
        "CPU = user+system of every process involved, client included (SpyGlass: this "
        "client, web,\nworkers and children, PostgreSQL, Redis; peers: this client, their "
        "workers and children, their Redis)"
    )
    print(
        f"Submit: SpyGlass {args.connections} keep-alive HTTP connections to the direct API, "
        "then every result read back;\nCelery .delay() then .get(); Dramatiq .send() then "
        f".get_result(block=True). `spyglass worker --concurrency {args.worker_concurrency}`; "
        "one web process\n"
    )
    head = (
        f"{'':34} {'jobs/s':>7} {'÷Celery':>8} {'÷Dramatiq':>9}  {'CPU ms/job':>10} "
        f"{'servers':>8} {'÷Celery':>8}  {'dispatch p50':>12} {'p99':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        rate, cpu = r.median("rate"), r.median("cpu_all_ms")
        lat = (
            f"{pct(r.dispatch, 50):9.1f} ms {pct(r.dispatch, 99):4.1f} ms"
            if r.dispatch
            else f"{'—':>12} {'—':>7}"
        )
        print(
            f"{r.label:34} {rate:7.0f} {ratio(rate, celery, 'rate', 8)} "
            f"{ratio(rate, dramatiq, 'rate', 9)}  {cpu:10.2f} "
            f"{r.median('cpu_servers_ms'):8.2f} {ratio(cpu, celery, 'cpu_all_ms', 8)}  {lat}"
        )
    print("\nCPU ms per job by part (median of each part over the runs):")
    for r in rows:
        names = list(r.runs[0].parts_ms)
        split = "  ".join(
            f"{n} {statistics.median(run.parts_ms[n] for run in r.runs):.2f}" for n in names
        )
        print(f"  {r.label:32} {split}")
    print("\ndispatch, where the time goes: p50 / p99 ms after the start request was sent")
    for r in rows:
        if r.dispatch_stages:
            split = ",  ".join(
                f"{name} {pct(v, 50):.1f} / {pct(v, 99):.1f}"
                for name, v in r.dispatch_stages.items()
            )
            print(f"  {r.label:32} {split}")
    print(f"\ncancel of a CPU-bound job (run_sync child spinning), {args.cancel_samples} samples:")
    for r in rows:
        if r.cancel_gone:
            print(
                f"  {r.label:32} child gone p50 {pct(r.cancel_gone, 50):5.0f} ms, "
                f"max {max(r.cancel_gone):5.0f} ms;  CANCELLED p50 "
                f"{pct(r.cancel_status, 50):5.0f} ms, max {max(r.cancel_status):5.0f} ms"
            )

    print("\ntargets:")

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    for r in rows:
        if r.label.startswith("worker mode") and celery is not None:
            celery_cpu = celery.median("cpu_all_ms")
            cpu = r.median("cpu_all_ms")
            print(
                f"  CPU per no-op job, {r.label}: {cpu:.2f} ms ≤ Celery's {celery_cpu:.2f} ms"
                f" → {verdict(cpu <= celery_cpu)}"
            )
    alone = next((r for r in rows if r.label.startswith("Procrastinate")), None)
    for r in rows:
        if r.label.startswith("worker mode") and alone is not None:
            floor, cpu = alone.median("cpu_all_ms"), r.median("cpu_all_ms")
            print(
                f"  CPU per no-op job, {r.label}: {cpu:.2f} ms ≤ 2 × Procrastinate alone's "
                f"{floor:.2f} ms (the engine it is built on; see README) → "
                f"{verdict(cpu <= 2 * floor)}"
            )
    for r in rows:
        if r.label.startswith("inline") and r.label != ONE_IN_FLIGHT:
            rate = r.median("rate")
            print(f"  {r.label}: {rate:.0f} jobs/s ≥ 1,000 → {verdict(rate >= 1000)}")
    floors = {r.label: r for r in rows if r.label.startswith("floor")}
    if floors:
        print("\nSpyGlass beside the floor of its stack (bench/start_floor.py), same run:")
        for label, floor_label in (
            ("inline, SQLite (default)", FLOOR_MANY),
            (ONE_IN_FLIGHT, FLOOR_ONE),
        ):
            r, f = next((r for r in rows if r.label == label), None), floors.get(floor_label)
            if r is None or f is None:
                continue
            print(
                f"  {label}: server CPU {r.median('cpu_servers_ms'):.2f} ms/job = "
                f"{r.median('cpu_servers_ms') / f.median('cpu_servers_ms'):.1f}× the floor's "
                f"{f.median('cpu_servers_ms'):.2f}; rate {r.median('rate'):.0f} jobs/s = "
                f"{r.median('rate') / f.median('rate'):.2f}× the floor's {f.median('rate'):.0f}"
            )
    if dramatiq is not None:  # issue 14: the start path beside Dramatiq's
        peer_cpu = dramatiq.median("cpu_servers_ms")
        for r in rows:
            if not r.label.startswith(("inline, SQLite", "floor")):
                continue
            cpu = r.median("cpu_servers_ms")
            print(
                f"  server CPU per no-op job, {r.label}: {cpu:.2f} ms ≤ 2 × Dramatiq's "
                f"{peer_cpu:.2f} ms → {verdict(cpu <= 2 * peer_cpu)}"
            )
            if r.label in (ONE_IN_FLIGHT, FLOOR_ONE):
                rate, peer_rate = r.median("rate"), dramatiq.median("rate")
                print(
                    f"  rate, {r.label}: {rate:.0f} jobs/s ≥ 0.5 × Dramatiq's {peer_rate:.0f}"
                    f" → {verdict(rate >= 0.5 * peer_rate)}"
                )
    for r in rows:
        if r.dispatch and not r.label.startswith(("Celery", "Dramatiq")):
            p99 = pct(r.dispatch, 99)
            print(
                f"  dispatch p99, {r.label}: {p99:.1f} ms ≤ 50 ms (idle, "
                f"{len(r.dispatch)} samples) → {verdict(p99 <= 50)}"
            )
    for r in rows:
        if r.cancel_gone:
            limit = 2000 if r.label.startswith("worker") else 1000
            worst = max(max(r.cancel_gone), max(r.cancel_status))
            print(
                f"  cancel, {r.label}: worst of child gone / CANCELLED {worst:.0f} ms ≤ "
                f"{limit / 1000:.0f} s → {verdict(worst <= limit)}"
            )


@contextlib.contextmanager
def cleanup_on_signals() -> Iterator[None]:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so every started process is stopped."""

    def raise_exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, raise_exit) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def pg_env(pg_url: str, redis_url: str) -> dict[str, str]:
    """A SpyGlass on a new database of the PostgreSQL server, with its Redis."""
    return {
        "REDIS_URL": redis_url,
        "SPYGLASS_DB_URL": new_database(pg_url),
        "SPYGLASS_REDIS_PREFIX": f"b{uuid.uuid4().hex[:8]}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="no-op jobs per run")
    parser.add_argument(
        "--worker-jobs", type=int, default=1000, help="per run in worker mode (slower)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--connections", type=int, default=32, help="SpyGlass client")
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--dispatch-samples", type=int, default=200)
    parser.add_argument("--cancel-samples", type=int, default=10)
    parser.add_argument(
        "--only",
        default="",
        help="comma list of parts: sqlite,postgres,workers,procrastinate,celery,dramatiq",
    )
    args = parser.parse_args()
    parts = set(filter(None, args.only.split(","))) or {
        "sqlite", "postgres", "workers", "procrastinate", "celery", "dramatiq",
    }  # fmt: skip
    for binary in ("celery", "dramatiq"):
        if binary in parts and not (BIN / binary).exists():
            raise SystemExit(f"{binary} is missing: `make bench` installs '.[bench]'")
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is missing: `make bench` installs it")

    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    base_env = {"GRANIAN_WORKERS": "1"}
    with cleanup_on_signals(), contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="executor-bench-")))
        print("executor benchmark (progress on stderr; the table at the end)", flush=True)

        def deployment(label: str, env: dict[str, str], services: dict[str, int]) -> Deployment:
            dep = Deployment(label, tmp / uuid.uuid4().hex[:8], {**base_env, **env}, services)
            stack.callback(dep.stop)
            log(f"{label}: starting")
            return dep.start()

        if "sqlite" in parts:
            row = Row("inline, SQLite (default)")
            dep = deployment(row.label, {}, {})
            try:
                run_spyglass(row, dep, args, tmp, dispatch=True, cancel=True)
                rows.append(row)
                # The same server, one start request at a time (issue 14's other case).
                row = Row(ONE_IN_FLIGHT)
                dep.label = row.label
                run_spyglass(row, dep, args, tmp, dispatch=False, cancel=False, connections=1)
                rows.append(row)
            finally:
                dep.stop()
            # The floor of the same two figures on this stack (bench/start_floor.py).
            floor = FloorServer(tmp / "floor")
            stack.callback(floor.stop)
            log(f"{FLOOR_MANY}: starting")
            floor.start()
            try:
                for label, connections in ((FLOOR_MANY, args.connections), (FLOOR_ONE, 1)):
                    row = Row(label)

                    def floor_body(n: int, connections: int = connections) -> tuple[float, float]:
                        return asyncio.run(spyglass_batch(floor.url, n, connections))

                    throughput(row, floor.parts, floor_body, args, args.jobs)
                    rows.append(row)
            finally:
                floor.stop()

        if parts & {"postgres", "workers", "procrastinate"}:
            with postgres_server() as pg_url:
                pg_pid = listener_pid(pg_url)
                if "postgres" in parts:
                    with redis_server() as redis_url:
                        row = Row("inline, PostgreSQL + Redis")
                        services = {"postgres": pg_pid, "redis": listener_pid(redis_url)}
                        dep = deployment(row.label, pg_env(pg_url, redis_url), services)
                        try:
                            run_spyglass(row, dep, args, tmp, dispatch=True, cancel=True)
                        finally:
                            dep.stop()
                        rows.append(row)
                if "workers" in parts:
                    with redis_server() as redis_url:
                        env = {**pg_env(pg_url, redis_url), "SPYGLASS_EXECUTOR": "procrastinate"}
                        services = {"postgres": pg_pid, "redis": listener_pid(redis_url)}
                        dep = deployment("worker mode", env, services)
                        try:
                            for count in (1, 2):
                                dep.add_worker(args.worker_concurrency)
                                row = Row(f"worker mode, {count} worker{'s' * (count > 1)}")
                                dep.label = row.label
                                first = count == 1
                                run_spyglass(row, dep, args, tmp, dispatch=first, cancel=first)
                                rows.append(row)
                        finally:
                            dep.stop()
                if "procrastinate" in parts:
                    label = f"Procrastinate {metadata.version('procrastinate')} alone"
                    log(f"{label}: starting")
                    url = sa.make_url(new_database(pg_url)).set(drivername="postgresql")
                    alone = ProcrastinatePeer(
                        label,
                        url.render_as_string(hide_password=False),
                        pg_pid,
                        args.worker_concurrency,
                        args.connections,
                    )
                    try:
                        alone.start(tmp)
                        row = Row(label)
                        throughput(row, alone.parts, alone.batch, args, args.worker_jobs)
                        rows.append(row)
                    finally:
                        alone.stop()

        for name, make in (("celery", celery_peer), ("dramatiq", dramatiq_peer)):
            if name not in parts:
                continue
            with redis_server() as redis_url:
                peer = make(redis_url, tmp)
                try:
                    row = Row(peer.label)
                    log(f"{row.label}: starting")
                    run_peer(row, peer, args)
                    rows.append(row)
                finally:
                    peer.stop()

    report(rows, args, (load_before, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
