"""The direct progress socket with a real WebSocket client (DESIGN §6)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.conftest import TERMINAL, start_job, wait_terminal, ws_base
from tests.streams import check_fast_and_slow, flood_body, read_fast_and_slow


async def collect(url: str, timeout: float = 30) -> tuple[list[dict[str, Any]], int | None]:
    """Every message until the server closes the socket, and the close code."""
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout), websockets.connect(url) as ws:
        try:
            async for raw in ws:
                messages.append(json.loads(raw))
        except ConnectionClosed:
            pass
        await ws.wait_closed()
        return messages, ws.close_code


def url_for(client: httpx.AsyncClient, state: str, task_id: str) -> str:
    return f"{ws_base(client)}/ws/{state}/task/ws/{task_id}"


async def test_snapshot_then_ordered_updates_then_close_1000(client: httpx.AsyncClient) -> None:
    started = await start_job(client, "testjobs", "steps", {"steps": 8, "delay": 0.05})
    messages, code = await collect(url_for(client, "testjobs", started["task_id"]))
    assert code == 1000
    assert messages[0]["type"] == "snapshot"
    assert all(m["type"] in {"update", "event"} for m in messages[1:])
    updates = [m for m in messages if m["type"] != "event"]
    progress = [m["progress"] for m in updates]
    assert progress == sorted(progress), "progress never goes back"
    assert {12.5, 25.0, 50.0, 87.5} <= set(progress)
    assert messages[-1]["status"] == "COMPLETED"
    assert messages[-1]["result"] == {"steps": 8}
    # A change of status carries its timeline line, numbered in the task's order.
    end = messages[-1]["event"]
    assert (end["event_type"], end["data"]["status"]) == ("success", "COMPLETED")
    lines = [m["event"]["seq"] for m in messages if "event" in m]
    assert lines == sorted(lines) and lines[-1] == end["seq"]
    required = {
        "type",
        "task_id",
        "task_name",
        "status",
        "progress",
        "message",
        "result",
        "error_message",
        "timestamp",
    }
    assert all(required <= set(m) for m in messages)
    assert all(m["task_id"] == started["task_id"] for m in messages)


async def test_late_subscriber_mid_run_misses_nothing(client: httpx.AsyncClient) -> None:
    started = await start_job(client, "testjobs", "steps", {"steps": 20, "delay": 0.05})
    await asyncio.sleep(0.4)
    messages, code = await collect(url_for(client, "testjobs", started["task_id"]))
    assert code == 1000
    snapshot = messages[0]
    assert snapshot["type"] == "snapshot"
    assert snapshot["status"] == "PROCESSING"
    assert 0 < snapshot["progress"] < 100
    later = [m["progress"] for m in messages[1:] if m["type"] == "update"]
    assert later and min(later) >= snapshot["progress"]
    steps = sorted({m["progress"] for m in messages if m["type"] != "event"})
    assert steps[-1] == 100
    # Every step after the snapshot arrived: no gap in the 5 % ladder.
    ladder = [p for p in steps if p > snapshot["progress"]]
    assert ladder == [p * 5.0 for p in range(int(snapshot["progress"] / 5) + 1, 21)]


async def test_subscriber_after_the_end_gets_the_final_snapshot(client: httpx.AsyncClient) -> None:
    started = await start_job(client, "testjobs", "steps", {"steps": 2, "delay": 0.01})
    await wait_terminal(client, "testjobs", started["task_id"])
    messages, code = await collect(url_for(client, "testjobs", started["task_id"]))
    assert code == 1000
    assert [m["type"] for m in messages] == ["snapshot"]
    assert messages[0]["status"] == "COMPLETED"
    assert messages[0]["result"] == {"steps": 2}


@pytest.mark.parametrize("state", ["example_task2", "testjobs"])
async def test_unknown_task_gets_error_and_1008(client: httpx.AsyncClient, state: str) -> None:
    messages, code = await collect(url_for(client, state, str(uuid.uuid4())))
    assert code == 1008
    assert messages == [
        {"type": "error", "detail": "Task not found", "error_code": "TASK_NOT_FOUND"}
    ]


async def test_task_of_another_state_is_unknown(client: httpx.AsyncClient) -> None:
    started = await start_job(client, "testjobs", "steps", {"steps": 2, "delay": 0.01})
    messages, code = await collect(url_for(client, "example_task2", started["task_id"]))
    assert code == 1008
    assert messages[0]["type"] == "error"


async def test_timeline_events_and_clamped_progress(client: httpx.AsyncClient) -> None:
    started = await start_job(client, "testjobs", "logs")
    messages, _ = await collect(url_for(client, "testjobs", started["task_id"]))
    events = [m["event"] for m in messages if m["type"] == "event"]
    assert any(e["event_type"] == "info" and e["message"] == "hello from the job" for e in events)
    assert any(e["event_type"] == "warning" and e["message"] == "careful" for e in events)
    clamp = [e for e in events if "outside 0–100" in (e["message"] or "")]
    assert clamp and clamp[0]["data"] == {"reported": 150.0}
    assert max(m["progress"] for m in messages) == 100
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)


@pytest.mark.parametrize("progress", [1e-6, 1e-305])
async def test_a_creeping_job_is_told_with_a_rate_and_completes(
    client: httpx.AsyncClient, tmp_path: Path, progress: float
) -> None:
    """A job whose progress is too slow for a rate in thousandths per second, through the
    direct API and its socket: its update is told with a rate of 0 and an ETA (none past
    10**15 s), and it completes. Such an update used to fail the job (a division by the
    rounded rate)."""
    ready, go = tmp_path / "ready", tmp_path / "go"
    body = {"go": str(go), "ready": str(ready), "progress": progress}
    started = await start_job(client, "testjobs", "hold", body)
    told: list[dict[str, Any]] = []
    async with (
        asyncio.timeout(30),
        websockets.connect(url_for(client, "testjobs", started["task_id"])) as ws,
    ):
        told.append(json.loads(await ws.recv()))  # the snapshot
        await asyncio.sleep(0.05)  # PROCESSING a while: a rate of progress / elapsed
        ready.touch()
        async for raw in ws:
            message = json.loads(raw)
            told.append(message)
            if message["type"] == "update" and message["progress"] == progress:
                go.touch()
            if message.get("status") in TERMINAL:
                break
    update = next(m for m in told if m["type"] == "update" and m["progress"] == progress)
    assert update["rate"] == 0.0, update
    if progress > 1e-12:
        assert 1e4 < update["eta_seconds"] < 1e15, update
    else:
        assert update["eta_seconds"] is None, update
    assert told[-1]["status"] == "COMPLETED", told[-1]
    assert told[-1]["result"] == progress


async def test_a_hundred_subscribers_all_see_the_end(client: httpx.AsyncClient) -> None:
    started = await start_job(client, "testjobs", "steps", {"steps": 10, "delay": 0.1})
    url = url_for(client, "testjobs", started["task_id"])
    results = await asyncio.gather(*(collect(url) for _ in range(100)))
    for messages, code in results:
        assert code == 1000
        assert messages[0]["type"] == "snapshot"
        assert messages[-1]["status"] == "COMPLETED"


async def test_disconnected_clients_are_unsubscribed(client: httpx.AsyncClient) -> None:
    started = await start_job(client, "testjobs", "steps", {"steps": 40, "delay": 0.05})
    url = url_for(client, "testjobs", started["task_id"])
    before = (await client.get("/api/health")).json()["bus"]["subscribers"]
    sockets = [await websockets.connect(url) for _ in range(5)]
    for ws in sockets:
        await ws.recv()
    during = (await client.get("/api/health")).json()["bus"]["subscribers"]
    assert during >= before + 5
    for ws in sockets:
        await ws.close()
    async with asyncio.timeout(5):
        while (await client.get("/api/health")).json()["bus"]["subscribers"] > before:
            await asyncio.sleep(0.05)


async def test_a_slow_reader_is_told_every_status_line_and_the_end_in_order(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Two readers of one task of large updates: one keeps up, the other reads nothing until
    the task is over (its buffers hold a third of the run). The one that kept up got every
    update; the slow one got the same stream but for older progress, each left out for a
    newer one: every status change, timeline line and the end, in order."""
    go = tmp_path / "go"
    started = await start_job(client, "testjobs", "flood", flood_body(go))
    url = url_for(client, "testjobs", started["task_id"])
    host, port = client.base_url.host, client.base_url.port or 80
    check_fast_and_slow(*await read_fast_and_slow(url, host, port, go))
