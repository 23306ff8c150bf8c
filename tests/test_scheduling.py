"""Scheduling in the inline executor: priority under `max_concurrency`, start_in/start_at,
cron with croniter; and the start paths' schedule parameters over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from spyglass.config import Settings
from spyglass.tasks import TaskContext, TaskStatus, monitored_background_task
from spyglass.tasks.engine import Engine
from spyglass.tasks.registry import JobOptions, Registry
from spyglass.tasks.scheduling import PriorityGate, Schedule
from tests.conftest import wait_terminal
from tests.test_engine import spec_of


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    settings = Settings(
        data_dir=tmp_path, db_url=f"sqlite:///{tmp_path / 'unit.db'}", port=0, secret_key="unit"
    )
    eng = Engine(settings, Registry())
    await eng.start()
    yield eng
    await eng.stop()


async def test_a_high_priority_run_starts_before_fifty_queued_low_ones(engine: Engine) -> None:
    order: list[str] = []
    release = asyncio.Event()

    @monitored_background_task(max_concurrency=1)
    async def one_at_a_time(task: TaskContext) -> None:
        order.append(task.task_id)
        if len(order) == 1:
            await release.wait()

    spec = spec_of(staticmethod(one_at_a_time))
    first = await engine.start_job(spec, None, origin="direct")
    while not order:
        await asyncio.sleep(0.01)
    low = [await engine.start_job(spec, None, origin="direct") for _ in range(50)]
    high = await engine.start_job(spec, None, origin="direct", schedule=Schedule.of(priority=5))
    release.set()
    for task in low:
        await engine.wait(task.id)
    assert order[0] == first.id
    assert order[1] == high.id
    assert order[2:] == [task.id for task in low], "equal priorities keep their order"


async def test_start_in_waits_pending_with_its_time_then_runs(engine: Engine) -> None:
    ran_at: list[float] = []

    @monitored_background_task
    async def later(task: TaskContext) -> None:
        ran_at.append(time.monotonic())

    spec = spec_of(staticmethod(later))
    asked = time.monotonic()
    task = await engine.start_job(spec, None, origin="direct", schedule=Schedule.of(start_in=0.6))
    assert task.status is TaskStatus.PENDING and task.scheduled_at is not None
    stored = await engine.get(task.id)
    assert stored is not None and stored.scheduled_at == task.scheduled_at
    await engine.wait(task.id)
    assert ran_at and ran_at[0] - asked >= 0.55
    # Cancelled while it waits: it never runs.
    task = await engine.start_job(spec, None, origin="direct", schedule=Schedule.of(start_in=30))
    assert await engine.cancel_and_wait(task.id)
    ended = await engine.get(task.id)
    assert ended is not None and ended.status is TaskStatus.CANCELLED
    assert len(ran_at) == 1


async def test_a_cron_job_fires_on_its_ticks(tmp_path: Path) -> None:
    fired: list[float] = []

    @monitored_background_task(cron="* * * * * */1")
    async def every_second(task: TaskContext) -> None:
        fired.append(time.time())

    jobs = Registry()
    jobs.register(spec_of(staticmethod(every_second)))
    settings = Settings(
        data_dir=tmp_path, db_url=f"sqlite:///{tmp_path / 'cron.db'}", port=0, secret_key="unit"
    )
    engine = Engine(settings, jobs)
    await engine.start()
    try:
        async with asyncio.timeout(10):
            while len(fired) < 2:
                await asyncio.sleep(0.05)
    finally:
        await engine.stop()
    assert fired[1] - fired[0] > 0.5


def test_bad_schedules_and_options_are_refused_plainly() -> None:
    for kwargs in (
        {"queue": "no spaces"},
        {"priority": 2**63},
        {"start_in": -1},
        {"start_in": 1, "start_at": None, "queue": "x" * 65},
    ):
        with pytest.raises(Exception) as caught:
            Schedule.of(**kwargs)  # type: ignore[arg-type]
        assert getattr(caught.value, "code", "") == "INVALID_SCHEDULE"
    with pytest.raises(ValueError, match="cron"):
        JobOptions(cron="every tuesday")
    with pytest.raises(ValueError, match="queue"):
        JobOptions(queue="a b")


async def test_priority_gate_lets_a_cancelled_waiter_go_without_a_trace() -> None:
    gate = PriorityGate(1)
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire(3))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)  # the slot was not lost to the cancelled one
    assert gate.held == 1


async def test_start_paths_take_a_schedule(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/testjobs/task/start/steps",
        json={"steps": 1, "delay": 0},
        params={"start_in": 0.5, "priority": 3, "queue": "reports"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "PENDING" and body["scheduled_at"]
    end = await wait_terminal(client, "testjobs", body["task_id"])
    assert end["status"] == "COMPLETED"
    refused: list[dict[str, Any]] = [
        {"priority": 2**63},
        {"priority": 2**31},
        {"start_in": -5},
        {"start_in": 10**16},
        {"start_in": "nan"},
        {"queue": "a b"},
        {"queue": ""},
        {"start_at": "0.5"},  # a number is no time (pydantic would read it as 1970)
        {"start_at": "2026-12-01T09:00:00"},  # no time zone
        {"start_at": "2026-02-30T09:00:00Z"},  # no such day
        {"start_at": "9999-12-31T23:59:59Z"},
    ]
    for params in refused:
        r = await client.post("/api/testjobs/task/start/steps", json=None, params=params)
        assert r.status_code == 422, (params, r.text)
        body = r.json()
        assert body["error_code"] == "VALIDATION_ERROR", r.text
        assert body["detail"][0]["loc"] == ["query", next(iter(params))], r.text
    # start_at and start_in together: the later of the two.
    soon = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    r = await client.post(
        "/api/testjobs/task/start/steps",
        json={"steps": 1, "delay": 0},
        params={"start_at": soon, "start_in": 120},
    )
    assert r.status_code == 200, r.text
    later = datetime.fromisoformat(r.json()["scheduled_at"]) - datetime.now(UTC)
    assert timedelta(seconds=100) < later <= timedelta(seconds=120), later
    r = await client.post(f"/api/testjobs/task/cancel/{r.json()['task_id']}")
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
