"""`make run` with `GRANIAN_WORKERS=2` on real Redis and PostgreSQL (inline executor): a
Granian worker that is `kill -9`'d comes back while the other keeps serving the port, and
the tasks it ran are taken over through their lapsed leases (issue 11).

Reflex builds Granian without `respawn_failed_workers`; `spyglass/serving.py` (called from
rxconfig.py) asks for it. `GRANIAN_RESPAWN_FAILED_WORKERS=false` gives Reflex's own
behaviour back: the last test shows what that is.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import psycopg
import pytest

from tests.harness import SpyGlassServer
from tests.services import new_database, postgres_server, redis_server

#: Short leases so that a dead worker's tasks are found within seconds.
LEASE_TTL = 3.0
LEASE_RENEW = 0.5
#: Seconds a SIGTERM'd worker lets its running jobs finish before it interrupts them.
SHUTDOWN_GRACE = 1.0
#: A job that outlives every test (50 minutes of steps).
ENDLESS = {"steps": 60_000, "delay": 0.05}
#: A job declared with `retries=1`, long enough to be running when its worker is killed.
RERUNNABLE = {"steps": 120, "delay": 0.1}

T = TypeVar("T")


@pytest.fixture(scope="module")
def infra() -> Iterator[tuple[str, str]]:
    with redis_server() as redis_url, postgres_server() as pg_url:
        yield redis_url, pg_url


@pytest.fixture
def serve(infra: tuple[str, str], tmp_path: Path) -> Iterator[Callable[..., SpyGlassServer]]:
    """`serve(**env)`: one `reflex run --env prod` with two Granian workers behind its port,
    on this test's own database and Redis channels; stopped at the end if still running."""
    redis_url, pg_url = infra
    started: list[SpyGlassServer] = []

    def start(**extra: str) -> SpyGlassServer:
        env = {
            "REDIS_URL": redis_url,
            "SPYGLASS_REDIS_PREFIX": f"t{uuid.uuid4().hex[:8]}",
            "SPYGLASS_DB_URL": new_database(pg_url),
            "SPYGLASS_LEASE_TTL": str(LEASE_TTL),
            "SPYGLASS_LEASE_RENEW": str(LEASE_RENEW),
            "SPYGLASS_SHUTDOWN_GRACE": str(SHUTDOWN_GRACE),
            "GRANIAN_WORKERS": "2",
            "PROMETHEUS_MULTIPROC_DIR": "",  # the server's own folder, in its data folder
            **extra,
        }
        server = SpyGlassServer(tmp_path / f"data-{len(started)}", env=env).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# -- looking at the server from outside ----------------------------------------------


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 60) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def granian_workers(server: SpyGlassServer) -> set[int]:
    """Pids of the live Granian workers: the server's own forks (same command line)."""
    assert server.proc is not None
    main = psutil.Process(server.proc.pid)
    command = main.cmdline()
    pids = set()
    for child in main.children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and child.cmdline() == command:
                pids.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


def health(server: SpyGlassServer) -> dict[str, Any]:
    """`GET /api/health` on a new connection (so any worker may take it); must be 200."""
    r = httpx.get(f"{server.url}/api/health", timeout=15, headers={"Connection": "close"})
    assert r.status_code == 200, r.text
    return r.json()


def pid_of(worker_id: str) -> int:
    """The process of an engine's worker id (`host:pid:random`)."""
    return int(worker_id.split(":")[1])


def row(server: SpyGlassServer, task_id: str) -> dict[str, Any]:
    """The task's row as PostgreSQL holds it (which worker runs it, its status)."""
    url = server.extra_env["SPYGLASS_DB_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            "SELECT status, error_code, worker_id, attempt FROM task WHERE id = %s", (task_id,)
        )
        found = cur.fetchone()
    assert found is not None, f"no task {task_id}"
    status, error_code, worker_id, attempt = found
    return {"status": status, "error_code": error_code, "worker": worker_id, "attempt": attempt}


def start(server: SpyGlassServer, job: str, body: dict[str, Any]) -> str:
    r = httpx.post(
        f"{server.url}/api/testjobs/task/start/{job}",
        json=body,
        timeout=15,
        headers={"Connection": "close"},
    )
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


def result(server: SpyGlassServer, task_id: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/api/testjobs/task/result/{task_id}", timeout=15)
    assert r.status_code == 200, r.text
    return r.json()


def running_worker(server: SpyGlassServer, task_id: str) -> int:
    """The pid of the Granian worker that runs `task_id`, once it runs."""

    def claimed() -> int | None:
        r = row(server, task_id)
        return pid_of(r["worker"]) if r["status"] == "PROCESSING" and r["worker"] else None

    return wait_for(claimed, f"task {task_id} PROCESSING", timeout=30)


def both_workers_serving(server: SpyGlassServer) -> set[int]:
    """Wait until both workers answer on the port; returns their pids."""
    answered: set[int] = set()

    def two() -> set[int] | None:
        answered.add(pid_of(health(server)["worker"]))
        return answered if len(answered) == 2 else None

    pids = wait_for(two, "both workers answering /api/health", timeout=60)
    assert pids == granian_workers(server)
    return pids


def place(
    server: SpyGlassServer,
    jobs: list[tuple[str, dict[str, Any]]],
    on: set[int],
    placed: dict[int, dict[str, list[str]]] | None = None,
) -> dict[int, dict[str, list[str]]]:
    """Start each (job, body) until one runs on each worker in `on` (the kernel spreads new
    connections over the workers). Returns {pid: {job: [task ids]}} of every task started,
    added to `placed`."""
    placed = placed if placed is not None else {}
    for job, body in jobs:
        for _ in range(60):
            if all(job in placed.get(pid, {}) for pid in on):
                break
            task_id = start(server, job, body)
            pid = running_worker(server, task_id)
            placed.setdefault(pid, {}).setdefault(job, []).append(task_id)
        else:
            pytest.fail(f"{job}: 60 starts did not reach every worker: {placed}")
    return placed


# -- the tests -------------------------------------------------------------------------


def test_a_killed_granian_worker_comes_back_and_its_tasks_are_taken_over(
    serve: Callable[..., SpyGlassServer],
) -> None:
    server = serve()
    assert server.proc is not None
    main = server.proc.pid
    pids = both_workers_serving(server)
    # A long job, and the worker that runs it: the one to kill.
    first = start(server, "steps", ENDLESS)
    victim = running_worker(server, first)
    (survivor,) = pids - {victim}
    # Both workers run a plain job and one with `retries`.
    placed = {victim: {"steps": [first]}}
    place(server, [("steps", ENDLESS), ("durable", RERUNNABLE)], on=pids, placed=placed)
    lost, kept = placed[victim], placed[survivor]
    assert all(row(server, t)["status"] == "PROCESSING" for t in lost["durable"])

    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: not psutil.pid_exists(victim), "the killed worker gone", timeout=15)

    # Until the worker is back, answering, and its tasks ended: every probe on the port is
    # answered (by the survivor, then by either), and the server's main process lives on.
    back_at = answering_at = interrupted_at = None
    new = None
    deadline = time.monotonic() + 90
    while back_at is None or answering_at is None or interrupted_at is None:
        assert time.monotonic() < deadline, (back_at, answering_at, interrupted_at)
        assert server.proc.poll() is None, f"the server stopped:\n{server.log_tail()}"
        answered = pid_of(health(server)["worker"])
        now = time.monotonic() - killed_at
        assert answered != victim
        if back_at is None and len(workers := granian_workers(server)) == 2:
            (new,) = workers - {survivor}
            back_at = now
        if answering_at is None and new is not None and answered == new:
            answering_at = now
        if interrupted_at is None and all(
            row(server, t)["status"] == "FAILED" for t in lost["steps"]
        ):
            interrupted_at = now
        time.sleep(0.05)
    print(
        f"\nworker killed -> new worker process {back_at:.2f} s, answering {answering_at:.2f} s; "
        f"its task FAILED/INTERRUPTED {interrupted_at:.2f} s (lease {LEASE_TTL} s)"
    )

    assert psutil.pid_exists(main) and server.proc.poll() is None
    assert granian_workers(server) == {survivor, new} and new != victim
    # The killed worker's plain tasks ended INTERRUPTED through a lapsed lease (not at once,
    # not never), as any worker reports them.
    for task_id in lost["steps"]:
        ended = result(server, task_id)
        assert (ended["status"], ended["error_code"]) == ("FAILED", "INTERRUPTED"), ended
    assert LEASE_TTL - 1 < interrupted_at < LEASE_TTL + 3 * LEASE_RENEW + 5, interrupted_at

    def completed(task_id: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            r = result(server, task_id)
            return r if r["status"] == "COMPLETED" else None

        return wait_for(check, f"task {task_id} COMPLETED")

    # Its task that allows a retry ran again, on a live worker, to completion.
    for task_id in lost["durable"]:
        assert completed(task_id)["result"] == {"steps": RERUNNABLE["steps"], "attempt": 2}
        assert pid_of(row(server, task_id)["worker"]) in {survivor, new}
    # The survivor's own tasks were never touched.
    for task_id in kept["steps"]:
        r = row(server, task_id)
        assert (r["status"], r["attempt"], pid_of(r["worker"])) == ("PROCESSING", 1, survivor)
    for task_id in kept["durable"]:
        assert completed(task_id)["result"]["attempt"] == 1
    # The ends by recovery are counted, whichever worker the scrape reaches.
    from tests.test_metrics import scrape, value

    for _ in range(4):
        samples = scrape(server.url)
        finished = value(
            samples, "spyglass_tasks_finished_total", job="probe_jobs_state.steps", status="FAILED"
        )
        assert finished == len(lost["steps"])
    log = server.log_tail(400)
    assert "Unexpected exit from worker" in log and "crash loop" not in log


def test_sigterm_still_stops_the_server_cleanly_after_a_respawn(
    serve: Callable[..., SpyGlassServer],
) -> None:
    server = serve()
    assert server.proc is not None
    pids = both_workers_serving(server)
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(granian_workers(server) - {victim}) == 2, "the new worker", timeout=30)
    workers = granian_workers(server)
    (new,) = workers - pids
    # Running tasks on the new worker (and maybe on the other) when the server is told to stop.
    placed = place(server, [("steps", ENDLESS)], on={new})
    running = [t for jobs in placed.values() for t in jobs["steps"]]

    # SIGTERM to the main process only (as `docker stop` or `kill <pid>` sends it): Granian's
    # supervisor must stop every worker itself, the respawned one included.
    stopped_at = time.monotonic()
    os.kill(server.proc.pid, signal.SIGTERM)
    code = server.proc.wait(timeout=SHUTDOWN_GRACE + 60)
    took = time.monotonic() - stopped_at
    print(f"\nSIGTERM -> server exited {code} in {took:.2f} s")
    log = server.log_tail(400)
    assert code == 0, log
    server.proc = None
    wait_for(lambda: not any(psutil.pid_exists(pid) for pid in workers), "workers gone", timeout=15)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/api/health", timeout=5)
    # The running tasks were ended by the graceful path, not left PROCESSING.
    for task_id in running:
        ended = row(server, task_id)
        assert (ended["status"], ended["error_code"]) == ("FAILED", "INTERRUPTED"), ended
    assert "crash loop" not in log


def test_without_respawn_one_killed_worker_stops_the_server(
    serve: Callable[..., SpyGlassServer],
) -> None:
    """Reflex's own behaviour, kept behind GRANIAN_RESPAWN_FAILED_WORKERS=false: the issue."""
    server = serve(GRANIAN_RESPAWN_FAILED_WORKERS="false")
    assert server.proc is not None
    pids = both_workers_serving(server)
    os.kill(min(pids), signal.SIGKILL)
    code = server.proc.wait(timeout=60)
    assert code != 0
    assert "Unexpected exit from worker" in server.log_tail(400)
    server.proc = None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/api/health", timeout=5)
