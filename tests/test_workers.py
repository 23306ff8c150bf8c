"""Worker mode: one web process, `spyglass worker` processes, real PostgreSQL and Redis.

The web process (`SPYGLASS_EXECUTOR=procrastinate`) records and queues; Procrastinate
workers started with the `spyglass worker` command run the jobs. Heartbeats are short
here so that a dead worker is noticed within seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest
import websockets
from playwright.sync_api import Browser, expect

from tests import test_journey
from tests.accounts import make_account
from tests.harness import ROOT, SpyGlassServer, separate_checkout, wait_for
from tests.services import new_database, postgres_server, redis_server
from tests.streams import read_until_progress
from tests.test_child_work import events, start_tool, wait_burning, wide_csv
from tests.test_cluster import account_on, bearer
from tests.test_credits import balance
from tests.test_tasks_page import browser, sign_in  # noqa: F401  (shared browser fixture)

HEARTBEAT = 0.5
STALLED_AFTER = 2.5
#: How long a dead worker's job may take to be re-run or ended: the heartbeat window
#: plus one sweep of the survivors.
RECOVERY_WINDOW = STALLED_AFTER + 2 * HEARTBEAT + 3
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
SPYGLASS = str(Path(sys.executable).parent / "spyglass")


@pytest.fixture(scope="module")
def infra() -> Iterator[tuple[str, str]]:
    with redis_server() as redis_url, postgres_server() as pg_url:
        yield redis_url, pg_url


@dataclass
class Deployment:
    env: dict[str, str]
    data: Path
    web: SpyGlassServer | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_web(self) -> SpyGlassServer:
        self.web = SpyGlassServer(
            self.data, env=self.env, job_modules=self.env["SPYGLASS_JOB_MODULES"]
        ).start()
        return self.web

    def start_worker(self, concurrency: int = 8, *args: str) -> subprocess.Popen[bytes]:
        log = (self.data / f"worker-{len(self.workers)}.log").open("ab")
        proc = subprocess.Popen(
            [SPYGLASS, "worker", "--concurrency", str(concurrency), *args],
            cwd=ROOT,
            env={**os.environ, **self.env, "SPYGLASS_DATA_DIR": str(self.data)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(proc)
        wait_for(
            lambda: self.alive_workers() >= sum(p.poll() is None for p in self.workers),
            60,
            "the worker to register",
        )
        return proc

    def alive_workers(self) -> int:
        assert self.web is not None
        health = httpx.get(f"{self.web.url}/api/health", timeout=10).json()
        return int(health.get("workers") or 0)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-4000:]
            for p in sorted(self.data.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self.web is not None:
            self.web.stop()


@pytest.fixture
def deployment(infra: tuple[str, str], tmp_path: Path) -> Iterator[Deployment]:
    redis_url, pg_url = infra
    env = {
        "REDIS_URL": redis_url,
        "SPYGLASS_REDIS_PREFIX": f"t{uuid.uuid4().hex[:8]}",
        "SPYGLASS_DB_URL": new_database(pg_url),
        "SPYGLASS_EXECUTOR": "procrastinate",
        "SPYGLASS_WORKER_HEARTBEAT": str(HEARTBEAT),
        "SPYGLASS_WORKER_STALLED_AFTER": str(STALLED_AFTER),
        "SPYGLASS_SHUTDOWN_GRACE": "2",
        "SPYGLASS_JOB_MODULES": "tests.jobs",
        "SPYGLASS_TEST_CRON_FILE": str(tmp_path / "cron.log"),
        "PYTHONPATH": str(ROOT),
        "GRANIAN_WORKERS": "1",
    }
    dep = Deployment(env=env, data=tmp_path / "data")
    dep.data.mkdir()
    yield dep
    dep.stop()


def start(dep: Deployment, job: str, body: Any = None, **query: Any) -> str:
    assert dep.web is not None
    r = httpx.post(
        f"{dep.web.url}/api/testjobs/task/start/{job}", json=body, params=query, timeout=30
    )
    assert r.status_code == 200, r.text
    return str(r.json()["task_id"])


def result(dep: Deployment, task_id: str) -> dict[str, Any]:
    assert dep.web is not None
    r = httpx.get(f"{dep.web.url}/api/testjobs/task/result/{task_id}", timeout=10)
    assert r.status_code == 200, r.text
    return dict(r.json())


def ended(dep: Deployment, task_id: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body = result(dep, task_id)
        return body if body["status"] in TERMINAL else None

    return dict(wait_for(check, timeout, f"task {task_id} to end"))


def test_300_jobs_run_exactly_once_on_two_workers(deployment: Deployment, tmp_path: Path) -> None:
    dep = deployment
    dep.start_web()
    dep.start_worker(8)
    dep.start_worker(8)
    tally = tmp_path / "tally.log"

    async def submit_all() -> list[str]:
        assert dep.web is not None
        async with httpx.AsyncClient(base_url=dep.web.url, timeout=60) as client:
            sem = asyncio.Semaphore(16)

            async def one(i: int) -> str:
                async with sem:
                    r = await client.post(
                        "/api/testjobs/task/start/where", json={"path": str(tally), "delay": 0.01}
                    )
                    assert r.status_code == 200, r.text
                    return str(r.json()["task_id"])

            return await asyncio.gather(*(one(i) for i in range(300)))

    ids = asyncio.run(submit_all())
    wait_for(lambda: tally.exists() and len(tally.read_text().splitlines()) >= 300, 120, "300 runs")
    for task_id in ids[::30]:
        assert ended(dep, task_id)["status"] == "COMPLETED"
    time.sleep(0.5)  # a duplicate run, if any, would have landed by now
    runs = [line.split() for line in tally.read_text().splitlines()]
    assert sorted(task_id for task_id, _, _ in runs) == sorted(ids), "each ran exactly once"
    assert {attempt for _, attempt, _ in runs} == {"1"}
    pids = {pid for _, _, pid in runs}
    worker_pids = {str(p.pid) for p in dep.workers}
    assert pids <= worker_pids, "jobs ran on the workers, not in the web process"
    assert len(pids) == 2, "both workers took jobs"
    assert dep.web is not None
    scraped = httpx.get(f"{dep.web.url}/metrics", timeout=10).text
    assert "spyglass_workers 2.0" in scraped
    assert "spyglass_queue_depth" in scraped
    health = httpx.get(f"{dep.web.url}/api/health", timeout=10).json()
    assert health["executor"] == "procrastinate" and health["workers"] == 2


def test_progress_streams_from_a_worker_to_a_socket_on_the_web_process(
    deployment: Deployment,
) -> None:
    dep = deployment
    dep.start_web()
    dep.start_worker(2)
    task_id = start(dep, "steps", {"steps": 10, "delay": 0.15}, start_in=1)
    assert result(dep, task_id)["scheduled_at"] is not None

    async def follow() -> list[dict[str, Any]]:
        assert dep.web is not None
        seen = []
        url = f"{dep.web.ws_url}/ws/testjobs/task/ws/{task_id}"
        async with asyncio.timeout(60), websockets.connect(url) as ws:
            async for raw in ws:
                seen.append(json.loads(raw))
        return seen

    seen = asyncio.run(follow())
    progress = [m["progress"] for m in seen if m.get("status") == "PROCESSING"]
    assert len(set(progress)) >= 5, seen
    assert seen[-1]["status"] == "COMPLETED"
    assert seen[-1]["result"] == {"steps": 10}


def test_a_socket_opened_after_a_worker_s_job_reported_is_told_its_progress(
    deployment: Deployment, tmp_path: Path
) -> None:
    """Progress goes from the worker to the web process at once, to the database only every
    60 s here. A socket opened on the web process after the job reported reads the older
    progress from the database, then is told the current one by the worker running it."""
    dep = deployment
    dep.env["SPYGLASS_PROGRESS_FLUSH"] = "60"
    dep.start_web()
    dep.start_worker(2)
    ready, go = tmp_path / "ready", tmp_path / "go"
    task_id = start(dep, "hold", {"go": str(go), "ready": str(ready), "progress": 40})
    assert dep.web is not None
    url = f"{dep.web.ws_url}/ws/testjobs/task/ws/{task_id}"

    async def run() -> list[dict[str, Any]]:
        async with websockets.connect(url) as early:
            ready.touch()
            await read_until_progress(early, 40, timeout=30)  # the job reported
            async with websockets.connect(url) as late:
                told = await read_until_progress(late, 40, timeout=30)
                assert result(dep, task_id)["progress"] == 0  # not in the database yet
                go.touch()
                async with asyncio.timeout(30):
                    return told + [json.loads(raw) async for raw in late]

    told = asyncio.run(run())
    assert told[0]["type"] == "snapshot" and told[0]["progress"] == 0, told
    assert told[-2]["message"] == "half way" and told[-1]["status"] == "COMPLETED", told


def test_a_killed_worker_s_jobs_rerun_or_end_interrupted(deployment: Deployment) -> None:
    dep = deployment
    dep.start_web()
    doomed = dep.start_worker(4)
    # 20 s each: longer than a second worker takes to start on a loaded machine (at 6 s the
    # plain job once completed on the doomed worker before the kill).
    durable = start(dep, "durable", {"steps": 200, "delay": 0.1})
    plain = start(dep, "steps", {"steps": 200, "delay": 0.1})
    for task_id in (durable, plain):
        wait_for(lambda t=task_id: result(dep, t)["progress"] > 0, 30, "the jobs to run")
    dep.start_worker(4)
    note_hand_backs(dep)
    assert result(dep, plain)["status"] == "PROCESSING", "the kill must come mid-job"
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait(timeout=10)
    killed_at = time.monotonic()

    end_plain = ended(dep, plain, timeout=RECOVERY_WINDOW + 10)
    assert end_plain["status"] == "FAILED"
    assert end_plain["error_code"] == "INTERRUPTED"
    assert time.monotonic() - killed_at <= RECOVERY_WINDOW
    end_durable = ended(dep, durable, timeout=90)
    assert end_durable["status"] == "COMPLETED", dep.logs()
    assert end_durable["result"]["attempt"] == 2
    # When its job could be taken again, the task already named the next attempt (handed
    # back first, a worker once ran it as attempt 1 again while the task was being marked).
    assert hand_backs(dep) == [(durable, 2, "PENDING")]


def _sql(dep: Deployment, *statements: str) -> list[tuple[Any, ...]]:
    url = dep.env["SPYGLASS_DB_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        rows: list[tuple[Any, ...]] = []
        for statement in statements:
            cur = conn.execute(statement)
            rows = cur.fetchall() if cur.description else []
        return rows


def note_hand_backs(dep: Deployment) -> None:
    """Record, as each Procrastinate job is handed back to the queue (`doing` to `todo`)
    and as of the commit that does it (what a worker taking the job reads), its task's
    attempt and status."""
    _sql(
        dep,
        "CREATE TABLE handed_back (n serial, task_id text, attempt int, status text)",
        "CREATE FUNCTION note_handed_back() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO handed_back (task_id, attempt, status) SELECT id, attempt, status "
        "FROM task WHERE id = NEW.args->>'task_id'; RETURN NULL; END $$",
        "CREATE CONSTRAINT TRIGGER note_handed_back AFTER UPDATE ON procrastinate_jobs "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
        "WHEN (OLD.status = 'doing' AND NEW.status = 'todo') "
        "EXECUTE FUNCTION note_handed_back()",
    )


def hand_backs(dep: Deployment) -> list[tuple[Any, ...]]:
    return _sql(dep, "SELECT task_id, attempt, status FROM handed_back ORDER BY n")


def test_cancel_kills_the_cpu_child_on_its_worker(deployment: Deployment, tmp_path: Path) -> None:
    dep = deployment
    dep.start_web()
    dep.start_worker(2)
    pid_file = tmp_path / "burn.pid"
    task_id = start(dep, "burn", {"pid_file": str(pid_file), "seconds": 120})
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 30, "the child's pid")
    pid = int(pid_file.read_text())
    wait_burning(pid)
    assert dep.web is not None
    sent = time.monotonic()
    r = httpx.post(f"{dep.web.url}/api/testjobs/task/cancel/{task_id}", timeout=30)
    assert r.status_code == 200, r.text
    wait_for(lambda: _gone(pid), 2.0, "the CPU child to be killed")
    assert time.monotonic() - sent <= 2.5
    assert ended(dep, task_id, timeout=10)["status"] == "CANCELLED"


def test_cancel_of_a_data_agent_on_a_worker_kills_it_and_refunds(deployment: Deployment) -> None:
    dep = deployment
    web = dep.start_web()
    worker = dep.start_worker(2)
    account = account_on(web)
    before = balance(web, account)
    with httpx.Client(base_url=web.url, headers=bearer(account), timeout=30) as c:
        # golden-record-builder on 10,000 columns burns CPU for over a minute
        task_id = start_tool(c, "master-my-data", ["golden-record-builder"], wide_csv())
        assert c.post(f"/api/tasks/{task_id}/process").status_code == 200
        wait_for(
            lambda: any(e["event_type"] == "agent_started" for e in events(c, task_id)),
            60,
            "the agent to start",
        )
        child = wait_for(lambda: _job_children(worker), 10, "the agent's child on the worker")
        pid = child.pop()
        wait_burning(pid)  # the agent is working
        asked = time.monotonic()
        r = c.post(f"/api/tasks/{task_id}/cancel")
        assert r.status_code == 200, r.text
        wait_for(lambda: _gone(pid), 2, "the agent's child to be killed")
        print(f"worker's agent child gone {time.monotonic() - asked:.3f} s after the cancel")
        wait_for(lambda: c.get(f"/api/tasks/{task_id}").json()["status"] == "CANCELLED", 10, "end")
        timeline = events(c, task_id)
        last = timeline[-1]
        assert last["data"]["status"] == "CANCELLED", last
        assert (
            "refunded for the agents that did not finish (golden-record-builder)"
            in (last["message"])
        )
        assert balance(web, account) == before  # no agent finished: all refunded
        assert len(events(c, task_id)) == len(timeline)  # nothing came after the end


def test_cancel_of_a_queued_job_means_it_never_runs(deployment: Deployment, tmp_path: Path) -> None:
    dep = deployment
    dep.start_web()
    dep.start_worker(2)
    tally = tmp_path / "tally.log"
    later = start(dep, "where", {"path": str(tally)}, start_in=3)
    assert result(dep, later)["status"] == "PENDING"
    assert dep.web is not None
    r = httpx.post(f"{dep.web.url}/api/testjobs/task/cancel/{later}", timeout=30)
    assert r.status_code == 200, r.text
    assert ended(dep, later, timeout=10)["status"] == "CANCELLED"
    time.sleep(4)  # past its start time: it must not have run
    assert not tally.exists()


def test_priority_max_concurrency_and_cron_across_workers(
    deployment: Deployment, tmp_path: Path
) -> None:
    dep = deployment
    dep.env["SPYGLASS_JOB_MODULES"] = "tests.jobs,tests.cron_jobs"
    dep.start_web()
    dep.start_worker(4)
    dep.start_worker(4)

    # One at a time (max_concurrency=1): a high priority run queued behind 50 low ones
    # starts next.
    order = tmp_path / "order.log"
    first = start(dep, "serial", {"path": str(order), "delay": 60})
    wait_for(lambda: order.exists(), 30, "the first serial run")
    low = [start(dep, "serial", {"path": str(order), "delay": 0.0}) for _ in range(50)]
    high = start(dep, "serial", {"path": str(order), "delay": 0.0}, priority=10)
    assert dep.web is not None
    httpx.post(f"{dep.web.url}/api/testjobs/task/cancel/{first}", timeout=30)  # the rest may go
    ended(dep, low[-1], timeout=120)
    ran = order.read_text().split()
    assert ran[0] == first
    assert ran[1] == high, "the high-priority run starts before the 50 queued low ones"
    assert sorted(ran) == sorted([first, high, *low])

    # max_concurrency=2 holds across both workers.
    spans = tmp_path / "spans.log"
    ids = [start(dep, "pair", {"path": str(spans), "delay": 0.3}) for _ in range(12)]
    for task_id in ids:
        assert ended(dep, task_id, timeout=60)["status"] == "COMPLETED"
    running, most = 0, 0
    events = sorted(
        (float(t), kind) for kind, t, _ in (line.split() for line in spans.read_text().splitlines())
    )
    for _, kind in events:
        running += 1 if kind == "start" else -1
        most = max(most, running)
    assert most == 2, f"at most two at once, and two did run together ({most})"

    # The cron job (every 2 s) fires on the workers, once per tick however many there are:
    # each run is due at its own tick (its scheduled_at), none twice.
    cron = Path(dep.env["SPYGLASS_TEST_CRON_FILE"])
    wait_for(lambda: cron.exists() and len(cron.read_text().splitlines()) >= 2, 20, "2 ticks")
    admin = bearer(make_account(dep.web, admin=True, prefix="cronadmin"))
    runs = httpx.get(
        f"{dep.web.url}/api/tasks",
        params={"state_name": "cronjobs", "limit": 100},
        headers=admin,
        timeout=10,
    ).json()["tasks"]
    ticks = [r["scheduled_at"] for r in runs]
    assert len(ticks) >= 2 and None not in ticks, runs
    assert len(set(ticks)) == len(ticks), f"a tick ran twice: {sorted(ticks)}"
    assert all(datetime.fromisoformat(t).second % 2 == 0 for t in ticks), ticks


def test_sigterm_of_the_web_process_leaves_jobs_on_workers_alone(
    deployment: Deployment,
) -> None:
    dep = deployment
    web = dep.start_web()
    dep.start_worker(2)
    task_id = start(dep, "steps", {"steps": 30, "delay": 0.1})
    wait_for(lambda: result(dep, task_id)["progress"] > 0, 30, "the job to run")
    web.stop()
    dep.start_web()
    end = ended(dep, task_id, timeout=30)
    assert end["status"] == "COMPLETED"
    assert end["result"] == {"steps": 30}


@pytest.mark.browser
def test_the_browser_journey_against_the_worker_deployment(
    deployment: Deployment,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    """New task → live progress on /tasks → results, with the jobs run by a worker."""
    dep = deployment
    # A full server builds its pages for its port: in a folder of its own.
    dep.web = SpyGlassServer(
        dep.data,
        full=True,
        env=dep.env,
        job_modules=dep.env["SPYGLASS_JOB_MODULES"],
        root=separate_checkout(tmp_path / "checkout"),
    ).start(timeout=900)
    worker = dep.start_worker(2)
    user = make_account(dep.web, prefix="workerjourney")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, dep.web, user.email, user.password)
        expect(page.get_by_test_id("signed-in-as")).to_have_text(user.email, timeout=30_000)
        test_journey.test_the_whole_journey_cleans_the_uploaded_file(page, dep.web, user)
    finally:
        context.close()
    ran = (dep.data / "worker-0.log").read_text(errors="replace")
    assert "Starting job spyglass.run_task" in ran, "the tool ran on the worker"
    assert worker.poll() is None

    # The admin sees the worker (its process, heartbeat, what it runs) and what waits.
    admin = make_account(dep.web, admin=True, prefix="workeradmin")
    running = start(dep, "steps", {"steps": 600, "delay": 0.05})
    later = start(dep, "steps", {"steps": 1, "delay": 0.01}, start_in=600)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, dep.web, admin.email, admin.password)
        expect(page.get_by_test_id("signed-in-as")).to_have_text(admin.email, timeout=30_000)
        page.goto(f"{dep.web.url}/admins/tasks/")
        row = page.locator(f"[data-testid=worker-row][data-pid='{worker.pid}']")
        expect(row).to_have_count(1, timeout=30_000)
        expect(row.get_by_test_id("worker-running")).to_contain_text(running[:8], timeout=30_000)
        beat = row.get_by_test_id("worker-heartbeat").inner_text()
        assert beat.endswith("UTC"), beat
        expect(row.get_by_test_id("worker-heartbeat")).not_to_have_text(beat, timeout=30_000)
        waiting = page.locator("[data-testid=queue-row]", has_text="steps")
        expect(waiting.get_by_test_id("queue-pending")).to_have_text("1", timeout=30_000)
        # The run scheduled for later says when it starts, on its own page too.
        page.goto(f"{dep.web.url}/tasks/{later}")
        expect(page.get_by_test_id("task-scheduled")).to_contain_text("Starts at", timeout=30_000)
    finally:
        context.close()
    assert result(dep, running)["status"] == "PROCESSING"


def _job_children(worker: subprocess.Popen[bytes]) -> set[int]:
    """The job child processes of a worker (children of its fork server)."""
    procs = psutil.Process(worker.pid).children(recursive=True)
    servers = {p.pid for p in procs if "forkserver" in " ".join(p.cmdline())}
    return {p.pid for p in procs if p.ppid() in servers and not _gone(p.pid)}


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
