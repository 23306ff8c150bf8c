"""Cancellation, time limits, concurrency limits, retries and restart safety, end to end."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.conftest import start_job, wait_terminal, ws_base
from tests.harness import SpyGlassServer
from tests.test_sockets import collect, url_for


async def wait_progress(client: httpx.AsyncClient, state: str, task_id: str) -> dict[str, Any]:
    """Read the socket until the job has reported progress at least once."""
    async with asyncio.timeout(15), websockets.connect(url_for(client, state, task_id)) as ws:
        async for raw in ws:
            msg = json.loads(raw)
            if msg["progress"] > 0:
                return msg
    raise AssertionError("no progress")


async def test_cancel_really_stops_the_job(client: httpx.AsyncClient, tmp_path: Path) -> None:
    marker = tmp_path / "steps.txt"
    started = await start_job(
        client, "testjobs", "steps", {"steps": 400, "delay": 0.02, "marker": str(marker)}
    )
    task_id = started["task_id"]
    watcher = asyncio.create_task(collect(url_for(client, "testjobs", task_id)))
    await wait_progress(client, "testjobs", task_id)

    r = await client.post(f"/api/testjobs/task/cancel/{task_id}")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"
    lines_at_cancel = len(marker.read_text().splitlines())
    await asyncio.sleep(0.5)
    assert len(marker.read_text().splitlines()) == lines_at_cancel, "the job body kept running"
    assert lines_at_cancel < 400

    messages, code = await watcher
    assert code == 1000
    assert messages[-1]["status"] == "CANCELLED"
    final = await client.get(f"/api/testjobs/task/result/{task_id}")
    assert final.json()["status"] == "CANCELLED"
    progress_at_end = final.json()["progress"]
    assert progress_at_end < 100

    again = await client.post(f"/api/testjobs/task/cancel/{task_id}")
    assert again.status_code == 400
    assert again.json() == {
        "detail": "Cannot cancel task with status: CANCELLED",
        "error_code": "TASK_NOT_CANCELLABLE",
    }


async def test_cancel_unknown_task_is_404(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/testjobs/task/cancel/00000000-0000-4000-8000-000000000000")
    assert r.status_code == 404


async def test_timeout_warns_at_80_percent_then_fails(client: httpx.AsyncClient) -> None:
    t0 = time.monotonic()
    started = await start_job(client, "testjobs", "slow")
    messages, code = await collect(url_for(client, "testjobs", started["task_id"]))
    elapsed = time.monotonic() - t0
    assert code == 1000
    warnings = [
        m for m in messages if m["type"] == "event" and m["event"]["event_type"] == "warning"
    ]
    assert warnings and "80%" in warnings[0]["event"]["message"]
    final = messages[-1]
    assert final["status"] == "FAILED"
    assert final["error_code"] == "TIMEOUT"
    assert final["error_message"] == "Timed out after 1 s"
    assert 0.9 < elapsed < 4, elapsed
    warn_index = messages.index(warnings[0])
    assert warn_index < len(messages) - 1


async def test_concurrency_limit_queues_extra_starts(client: httpx.AsyncClient) -> None:
    """Five starts of a job limited to two: two run, three wait PENDING for a slot.

    Measured on the server's own times (each status message's `timestamp`, the moment of
    that change): a task ends (its COMPLETED time) before its slot passes to the next, whose
    PROCESSING time comes after. When the messages arrive here says nothing of that: the
    five sockets are five connections, and one task's COMPLETED and the next one's
    PROCESSING, sent a moment apart, may be read in either order (on a loaded machine the
    old receive-time check could see three running)."""
    # 2 s a run: the five starts are recorded before the first run ends even on a loaded
    # machine (the check below needs the three extra ones to be queued while two run).
    body = {"steps": 20, "delay": 0.1}

    async def run(index: int) -> tuple[datetime, list[tuple[datetime, str]]]:
        started = await start_job(client, "testjobs", "limited", body)
        assert started["status"] == "PENDING"
        seen: list[tuple[datetime, str]] = []
        async with websockets.connect(url_for(client, "testjobs", started["task_id"])) as ws:
            async for raw in ws:
                msg = json.loads(raw)
                if not seen or seen[-1][1] != msg["status"]:
                    seen.append((datetime.fromisoformat(msg["timestamp"]), msg["status"]))
        return datetime.fromisoformat(started["timestamp"]), seen

    runs = await asyncio.gather(*(run(i) for i in range(5)))  # started together
    order = ["PENDING", "PROCESSING", "COMPLETED"]
    intervals = []
    for _, tl in runs:
        statuses = [s for _, s in tl]
        assert statuses[-1] == "COMPLETED", statuses
        assert statuses == sorted(statuses, key=order.index), statuses
        # A socket opened after the start sees it in its first message (a later time, so
        # the interval can only be shorter than the run: never more overlap than there was).
        (start,) = [t for t, s in tl if s == "PROCESSING"]
        (end,) = [t for t, s in tl if s == "COMPLETED"]
        intervals.append((start, end))
    # Never more than two PROCESSING at the same moment (an end sorts before a start at the
    # same time: the slot was free).
    points = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    running = peak = 0
    for _, delta in points:
        running += delta
        peak = max(peak, running)
    assert peak == 2, intervals
    # Three were started before any run ended, yet began only once one had: they waited.
    first_end = min(end for _, end in intervals)
    waited = [
        start
        for (queued, _), (start, _) in zip(runs, intervals, strict=True)
        if queued < first_end <= start
    ]
    assert len(waited) >= 3, (runs, intervals)


async def test_retries_then_success(client: httpx.AsyncClient) -> None:
    started = await start_job(client, "testjobs", "flaky", {"fail_times": 2})
    messages, _ = await collect(url_for(client, "testjobs", started["task_id"]))
    retry_warnings = [
        m["event"]["message"]
        for m in messages
        if m["type"] == "event" and m["event"]["event_type"] == "warning"
    ]
    assert len(retry_warnings) == 2
    assert "Attempt 1 of 3 failed (attempt 1 fails)" in retry_warnings[0]
    assert messages[-1]["status"] == "COMPLETED"
    assert messages[-1]["result"] == {"attempt": 3}


async def test_retries_exhausted_fail(client: httpx.AsyncClient) -> None:
    started = await start_job(client, "testjobs", "flaky", {"fail_times": 9})
    done = await wait_terminal(client, "testjobs", started["task_id"])
    assert done["status"] == "FAILED"
    assert done["error_message"] == "attempt 3 fails"


async def test_killed_server_leaves_no_task_processing(new_server: Any, tmp_path: Path) -> None:
    first: SpyGlassServer = new_server(tmp_path / "data")
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as c:
        running = await start_job(c, "testjobs", "steps", {"steps": 1000, "delay": 0.05})
        queued = [await start_job(c, "testjobs", "limited", {"steps": 1000}) for _ in range(3)]
        await wait_progress(c, "testjobs", running["task_id"])
    first.kill()

    second: SpyGlassServer = new_server(tmp_path / "data")
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as c:
        for task in [running, *queued]:
            r = await c.get(f"/api/testjobs/task/result/{task['task_id']}")
            body = r.json()
            assert body["status"] == "FAILED", body
            assert body["error_code"] == "INTERRUPTED"
            assert "retry" in body["error_message"]
        messages, code = await collect(f"{ws_base(c)}/ws/testjobs/task/ws/{running['task_id']}")
        assert code == 1000
        assert messages == [messages[0]] and messages[0]["error_code"] == "INTERRUPTED"
        fresh = await start_job(c, "testjobs", "steps", {"steps": 2, "delay": 0.01})
        assert (await wait_terminal(c, "testjobs", fresh["task_id"]))["status"] == "COMPLETED"


async def test_graceful_stop_ends_running_tasks_interrupted(
    new_server: Any, tmp_path: Path
) -> None:
    """A job longer than the grace period is interrupted; one within it completes."""
    first: SpyGlassServer = new_server(tmp_path / "data", env={"SPYGLASS_SHUTDOWN_GRACE": "3"})
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as c:
        running = await start_job(c, "testjobs", "steps", {"steps": 1000, "delay": 0.05})
        short = await start_job(c, "testjobs", "steps", {"steps": 20, "delay": 0.05})
        await wait_progress(c, "testjobs", running["task_id"])
    stopping = time.monotonic()
    first.stop()
    assert time.monotonic() - stopping < 15
    second: SpyGlassServer = new_server(tmp_path / "data")
    async with httpx.AsyncClient(base_url=second.url, timeout=30) as c:
        body = (await c.get(f"/api/testjobs/task/result/{running['task_id']}")).json()
        assert body["status"] == "FAILED"
        assert body["error_code"] == "INTERRUPTED"
        done = (await c.get(f"/api/testjobs/task/result/{short['task_id']}")).json()
        assert done["status"] == "COMPLETED", done
