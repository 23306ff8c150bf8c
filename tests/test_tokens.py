"""Client tokens end to end: token starts, token sockets, revocation, isolation between users."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.accounts import Account, make_account
from tests.conftest import start_job, ws_base
from tests.harness import SpyGlassServer
from tests.streams import check_fast_and_slow, flood_body, read_fast_and_slow
from tests.test_sockets import collect


@pytest.fixture
def alice(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="alice")


@pytest.fixture
def bob(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="bob")


async def token_start(
    client: httpx.AsyncClient, state: str, token: str, job: str, body: object = None
) -> httpx.Response:
    kwargs = {} if body is None else {"json": body}
    return await client.post(f"/api/{state}/tasks/{token}/start/{job}", **kwargs)


async def test_token_start_belongs_to_the_owner_and_streams(
    client: httpx.AsyncClient, alice: Account, server: SpyGlassServer
) -> None:
    r = await token_start(
        client, "example_task2", alice.token, "task2_with_args", {"name": "Token", "age": 9}
    )
    assert r.status_code == 200, r.text
    task_id = r.json()["task_id"]
    url = f"{ws_base(client)}/ws/example_task2/tasks/{alice.token}/{task_id}"
    messages, code = await collect(url)
    assert code == 1000
    assert messages[0]["type"] == "snapshot"
    assert messages[-1]["status"] == "COMPLETED"
    assert messages[-1]["result"] == "Completed task for Token, age 9"
    # An owned task is not visible on the token-free paths.
    assert (await client.get(f"/api/example_task2/task/result/{task_id}")).status_code == 404
    db = sqlite3.connect(server.data_dir / "spyglass.db")
    owner, client_id, origin = db.execute(
        "SELECT owner_id, client_id, origin FROM task WHERE id=?", (task_id,)
    ).fetchone()
    assert (owner, client_id, origin) == (alice.id, str(alice.token_id), "token")


async def test_all_tasks_socket_streams_only_the_owners_tasks_of_that_state(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    url = f"{ws_base(client)}/ws/testjobs/tasks/{alice.token}"
    async with websockets.connect(url) as ws:
        mine = [
            (
                await token_start(
                    client, "testjobs", alice.token, "steps", {"steps": 3, "delay": 0.05}
                )
            ).json()["task_id"]
            for _ in range(2)
        ]
        other_state = (await token_start(client, "example_task2", alice.token, "task1")).json()
        bobs = (
            await token_start(client, "testjobs", bob.token, "steps", {"steps": 2, "delay": 0.01})
        ).json()
        finished: set[str] = set()
        seen: set[str] = set()
        async with asyncio.timeout(15):
            while finished != set(mine):
                msg = json.loads(await ws.recv())
                seen.add(msg["task_id"])
                if msg["status"] == "COMPLETED":
                    finished.add(msg["task_id"])
        assert seen == set(mine)
        assert other_state["task_id"] not in seen and bobs["task_id"] not in seen
        # The stream stays open for the next task.
        third = (
            await token_start(client, "testjobs", alice.token, "steps", {"steps": 1, "delay": 0.01})
        ).json()["task_id"]
        async with asyncio.timeout(10):
            while json.loads(await ws.recv())["task_id"] != third:
                pass


async def test_a_slow_reader_of_all_tasks_is_told_every_status_line_and_end_of_each(
    client: httpx.AsyncClient, alice: Account, tmp_path: Path
) -> None:
    """The all-tasks socket, two tasks of large updates at once: the reader that keeps up
    gets every update of each; the one that reads nothing until both ended gets, of each
    task, every status change, timeline line and the end, in order, its older progress left
    out only for newer progress of the same task."""
    go = tmp_path / "go"
    started = [
        await token_start(client, "testjobs", alice.token, "flood", flood_body(go))
        for _ in range(2)
    ]
    tasks = {r.json()["task_id"] for r in started}
    url = f"{ws_base(client)}/ws/testjobs/tasks/{alice.token}"
    host, port = client.base_url.host, client.base_url.port or 80
    kept_up, behind = await read_fast_and_slow(url, host, port, go, tasks)
    assert {m["task_id"] for m in kept_up} == {m["task_id"] for m in behind} == tasks
    for task_id in tasks:
        check_fast_and_slow(
            [m for m in kept_up if m["task_id"] == task_id],
            [m for m in behind if m["task_id"] == task_id],
        )


async def test_late_all_tasks_subscriber_gets_snapshots_of_running_tasks(
    client: httpx.AsyncClient, alice: Account
) -> None:
    running = (
        await token_start(client, "testjobs", alice.token, "steps", {"steps": 20, "delay": 0.05})
    ).json()["task_id"]
    await asyncio.sleep(0.3)
    async with websockets.connect(f"{ws_base(client)}/ws/testjobs/tasks/{alice.token}") as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert first["type"] == "snapshot" and first["task_id"] == running
        assert first["progress"] > 0
        async with asyncio.timeout(10):
            while json.loads(await ws.recv())["status"] != "COMPLETED":
                pass


@pytest.mark.parametrize("token", ["nope", "sg_not-a-real-token", ""])
async def test_bad_token_is_401_on_http_and_1008_on_sockets(
    client: httpx.AsyncClient, token: str
) -> None:
    if token:
        r = await token_start(client, "example_task2", token, "task1")
        assert r.status_code == 401
        assert r.json() == {
            "detail": "Invalid or revoked client token",
            "error_code": "INVALID_TOKEN",
        }
        for path in (f"/ws/example_task2/tasks/{token}", f"/ws/example_task2/tasks/{token}/x"):
            messages, code = await collect(ws_base(client) + path)
            assert code == 1008
            assert messages == [
                {
                    "type": "error",
                    "detail": "Invalid or revoked client token",
                    "error_code": "INVALID_TOKEN",
                }
            ]


async def test_revocation_takes_effect_at_once_on_http_and_open_sockets(
    client: httpx.AsyncClient, server: SpyGlassServer
) -> None:
    carol = make_account(server, prefix="carol")
    running = (
        await token_start(client, "testjobs", carol.token, "steps", {"steps": 200, "delay": 0.05})
    ).json()["task_id"]
    all_url = f"{ws_base(client)}/ws/testjobs/tasks/{carol.token}"
    one_url = f"{all_url}/{running}"
    async with websockets.connect(all_url) as all_ws, websockets.connect(one_url) as one_ws:
        await all_ws.recv()
        await one_ws.recv()
        t0 = time.monotonic()
        r = await client.delete(
            f"/api/tokens/{carol.token_id}", headers={"Authorization": f"Bearer {carol.token}"}
        )
        assert r.status_code == 200, r.text
        for ws in (all_ws, one_ws):
            last = None
            async with asyncio.timeout(5):
                with contextlib.suppress(ConnectionClosed):
                    async for raw in ws:
                        last = json.loads(raw)
            assert last == {
                "type": "error",
                "detail": "Token revoked",
                "error_code": "TOKEN_REVOKED",
            }
            assert ws.close_code == 1008
        assert time.monotonic() - t0 < 2
    r = await token_start(client, "testjobs", carol.token, "steps")
    assert r.status_code == 401
    r = await client.get("/api/tokens", headers={"Authorization": f"Bearer {carol.token}"})
    assert r.status_code == 401


async def test_another_users_task_is_exactly_like_an_unknown_one(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    task_id = (
        await token_start(client, "testjobs", alice.token, "steps", {"steps": 5, "delay": 0.05})
    ).json()["task_id"]
    theirs, their_code = await collect(f"{ws_base(client)}/ws/testjobs/tasks/{bob.token}/{task_id}")
    unknown, unknown_code = await collect(
        f"{ws_base(client)}/ws/testjobs/tasks/{bob.token}/00000000-0000-4000-8000-000000000000"
    )
    assert their_code == unknown_code == 1008
    assert (
        theirs
        == unknown
        == [{"type": "error", "detail": "Task not found", "error_code": "TASK_NOT_FOUND"}]
    )
    wrong_state, code = await collect(
        f"{ws_base(client)}/ws/example_task2/tasks/{alice.token}/{task_id}"
    )
    assert code == 1008
    assert wrong_state == unknown


async def test_token_management(
    client: httpx.AsyncClient, alice: Account, bob: Account, server: SpyGlassServer
) -> None:
    admin = make_account(server, admin=True, prefix="admin")
    as_alice = {"Authorization": f"Bearer {alice.token}"}
    as_admin = {"Authorization": f"Bearer {admin.token}"}
    mine = (await client.get("/api/tokens", headers=as_alice)).json()
    assert {t["owner_email"] for t in mine} == {alice.email}
    assert all("token" not in t and "token_hash" not in t for t in mine)
    everyone = (await client.get("/api/tokens", headers=as_admin)).json()
    assert {alice.email, bob.email} <= {t["owner_email"] for t in everyone}

    r = await client.post(
        "/api/tokens", json={"name": "for bob", "owner_email": bob.email}, headers=as_alice
    )
    assert r.status_code == 403
    r = await client.post(
        "/api/tokens", json={"name": "x", "owner_email": "ghost@example.com"}, headers=as_admin
    )
    assert r.status_code == 404
    r = await client.post(
        "/api/tokens", json={"name": "for bob", "owner_email": bob.email}, headers=as_admin
    )
    assert r.status_code == 201
    issued = r.json()
    assert issued["owner_email"] == bob.email and issued["token"].startswith("sg_")
    started = await token_start(client, "testjobs", issued["token"], "steps", {"steps": 1})
    assert started.status_code == 200

    r = await client.delete(f"/api/tokens/{issued['id']}", headers=as_alice)
    assert r.status_code == 404, "alice cannot revoke bob's token"
    r = await client.delete(f"/api/tokens/{issued['id']}", headers=as_admin)
    assert r.status_code == 200
    assert (await client.get("/api/tokens")).status_code == 401
    assert (
        await client.post("/api/tokens", json={"name": "", "owner_email": None}, headers=as_alice)
    ).status_code == 422


async def test_instance_job_by_token_is_a_clear_409(
    client: httpx.AsyncClient, alice: Account
) -> None:
    r = await token_start(client, "testjobs", alice.token, "page_only")
    assert r.status_code == 409
    assert r.json()["error_code"] == "JOB_NEEDS_PAGE"


async def test_secrets_are_stored_hashed(server: SpyGlassServer, alice: Account) -> None:
    db = sqlite3.connect(server.data_dir / "spyglass.db")
    password_hash = db.execute("SELECT password_hash FROM user WHERE id=?", (alice.id,)).fetchone()[
        0
    ]
    assert password_hash.startswith("$argon2")
    assert alice.password not in password_hash
    token_hash, prefix = db.execute(
        "SELECT token_hash, prefix FROM client_token WHERE id=?", (alice.token_id,)
    ).fetchone()
    assert token_hash != alice.token and alice.token not in token_hash
    assert len(token_hash) == 64 and alice.token.startswith(prefix) and len(prefix) < 12
    dump = "\n".join(db.iterdump())
    assert alice.token not in dump and alice.password not in dump


async def test_direct_api_still_needs_no_token(client: httpx.AsyncClient) -> None:
    started = await start_job(client, "example_task2", "task1")
    assert started["status"] in {"PENDING", "PROCESSING"}
