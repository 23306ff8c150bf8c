"""Several workers on real Redis and PostgreSQL: one consistent view, wherever a task runs.

Each worker here is a whole SpyGlass server process (its own port, so a test can aim at
it, and kill it); they share a PostgreSQL database, a Redis and a data folder, exactly
as Granian's workers behind one port do (the last test runs those).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import websockets

from tests.accounts import PASSWORD, Account
from tests.harness import ROOT, SpyGlassServer, separate_checkout
from tests.services import new_database, postgres_server, redis_server
from tests.streams import (
    check_fast_and_slow,
    flood_body,
    read_fast_and_slow,
    read_until_progress,
)

#: Short leases so that a dead worker is noticed within seconds.
LEASE_TTL = 3.0
LEASE_RENEW = 0.5
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


@pytest.fixture(scope="module")
def infra() -> Iterator[tuple[str, str]]:
    with redis_server() as redis_url, postgres_server() as pg_url:
        yield redis_url, pg_url


Cluster = Callable[..., list[SpyGlassServer]]


@pytest.fixture
def cluster(infra: tuple[str, str], tmp_path: Path) -> Iterator[Cluster]:
    """`cluster(n)` starts n more workers on this test's own database and Redis channels."""
    redis_url, pg_url = infra
    env = {
        "REDIS_URL": redis_url,
        "SPYGLASS_REDIS_PREFIX": f"t{uuid.uuid4().hex[:8]}",
        "SPYGLASS_DB_URL": new_database(pg_url),
        "SPYGLASS_LEASE_TTL": str(LEASE_TTL),
        "SPYGLASS_LEASE_RENEW": str(LEASE_RENEW),
        "GRANIAN_WORKERS": "1",
    }
    started: list[SpyGlassServer] = []

    def start(n: int = 1, *, full: bool = False, **extra: str) -> list[SpyGlassServer]:
        # A full server builds pages for its port: in a folder of its own, not the shared one.
        root = separate_checkout(tmp_path / "checkout") if full else ROOT
        servers = [
            SpyGlassServer(tmp_path / "data", full=full, env={**env, **extra}, root=root).start()
            for _ in range(n)
        ]
        started.extend(servers)
        return servers

    yield start
    for server in started:
        server.stop()


def account_on(server: SpyGlassServer) -> Account:
    """A user and client token in the workers' PostgreSQL database (as an operator would)."""
    from spyglass.auth.service import AuthService
    from spyglass.tasks.store import make_engine

    email = f"worker-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=server.url, timeout=30) as c:
        engine = make_engine(server.extra_env["SPYGLASS_DB_URL"])
        try:

            async def make() -> Account:
                auth = AuthService(engine)
                user = await auth.register(email, PASSWORD)
                raw, token = await auth.issue_token(user.id, "cluster", created_by=user.id)
                return Account(user.id, email, PASSWORD, raw, token.id)

            account = asyncio.run(make())
        finally:
            engine.dispose()
        assert c.get("/api/me", headers=bearer(account)).status_code == 200
    return account


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


async def follow(url: str, timeout: float = 60) -> tuple[list[dict[str, Any]], int | None]:
    """Every message of a task socket until it closes, and the close code."""
    seen = []
    async with asyncio.timeout(timeout), websockets.connect(url) as ws:
        async for raw in ws:
            seen.append(json.loads(raw))
        return seen, ws.close_code


def start(
    server: SpyGlassServer, job: str, body: Any = None, account: Account | None = None
) -> str:
    path = (
        f"/api/testjobs/tasks/{account.token}/start/{job}"
        if account
        else f"/api/testjobs/task/start/{job}"
    )
    r = httpx.post(server.url + path, json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


def result(server: SpyGlassServer, task_id: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/api/testjobs/task/result/{task_id}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_task_started_on_one_worker_streams_to_another(cluster: Cluster) -> None:
    a, b = cluster(2)
    task_id = start(a, "steps", {"steps": 40, "delay": 0.05})
    messages, code = asyncio.run(follow(f"{b.ws_url}/ws/testjobs/task/ws/{task_id}"))
    assert code == 1000
    assert messages[0]["type"] == "snapshot"
    assert messages[-1]["status"] == "COMPLETED" and messages[-1]["result"] == {"steps": 40}
    progress = [m["progress"] for m in messages if m["type"] != "event"]
    assert progress == sorted(progress) and len(progress) > 5  # live, in order
    assert result(b, task_id)["status"] == "COMPLETED"
    health = httpx.get(f"{b.url}/api/health", timeout=10).json()
    assert health["bus"]["redis"] == "connected" and health["database"]["dialect"] == "postgresql"


def test_a_slow_reader_on_another_worker_is_told_every_status_line_and_the_end(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The slow-reader guarantee through Redis: a task of large updates runs on one worker,
    its two readers are on another. The one that keeps up gets every update; the one that
    reads nothing until the end gets every status change, timeline line and the end, in
    order, older progress left out for newer (the Redis reader never waits on a socket)."""
    a, b = cluster(2)
    go = tmp_path / "go"
    task_id = start(a, "flood", flood_body(go))
    url = f"{b.ws_url}/ws/testjobs/task/ws/{task_id}"
    host, port = urlsplit(b.url).hostname, urlsplit(b.url).port
    assert host is not None and port is not None
    check_fast_and_slow(*asyncio.run(read_fast_and_slow(url, host, port, go)))
    assert result(a, task_id)["status"] == "COMPLETED"


def test_another_worker_reads_a_run_as_it_was_told_from_its_first_moment(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A task begins on one worker and waits (PROCESSING, no progress yet). Sockets opened
    on another worker one after the other from the start on, the first ones within
    moments of it, are each told the task runs, either by their snapshot or by the change
    itself (none reads a snapshot older than a change it subscribed too late for); the
    timeline read there has its Queued and Processing lines."""
    a, b = cluster(2)
    user = account_on(a)
    go = tmp_path / "go"
    task_id = start(a, "flood", flood_body(go), account=user)
    url = f"{b.ws_url}/ws/testjobs/tasks/{user.token}/{task_id}"

    async def told_it_runs() -> list[str]:
        statuses = []
        async with websockets.connect(url) as ws, asyncio.timeout(5):
            while not statuses or statuses[-1] != "PROCESSING":
                statuses.append(json.loads(await ws.recv())["status"])
        return statuses

    async def sockets() -> list[list[str]]:
        return [await told_it_runs() for _ in range(10)]

    try:
        for statuses in asyncio.run(sockets()):
            assert set(statuses) <= {"PENDING", "PROCESSING"}
        r = httpx.get(f"{b.url}/api/tasks/{task_id}/events", headers=bearer(user), timeout=10)
        assert r.status_code == 200, r.text
        lines = [(e["seq"], e["message"]) for e in r.json()["events"]]
        assert lines[:2] == [(1, "Queued"), (2, "Processing")]
    finally:
        go.touch()  # the job may end
    deadline = time.monotonic() + 60
    while httpx.get(f"{b.url}/api/tasks/{task_id}", headers=bearer(user)).json()["status"] != (
        "COMPLETED"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_reader_on_another_worker_is_told_progress_not_yet_written(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Progress reaches other workers at once but the database only at the next coalesced
    write (here 60 s away, so that it cannot come during the test). Sockets opened on
    another worker after the job reported read a snapshot older than its progress from
    the database; the worker running the job then tells each of them its current state,
    instead of leaving them on the old progress until the job reports again. A socket
    that was already told is not told twice."""
    a, b = cluster(2, SPYGLASS_PROGRESS_FLUSH="60")
    user = account_on(a)
    ready, go = tmp_path / "ready", tmp_path / "go"
    body = {"go": str(go), "ready": str(ready), "progress": 40}
    task_id = start(a, "hold", body, account=user)
    one = f"{b.ws_url}/ws/testjobs/tasks/{user.token}/{task_id}"

    def stored_progress() -> float:
        r = httpx.get(f"{b.url}/api/tasks/{task_id}", headers=bearer(user), timeout=10)
        assert r.status_code == 200, r.text
        return float(r.json()["progress"])

    async def run() -> tuple[list[dict[str, Any]], ...]:
        async with websockets.connect(one) as early:
            first = json.loads(await early.recv())  # its snapshot: the job has not reported
            assert first["type"] == "snapshot" and first["progress"] == 0, first
            ready.touch()
            told_early = [first, *await read_until_progress(early, 40)]
            assert await asyncio.to_thread(stored_progress) == 0  # not in the database yet
            async with (
                websockets.connect(one) as late,
                websockets.connect(f"{b.ws_url}/ws/testjobs/tasks/{user.token}") as every,
            ):
                told_late = await read_until_progress(late, 40)
                told_every = await read_until_progress(every, 40)
            assert await asyncio.to_thread(stored_progress) == 0  # still not: told by worker a
            go.touch()
            async with asyncio.timeout(30):
                rest = [json.loads(raw) async for raw in early]
        return told_early + rest, told_late, told_every

    told_early, told_late, told_every = asyncio.run(run())
    for told in (told_late, told_every):
        assert told[0]["type"] == "snapshot" and told[0]["progress"] == 0, told[0]
        assert told[-1]["type"] == "update" and told[-1]["message"] == "half way", told[-1]
        assert told[-1]["task_id"] == task_id and told[-1]["status"] == "PROCESSING"
    # The socket that followed the job was told each state once: the answer to its own
    # question is skipped if the change itself came first; the answers to the others'
    # are theirs alone. Then its end.
    told = [(m["type"], m["status"], m["progress"]) for m in told_early]
    assert told.count(("update", "PROCESSING", 0)) <= 1, told
    assert told.count(("update", "PROCESSING", 40)) == 1, told
    assert told[-1] == ("update", "COMPLETED", 100), told


def test_a_token_socket_on_one_worker_sees_tasks_started_on_another(cluster: Cluster) -> None:
    a, b = cluster(2)
    user = account_on(a)

    async def run() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        async with websockets.connect(f"{b.ws_url}/ws/testjobs/tasks/{user.token}") as ws:
            task_id = await asyncio.to_thread(start, a, "steps", {"steps": 5, "delay": 0.05}, user)
            async with asyncio.timeout(30):
                async for raw in ws:
                    msg = json.loads(raw)
                    seen.append(msg)
                    if msg["task_id"] == task_id and msg["status"] == "COMPLETED":
                        return seen
        return seen

    seen = asyncio.run(run())
    assert seen[-1]["status"] == "COMPLETED"
    assert {m["status"] for m in seen} >= {"PROCESSING", "COMPLETED"}


def test_a_cancel_sent_to_any_worker_stops_the_job(cluster: Cluster, tmp_path: Path) -> None:
    a, b = cluster(2)
    user = account_on(a)
    marker = tmp_path / "steps.log"
    task_id = start(a, "steps", {"steps": 2000, "delay": 0.02, "marker": str(marker)}, user)
    deadline = time.monotonic() + 10
    while not marker.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = httpx.post(f"{b.url}/api/tasks/{task_id}/cancel", headers=bearer(user), timeout=15)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"
    lines = len(marker.read_text().splitlines())
    time.sleep(0.5)
    assert len(marker.read_text().splitlines()) == lines  # the body on worker A stopped
    mine = httpx.get(f"{a.url}/api/tasks/{task_id}", headers=bearer(user), timeout=10).json()
    assert mine["status"] == "CANCELLED"
    # A direct task, cancelled through the other worker's token-free endpoint.
    direct = start(b, "steps", {"steps": 2000, "delay": 0.02})
    time.sleep(0.3)
    r = httpx.post(f"{a.url}/api/testjobs/task/cancel/{direct}", timeout=15)
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text


def test_a_killed_worker_is_found_and_its_tasks_ended_or_rerun(cluster: Cluster) -> None:
    a, b = cluster(2)
    plain = start(a, "steps", {"steps": 2000, "delay": 0.05})
    rerun = start(a, "durable", {"steps": 30, "delay": 0.1})
    for task_id in (plain, rerun):
        deadline = time.monotonic() + 10
        while result(b, task_id)["status"] != "PROCESSING":
            assert time.monotonic() < deadline
            time.sleep(0.05)

    async def watch() -> tuple[list[dict[str, Any]], float]:
        url = f"{b.ws_url}/ws/testjobs/task/ws/{plain}"
        async with websockets.connect(url) as ws:
            assert json.loads(await ws.recv())["status"] == "PROCESSING"
            killed = time.monotonic()
            await asyncio.to_thread(a.kill)
            seen = [json.loads(raw) async for raw in ws]
            return seen, time.monotonic() - killed

    seen, elapsed = asyncio.run(watch())
    assert seen[-1]["status"] == "FAILED" and seen[-1]["error_code"] == "INTERRUPTED"
    assert elapsed < LEASE_TTL + 3 * LEASE_RENEW + 2, elapsed  # found within the lease
    # The job that allows a retry ran again on the surviving worker, to completion.
    messages, _ = asyncio.run(follow(f"{b.ws_url}/ws/testjobs/task/ws/{rerun}"))
    assert messages[-1]["status"] == "COMPLETED"
    assert messages[-1]["result"] == {"steps": 30, "attempt": 2}


def test_500_tasks_on_3_workers_none_lost_or_duplicated(cluster: Cluster, tmp_path: Path) -> None:
    workers = cluster(3)
    user = account_on(workers[0])
    tally = tmp_path / "tally.log"

    async def submit_all() -> list[str]:
        async with httpx.AsyncClient(timeout=30) as c:

            async def one(i: int) -> str:
                w = workers[i % 3]
                r = await c.post(
                    f"{w.url}/api/testjobs/tasks/{user.token}/start/tally",
                    json={"path": str(tally), "delay": 0.05},
                )
                assert r.status_code == 200, r.text
                return r.json()["task_id"]

            ids: list[str] = []
            for chunk in range(0, 500, 50):
                ids += await asyncio.gather(*(one(i) for i in range(chunk, chunk + 50)))
            return ids

    ids = asyncio.run(submit_all())
    assert len(set(ids)) == 500
    h = bearer(user)
    deadline = time.monotonic() + 120
    while True:
        listed = httpx.get(
            f"{workers[1].url}/api/tasks",
            params={"status": "COMPLETED", "limit": 1},
            headers=h,
            timeout=10,
        ).json()
        if listed["pagination"]["total"] == 500:
            break
        assert time.monotonic() < deadline, listed["pagination"]
        time.sleep(0.5)
    runs = [line.split() for line in tally.read_text().splitlines()]
    assert sorted(task_id for task_id, _ in runs) == sorted(ids)  # each ran exactly once
    assert {attempt for _, attempt in runs} == {"1"}
    everything = httpx.get(f"{workers[2].url}/api/tasks", params={"limit": 1}, headers=h).json()
    assert everything["pagination"]["total"] == 500
    for task_id in ids[::50]:  # any worker answers for any task, with its whole timeline
        events = httpx.get(
            f"{workers[2].url}/api/tasks/{task_id}/events", headers=h, timeout=10
        ).json()["events"]
        kinds = [e["event_type"] for e in events]
        assert kinds.count("success") == 1 and kinds[-1] == "success"


@pytest.mark.browser
def test_granian_workers_behind_one_port_give_one_view(cluster: Cluster, tmp_path: Path) -> None:
    """`make run` with REDIS_URL and GRANIAN_WORKERS=3: pages, API and sockets stay one app.
    Progress is written to the database only every 60 s here: the tasks page and a task's
    page, whichever worker serves them, show the progress of jobs running on the others
    as the jobs reported it, not as the database still has it."""
    from playwright.sync_api import expect, sync_playwright

    from tests.harness import CHROMIUM_ARGS
    from tests.test_tasks_page import sign_in

    (server,) = cluster(1, full=True, GRANIAN_WORKERS="3", SPYGLASS_PROGRESS_FLUSH="60")
    workers = set()
    for _ in range(30):  # a new connection each time: the workers share the port
        workers.add(httpx.get(f"{server.url}/api/health", timeout=10).json()["worker"])
    assert len(workers) >= 2, workers
    user = account_on(server)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        sign_in(page, server, user.email, user.password)
        expect(page.get_by_test_id("signed-in-as")).to_have_text(user.email, timeout=30_000)
        expect(page.get_by_test_id("tasks-empty")).to_be_visible(timeout=15_000)
        ids = [start(server, "steps", {"steps": 20, "delay": 0.05}, user) for _ in range(9)]
        for task_id in ids:
            row = page.locator(f"[data-testid=task-row][data-task-id='{task_id}']")
            expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=30_000)
        page.goto(f"{server.url}/developers")  # the example jobs' page starts one, then /tasks
        page.get_by_test_id("start-example_task-task1").click()
        expect(page).to_have_url(f"{server.url}/tasks", timeout=15_000)
        row = page.locator("[data-testid=task-row][data-task-name=task1]")
        expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=30_000)
        page.reload()  # the page state lives in Redis: any worker serves the tab
        expect(page.locator("[data-testid=task-row]")).to_have_count(10, timeout=30_000)
        # Six jobs that report 40 % once, then wait: spread over the three workers, most of
        # them run on another worker than the one serving the page.
        go = tmp_path / "go"
        held = [start(server, "hold", {"go": str(go), "progress": 40}, user) for _ in range(6)]
        for _ in range(2):  # and again, perhaps from another worker
            page.goto(f"{server.url}/tasks")
            for task_id in held:
                row = page.locator(f"[data-testid=task-row][data-task-id='{task_id}']")
                expect(row.get_by_test_id("task-progress")).to_have_text("40%", timeout=15_000)
        for task_id in held[:3]:
            page.goto(f"{server.url}/tasks/{task_id}")
            expect(page.get_by_test_id("task-progress")).to_have_text("40%", timeout=15_000)
        go.touch()
        page.goto(f"{server.url}/tasks")
        for task_id in held:
            row = page.locator(f"[data-testid=task-row][data-task-id='{task_id}']")
            expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=30_000)
        browser.close()
    # Whichever worker answers the scrape speaks for all of them.
    from tests.test_metrics import scrape, value

    for _ in range(5):
        samples = scrape(server.url)
        done = value(
            samples,
            "spyglass_tasks_finished_total",
            job="probe_jobs_state.steps",
            status="COMPLETED",
        )
        assert done == 9
        assert value(samples, "spyglass_tasks", status="COMPLETED") == 16
        assert value(samples, "spyglass_bus_lag_seconds_count") > 0


def test_a_redis_outage_loses_no_end(infra: tuple[str, str], tmp_path: Path) -> None:
    """Redis goes away while a task finishes: once it is back, the other worker's socket
    still gets the task's end (from the publisher's queue, or read anew from the database)."""
    from tests.harness import free_port

    _, pg_url = infra
    port = free_port()
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "SPYGLASS_DB_URL": new_database(pg_url),
        "GRANIAN_WORKERS": "1",
    }
    servers: list[SpyGlassServer] = []
    outage = redis_server(port)
    outage.__enter__()
    try:
        a, b = (SpyGlassServer(tmp_path / "data", env=env).start() for _ in range(2))
        servers += [a, b]
        task_id = start(a, "steps", {"steps": 30, "delay": 0.05})

        async def watch() -> list[dict[str, Any]]:
            url = f"{b.ws_url}/ws/testjobs/task/ws/{task_id}"
            async with websockets.connect(url) as ws:
                assert json.loads(await ws.recv())["type"] == "snapshot"
                await asyncio.to_thread(outage.__exit__, None, None, None)  # Redis stops
                await asyncio.sleep(3)  # the task ends meanwhile on worker A
                assert result(a, task_id)["status"] == "COMPLETED"
                with redis_server(port):  # and Redis comes back
                    async with asyncio.timeout(20):
                        return [json.loads(raw) async for raw in ws]

        seen = asyncio.run(watch())
        assert seen[-1]["status"] == "COMPLETED" and seen[-1]["result"] == {"steps": 30}
    finally:
        for server in servers:
            server.stop()


def test_a_stalled_worker_leaves_a_task_another_took_over(cluster: Cluster) -> None:
    """Worker A stalls longer than its lease; B takes the task over and runs it again; when A
    wakes it finds its lease gone and neither writes nor announces anything more of it."""
    a, b = cluster(2)
    user = account_on(a)

    async def watch() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        async with websockets.connect(f"{b.ws_url}/ws/testjobs/tasks/{user.token}") as ws:
            body = {"steps": 10, "delay": LEASE_TTL * 2}
            task_id = await asyncio.to_thread(start, a, "stall", body, user)
            # Until well after A wakes up and would have finished its own run.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LEASE_TTL * 4):
                    async for raw in ws:
                        message = json.loads(raw)
                        if message["task_id"] == task_id and message["type"] != "event":
                            seen.append(message)
        return seen

    seen = asyncio.run(watch())
    ends = [i for i, m in enumerate(seen) if m["status"] in TERMINAL]
    assert len(ends) == 1 and ends[0] == len(seen) - 1, [
        (m["status"], m.get("progress"), m.get("message"), m.get("timestamp")) for m in seen
    ]
    assert seen[-1]["status"] == "COMPLETED" and seen[-1]["result"] == {"attempt": 2}
    task_id = seen[-1]["task_id"]
    h = bearer(user)
    final = httpx.get(f"{a.url}/api/tasks/{task_id}", headers=h, timeout=10).json()
    assert final["status"] == "COMPLETED" and final["result"] == {"attempt": 2}
    events = httpx.get(f"{a.url}/api/tasks/{task_id}/events", headers=h, timeout=10).json()
    kinds = [e["event_type"] for e in events["events"]]
    assert kinds.count("success") == 1 and kinds[-1] == "success"
    assert httpx.get(f"{a.url}/api/health", timeout=10).json()["status"] == "ok"


def test_messages_queued_before_a_lease_was_lost_are_not_sent(
    infra: tuple[str, str],
) -> None:
    """What a stalled process queued for other processes before its lease lapsed is dropped
    (its fence says no), so nobody sees a task go back after another worker took it over;
    the process's own subscribers got it when it was published."""
    from spyglass.tasks.bus import TaskMessage, Topic
    from spyglass.tasks.redis_bus import RedisBus

    redis_url, _ = infra

    def message(version: int, fence: Callable[[], bool] | None) -> TaskMessage:
        payload = {"type": "update", "task_id": "t", "v": version}
        return TaskMessage("t", "s", None, None, version, False, False, payload, fence=fence)

    async def run() -> tuple[list[int], list[int]]:
        prefix = f"f{uuid.uuid4().hex[:8]}"
        sender, receiver = RedisBus(redis_url, prefix), RedisBus(redis_url, prefix)
        await sender.start()
        await receiver.start()
        try:
            local, remote = sender.subscribe(Topic(task_id="t")), receiver.subscribe(Topic())
            sender.publish(message(1, lambda: True))
            sender.publish(message(2, lambda: False))  # its lease lapsed meanwhile
            sender.publish(message(3, None))
            got: list[int] = []
            async with asyncio.timeout(10):
                while 3 not in got:
                    got.extend(m.payload["v"] for m in await remote.get_batch())
            here = [m.payload["v"] for m in await local.get_batch()]
            return got, here
        finally:
            await sender.close()
            await receiver.close()

    remote, local = asyncio.run(run())
    assert remote == [1, 3]
    assert local == [1, 2, 3]


def test_a_state_asked_of_another_process_is_told_only_to_who_asked(
    infra: tuple[str, str],
) -> None:
    """`request_current` through real Redis: the process running the task answers with a
    restatement, in order with the task's changes, and only the subscriber that asked is
    told it (a task's other subscribers, and those of every task, are not); a question
    about a task that runs nowhere gets no answer."""
    from spyglass.api.sockets import Told
    from spyglass.tasks.bus import TaskMessage, Topic
    from spyglass.tasks.redis_bus import RedisBus
    from spyglass.tasks.view import TaskView

    redis_url, _ = infra

    def message(version: int, restated: bool = False, droppable: bool = True) -> TaskMessage:
        payload = {"type": "update", "task_id": "t", "status": "PROCESSING", "v": version}
        payload["progress"] = version
        return TaskMessage(
            "t", "s", None, None, version, False, droppable, payload, attempt=1, restated=restated
        )

    async def run() -> dict[str, list[tuple[int, bool]]]:
        prefix = f"c{uuid.uuid4().hex[:8]}"
        runs, reads = RedisBus(redis_url, prefix), RedisBus(redis_url, prefix)
        last = [0]
        asked_about: list[str] = []

        def current(task_id: str) -> TaskMessage | None:
            asked_about.append(task_id)
            return message(last[0], True) if task_id == "t" else None

        runs.on_current(current)
        await runs.start()
        await reads.start()
        subs = {
            "asked": reads.subscribe(Topic(task_id="t")),
            "other": reads.subscribe(Topic(task_id="t")),
            "every": reads.subscribe(Topic()),
            "asked too": reads.subscribe(Topic()),
        }
        got: dict[str, list[tuple[int, bool]]] = {name: [] for name in subs}

        async def read_until(name: str, version: int, restated: bool = False) -> None:
            async with asyncio.timeout(10):
                while (version, restated) not in got[name]:
                    batch = await subs[name].get_batch()
                    got[name] += [(m.payload["v"], m.restated) for m in batch]

        try:
            last[0] = 1
            runs.publish(message(1))
            for name in subs:  # read before the answers come (an unread one is replaced)
                await read_until(name, 1)
            reads.request_current("t", subs["asked"])
            reads.request_current("gone", subs["asked"])
            reads.request_current("t", subs["asked too"])
            await read_until("asked", 1, restated=True)
            await read_until("asked too", 1, restated=True)
            last[0] = 2
            # Not droppable: an answer told to a reader that did not ask would not be
            # replaced by it before that reader reads.
            runs.publish(message(2, droppable=False))
            for name in subs:
                await read_until(name, 2)
        finally:
            await runs.close()
            await reads.close()
        assert sorted(asked_about) == ["gone", "t", "t"]
        return got

    got = asyncio.run(run())
    assert got["asked"] == [(1, False), (1, True), (2, False)]
    assert got["asked too"] == [(1, False), (1, True), (2, False)]
    assert got["other"] == got["every"] == [(1, False), (2, False)]
    # A socket skips a restatement of what it was told last (its snapshot, or the change
    # itself), not one that tells something new.
    row = {"id": "t", "state_name": "s", "task_name": "j", "status": "PROCESSING", "progress": 0}
    snapshot = TaskView.of(row)
    told, stale = Told([snapshot]), Told([snapshot])
    assert told.fresh(message(1)) and not told.fresh(message(1, True))
    assert told.fresh(message(1, True))  # the answer came: nothing left to skip
    assert stale.fresh(message(1, True))  # newer than its snapshot
    assert not Told([snapshot]).fresh(message(0, True))  # what its snapshot said
    assert Told([]).fresh(message(1, True))  # a task it did not read
