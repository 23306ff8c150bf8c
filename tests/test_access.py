"""One access policy on every path (issue 10, item 12): admins see every user's tasks on the
REST API and on token sockets alike; anyone else sees only their own."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.accounts import Account, make_account
from tests.conftest import ws_base
from tests.harness import SpyGlassServer
from tests.test_sockets import collect


@pytest.fixture
def alice(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="acc-alice")


@pytest.fixture
def bob(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="acc-bob")


@pytest.fixture
def admin(server: SpyGlassServer) -> Account:
    return make_account(server, admin=True, prefix="acc-admin")


async def token_start(client: httpx.AsyncClient, who: Account, body: object) -> str:
    r = await client.post(f"/api/testjobs/tasks/{who.token}/start/steps", json=body)
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


async def test_an_admin_token_follows_another_users_task_on_its_socket(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    task_id = await token_start(client, alice, {"steps": 5, "delay": 0.05})
    as_admin = {"Authorization": f"Bearer {admin.token}"}
    r = await client.get(f"/api/tasks/{task_id}", headers=as_admin)
    assert r.status_code == 200, "the REST API lets the admin see it"
    messages, code = await collect(f"{ws_base(client)}/ws/testjobs/tasks/{admin.token}/{task_id}")
    assert messages[0]["type"] == "snapshot" and messages[0]["task_id"] == task_id, messages
    assert messages[-1]["status"] == "COMPLETED" and code == 1000


async def test_an_admin_tokens_all_tasks_socket_streams_every_users_new_tasks(
    client: httpx.AsyncClient, alice: Account, admin: Account
) -> None:
    async with websockets.connect(f"{ws_base(client)}/ws/testjobs/tasks/{admin.token}") as ws:
        task_id = await token_start(client, alice, {"steps": 2, "delay": 0.05})
        async with asyncio.timeout(10):
            while True:
                msg = json.loads(await ws.recv())
                if msg["task_id"] == task_id and msg["status"] == "COMPLETED":
                    break


async def test_a_users_token_still_cannot_follow_someone_elses_task(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    task_id = await token_start(client, alice, {"steps": 5, "delay": 0.05})
    messages, code = await collect(f"{ws_base(client)}/ws/testjobs/tasks/{bob.token}/{task_id}")
    assert code == 1008
    assert messages == [
        {"type": "error", "detail": "Task not found", "error_code": "TASK_NOT_FOUND"}
    ]
    async with websockets.connect(f"{ws_base(client)}/ws/testjobs/tasks/{bob.token}") as ws:
        other = await token_start(client, alice, {"steps": 2, "delay": 0.05})
        mine = await token_start(client, bob, {"steps": 6, "delay": 0.05})
        async with asyncio.timeout(10):
            while True:
                msg = json.loads(await ws.recv())
                assert msg["task_id"] != other, "another user's task reached bob's socket"
                if msg["task_id"] == mine and msg["status"] == "COMPLETED":
                    break
