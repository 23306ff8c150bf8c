"""The REST tasks API over real HTTP with Bearer client tokens (DESIGN §5.2, job flow)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import websockets

from tests.accounts import Account, make_account
from tests.conftest import TERMINAL, wait_terminal, ws_base
from tests.harness import SpyGlassServer


@pytest.fixture
def alice(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="rest-alice")


@pytest.fixture
def bob(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="rest-bob")


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


async def create(
    client: httpx.AsyncClient, who: Account, task_type: str, params: object = None, **extra: object
) -> dict:
    body = {"task_type": task_type, "input_params": params, **extra}
    r = await client.post("/api/tasks", json=body, headers=auth(who))
    assert r.status_code == 201, r.text
    return r.json()


async def finish(client: httpx.AsyncClient, who: Account, task_id: str) -> dict:
    """Wait for the end on the owner's token socket, then read the task."""
    await follow(client, who, task_id, lambda msg: msg["status"] in TERMINAL)
    return (await client.get(f"/api/tasks/{task_id}", headers=auth(who))).json()


async def follow(
    client: httpx.AsyncClient, who: Account, task_id: str, until: Callable[[dict], bool]
) -> None:
    """Read the owner's single-task socket until a message satisfies `until`."""
    task = (await client.get(f"/api/tasks/{task_id}", headers=auth(who))).json()
    url = f"{ws_base(client)}/ws/{task['state_name']}/tasks/{who.token}/{task_id}"
    async with asyncio.timeout(30), websockets.connect(url) as ws:
        async for raw in ws:
            if until(json.loads(raw)):
                return
    raise AssertionError("the socket ended first")


async def test_needs_a_valid_bearer_token(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer sg_nope"}, {"Authorization": "Basic eDp5"}):
        r = await client.get("/api/tasks", headers=headers)
        assert r.status_code == 401
        assert r.json()["error_code"] in {"NOT_AUTHENTICATED", "INVALID_TOKEN"}


async def test_create_by_task_type_runs_the_job(client: httpx.AsyncClient, alice: Account) -> None:
    task = await create(client, alice, "example_task2.task2_with_args", {"name": "Rest", "age": 3})
    assert task["status"] == "PENDING"
    assert task["task_type"] == "task2_with_args" and task["state_name"] == "example_task_state2"
    assert task["input_params"] == {"name": "Rest", "age": 3}
    done = await finish(client, alice, task["task_id"])
    assert done["status"] == "COMPLETED"
    assert done["result"] == "Completed task for Rest, age 3"
    assert done["execution_time_ms"] >= 4000
    assert done["completed_at"] and done["processing_started_at"]
    same = await create(client, alice, "steps", {"steps": 1}, state_name="testjobs")
    assert same["state_name"] == "probe_jobs_state"


async def test_create_errors(client: httpx.AsyncClient, alice: Account) -> None:
    h = auth(alice)
    r = await client.post("/api/tasks", json={"task_type": "task1"}, headers=h)
    assert r.status_code == 400 and r.json()["error_code"] == "AMBIGUOUS_TASK_TYPE"
    r = await client.post("/api/tasks", json={"task_type": "nope"}, headers=h)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_TASK_TYPE"
    r = await client.post(
        "/api/tasks",
        json={
            "task_type": "example_task2.task2_with_args",
            "input_params": {"name": "x", "age": "old"},
        },
        headers=h,
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "input_params", "age"]
    r = await client.post("/api/tasks", json={}, headers=h)
    assert r.status_code == 422
    r = await client.post("/api/tasks", json={"task_type": "testjobs.page_only"}, headers=h)
    assert r.status_code == 409


async def test_list_filters_and_pagination(
    client: httpx.AsyncClient, alice: Account, bob: Account, server: SpyGlassServer
) -> None:
    ids = [
        (await create(client, alice, "testjobs.steps", {"steps": 1, "delay": 0.01}))["task_id"]
        for _ in range(3)
    ]
    boom = (await create(client, alice, "testjobs.boom"))["task_id"]
    bobs = (await create(client, bob, "testjobs.steps", {"steps": 1}))["task_id"]
    await finish(client, alice, boom)
    for task_id in ids:
        await finish(client, alice, task_id)
    h = auth(alice)
    page = (await client.get("/api/tasks", params={"limit": 2}, headers=h)).json()
    assert [t["task_id"] for t in page["tasks"]] == [boom, ids[2]]
    assert page["pagination"] == {"total": 4, "limit": 2, "offset": 0, "has_more": True}
    rest = (await client.get("/api/tasks", params={"limit": 2, "offset": 2}, headers=h)).json()
    assert [t["task_id"] for t in rest["tasks"]] == [ids[1], ids[0]]
    assert rest["pagination"]["has_more"] is False
    failed = (
        await client.get("/api/tasks", params={"status": "FAILED,CANCELLED"}, headers=h)
    ).json()
    assert [t["task_id"] for t in failed["tasks"]] == [boom]
    by_type = (
        await client.get(
            "/api/tasks", params={"task_type": "boom", "state_name": "testjobs"}, headers=h
        )
    ).json()
    assert [t["task_id"] for t in by_type["tasks"]] == [boom]
    assert bobs not in {
        t["task_id"] for t in (await client.get("/api/tasks", headers=h)).json()["tasks"]
    }
    admin = make_account(server, admin=True, prefix="rest-admin")
    everyone = (await client.get("/api/tasks", params={"limit": 100}, headers=auth(admin))).json()
    assert {bobs, boom} <= {t["task_id"] for t in everyone["tasks"]}
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}):
        assert (await client.get("/api/tasks", params=bad, headers=h)).status_code == 422
    r = await client.get("/api/tasks", params={"status": "DONE"}, headers=h)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_STATUS"


async def test_other_users_task_is_404_on_every_path(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    task_id = (await create(client, alice, "testjobs.steps", {"steps": 50, "delay": 0.05}))[
        "task_id"
    ]
    unknown = "00000000-0000-4000-8000-000000000000"
    for tid in (task_id, unknown):
        for method, path in (
            ("GET", ""),
            ("GET", "/events"),
            ("POST", "/cancel"),
            ("POST", "/retry"),
            ("DELETE", ""),
        ):
            r = await client.request(method, f"/api/tasks/{tid}{path}", headers=auth(bob))
            assert r.status_code == 404, (method, path, r.text)
            assert r.json() == {"detail": f"Task '{tid}' not found", "error_code": "TASK_NOT_FOUND"}
    still = (await client.get(f"/api/tasks/{task_id}", headers=auth(alice))).json()
    assert still["status"] in {"PENDING", "PROCESSING"}


async def test_events_timeline_and_incremental_polling(
    client: httpx.AsyncClient, alice: Account
) -> None:
    task_id = (await create(client, alice, "testjobs.logs"))["task_id"]
    await finish(client, alice, task_id)
    h = auth(alice)
    timeline = (await client.get(f"/api/tasks/{task_id}/events", headers=h)).json()
    kinds = [(e["event_type"], e["message"]) for e in timeline["events"]]
    assert kinds[0] == ("status", "Queued")
    assert ("info", "hello from the job") in kinds and ("warning", "careful") in kinds
    assert kinds[-1] == ("success", "Completed")
    seqs = [e["seq"] for e in timeline["events"]]
    assert seqs == list(range(1, len(seqs) + 1))
    later = (
        await client.get(f"/api/tasks/{task_id}/events", params={"after_seq": seqs[-2]}, headers=h)
    ).json()
    assert [e["seq"] for e in later["events"]] == [seqs[-1]]
    assert later["last_seq"] == seqs[-1]


async def test_cancel_stops_the_job_and_retry_makes_a_new_task(
    client: httpx.AsyncClient, alice: Account, tmp_path: Path
) -> None:
    marker = tmp_path / "rest-steps.txt"
    params = {"steps": 400, "delay": 0.02, "marker": str(marker)}
    task = await create(client, alice, "testjobs.steps", params)
    h = auth(alice)
    await wait_progress_token(client, alice, task["task_id"])
    r = await client.post(f"/api/tasks/{task['task_id']}/cancel", headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED" and r.json()["cancelled_at"]
    lines = len(marker.read_text().splitlines())
    await asyncio.sleep(0.4)
    assert len(marker.read_text().splitlines()) == lines
    events = (await client.get(f"/api/tasks/{task['task_id']}/events", headers=h)).json()
    assert events["events"][-1]["data"]["status"] == "CANCELLED"
    again = await client.post(f"/api/tasks/{task['task_id']}/cancel", headers=h)
    assert again.status_code == 400
    assert again.json()["detail"] == "Cannot cancel task with status: CANCELLED"

    retry = await client.post(f"/api/tasks/{task['task_id']}/retry", headers=h)
    assert retry.status_code == 201
    new = retry.json()
    assert new["task_id"] != task["task_id"] and new["retry_of"] == task["task_id"]
    assert new["status"] == "PENDING" and new["input_params"] == params
    await client.delete(f"/api/tasks/{new['task_id']}", headers=h)

    done = await create(client, alice, "testjobs.steps", {"steps": 1})
    await finish(client, alice, done["task_id"])
    r = await client.post(f"/api/tasks/{done['task_id']}/retry", headers=h)
    assert r.status_code == 400
    assert r.json()["detail"] == "Cannot retry task with status: COMPLETED"


async def wait_progress_token(client: httpx.AsyncClient, who: Account, task_id: str) -> None:
    await follow(client, who, task_id, lambda msg: msg["progress"] > 0)


async def test_delete_and_bulk_delete(client: httpx.AsyncClient, server: SpyGlassServer) -> None:
    carol = make_account(server, prefix="rest-carol")
    dave = make_account(server, prefix="rest-dave")
    h = auth(carol)
    running = await create(client, carol, "testjobs.steps", {"steps": 500, "delay": 0.02})
    await wait_progress_token(client, carol, running["task_id"])
    r = await client.delete(f"/api/tasks/{running['task_id']}", headers=h)
    assert r.json() == {
        "task_id": running["task_id"],
        "message": "Task deleted",
        "files_deleted": 0,
    }
    assert (await client.get(f"/api/tasks/{running['task_id']}", headers=h)).status_code == 404

    ok = [
        (await create(client, carol, "testjobs.steps", {"steps": 1}))["task_id"] for _ in range(2)
    ]
    bad = (await create(client, carol, "testjobs.boom"))["task_id"]
    keep = (await create(client, carol, "testjobs.steps", {"steps": 300, "delay": 0.05}))["task_id"]
    daves = (await create(client, dave, "testjobs.boom"))["task_id"]
    for tid in [*ok, bad]:
        await finish(client, carol, tid)
    await finish(client, dave, daves)
    assert (await client.delete("/api/tasks", headers=h)).status_code == 422
    r = await client.delete("/api/tasks", params={"status": "COMPLETED,FAILED"}, headers=h)
    assert r.json()["deleted_count"] == 3
    left = {t["task_id"] for t in (await client.get("/api/tasks", headers=h)).json()["tasks"]}
    assert left == {keep}
    assert (await client.get(f"/api/tasks/{daves}", headers=auth(dave))).status_code == 200
    await client.delete(f"/api/tasks/{keep}", headers=h)


async def test_direct_tasks_stay_out_of_users_lists(
    client: httpx.AsyncClient, alice: Account
) -> None:
    direct = (await client.post("/api/example_task2/task/start/task1")).json()
    await wait_terminal(client, "example_task2", direct["task_id"])
    mine = (await client.get("/api/tasks", params={"limit": 100}, headers=auth(alice))).json()
    assert direct["task_id"] not in {t["task_id"] for t in mine["tasks"]}
    r = await client.get(f"/api/tasks/{direct['task_id']}", headers=auth(alice))
    assert r.status_code == 404
