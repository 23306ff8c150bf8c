"""Credits over real HTTP and sockets (issue 10, item 2).

* Processing a tool task charges once: of many concurrent `/process` calls exactly one
  wins and the others are told 409, on SQLite and on PostgreSQL shared by two workers.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.accounts import Account, make_account, set_credits
from tests.harness import SpyGlassServer
from tests.services import new_database, postgres_server, redis_server
from tests.test_tool_flow import auth, start_tool_task

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "UPLOAD_FAILED", "EXPIRED"}
#: The tool run `start_tool_task` prepares (profile-my-data with unified-profiler).
TOOL_COST = 10
STATE = "testjobs"


def balance(server: SpyGlassServer, account: Account) -> int:
    r = httpx.get(f"{server.url}/api/me", headers=auth(account), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["credits"]


def follow(server: SpyGlassServer, account: Account, state: str, task_id: str) -> list[dict]:
    """Every message of the owner's single-task socket, until it closes."""

    async def run() -> list[dict]:
        url = f"{server.ws_url}/ws/{state}/tasks/{account.token}/{task_id}"
        async with asyncio.timeout(60), websockets.connect(url) as ws:
            return [json.loads(raw) async for raw in ws]

    return asyncio.run(run())


def until_status(
    server: SpyGlassServer, account: Account, task_id: str, wanted: set[str]
) -> dict[str, Any]:
    """Follow the owner's socket until the task reaches one of `wanted`."""

    async def run() -> dict[str, Any]:
        url = f"{server.ws_url}/ws/{STATE}/tasks/{account.token}/{task_id}"
        async with asyncio.timeout(60), websockets.connect(url) as ws:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("status") in wanted:
                    return msg
        raise AssertionError(f"the socket closed before {wanted}")

    return asyncio.run(run())


def fire(urls: list[str], headers: dict[str, str]) -> list[httpx.Response]:
    """POST to every url at once."""

    async def run() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=len(urls))
        async with httpx.AsyncClient(timeout=60, limits=limits) as c:
            return list(await asyncio.gather(*(c.post(u, headers=headers) for u in urls)))

    return asyncio.run(run())


def assert_one_winner(responses: list[httpx.Response]) -> None:
    codes = [r.status_code for r in responses]
    assert sorted(codes) == [200] + [409] * (len(codes) - 1), codes
    for r in responses:
        if r.status_code == 409:
            body = r.json()
            assert body["error_code"] == "TASK_NOT_WAITING", body
            assert "not waiting" in body["detail"], body


def assert_ran_once(c: httpx.Client, task_id: str) -> None:
    events = c.get(f"/api/tasks/{task_id}/events").json()["events"]
    statuses = [e["data"]["status"] for e in events if e["event_type"] == "status"]
    assert statuses.count("PENDING") == 1 and statuses.count("PROCESSING") == 1, statuses
    assert [e["event_type"] for e in events].count("agent_started") == 1


# -- item 2: concurrent /process -------------------------------------------------------------
@pytest.mark.parametrize("calls", [6, 20])
def test_concurrent_process_calls_charge_once_on_sqlite(server: SpyGlassServer, calls: int) -> None:
    account = make_account(server, prefix="race")
    set_credits(server, account, 1000)
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task_id, _ = start_tool_task(c)
        responses = fire([f"{server.url}/api/tasks/{task_id}/process"] * calls, auth(account))
        assert_one_winner(responses)
        assert follow(server, account, "data_tools", task_id)[-1]["status"] == "COMPLETED"
        assert balance(server, account) == 1000 - TOOL_COST
        assert_ran_once(c, task_id)


@pytest.fixture(scope="module")
def pg_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[SpyGlassServer]]:
    """Two workers on one PostgreSQL database (and one Redis), sharing a data folder."""
    with redis_server() as redis_url, postgres_server() as pg_url:
        env = {
            "REDIS_URL": redis_url,
            "SPYGLASS_REDIS_PREFIX": f"t{uuid.uuid4().hex[:8]}",
            "SPYGLASS_DB_URL": new_database(pg_url),
            "GRANIAN_WORKERS": "1",
        }
        data = tmp_path_factory.mktemp("pg-credits")
        servers = [SpyGlassServer(data, env=env).start() for _ in range(2)]
        try:
            yield servers
        finally:
            for srv in servers:
                srv.stop()


@pytest.mark.parametrize("calls", [6, 20])
def test_concurrent_process_calls_charge_once_on_postgresql(
    pg_workers: list[SpyGlassServer], calls: int
) -> None:
    a, b = pg_workers
    account = make_account(a, prefix="pgrace")
    set_credits(a, account, 1000)
    with httpx.Client(base_url=a.url, headers=auth(account), timeout=30) as c:
        task_id, _ = start_tool_task(c)
        urls = [f"{(a, b)[i % 2].url}/api/tasks/{task_id}/process" for i in range(calls)]
        assert_one_winner(fire(urls, auth(account)))
        assert follow(b, account, "data_tools", task_id)[-1]["status"] == "COMPLETED"
        assert balance(a, account) == 1000 - TOOL_COST
        assert_ran_once(c, task_id)


def test_short_of_credits_concurrent_process_is_one_402_and_the_rest_409(
    server: SpyGlassServer,
) -> None:
    account = make_account(server, prefix="racepoor")
    set_credits(server, account, 4)
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task_id, _ = start_tool_task(c)
        responses = fire([f"{server.url}/api/tasks/{task_id}/process"] * 6, auth(account))
        codes = sorted(r.status_code for r in responses)
        assert codes == [402, 409, 409, 409, 409, 409], codes
        (paid,) = [r.json() for r in responses if r.status_code == 402]
        assert paid["context"]["shortfall"] == TOOL_COST - 4
        assert c.get(f"/api/tasks/{task_id}").json()["status"] == "FAILED"
        assert balance(server, account) == 4
