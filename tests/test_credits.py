"""Credits over real HTTP, sockets and a browser (issue 10, items 2 and 3).

* Processing a tool task charges once: of many concurrent `/process` calls exactly one
  wins and the others are told 409, on SQLite and on PostgreSQL shared by two workers.
* A costed job (`@monitored_background_task(cost=…)`) charges whoever starts it, on every
  start path, answers 402 with the shortfall when credits fall short, is refunded by the
  same rule as the data tools, and cannot be started token-free.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from playwright.sync_api import WebSocketRoute, expect, sync_playwright

from tests.accounts import Account, make_account, set_credits
from tests.harness import CHROMIUM_ARGS, SpyGlassServer
from tests.jobs import PAID_COST
from tests.services import new_database, postgres_server, redis_server
from tests.test_tool_flow import auth, start_tool_task
from tests.test_upload_lifetime import wait_for

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


# -- item 3: costed jobs -----------------------------------------------------------------------
def token_start(server: SpyGlassServer, account: Account, job: str, body: Any = None) -> Any:
    return httpx.post(
        f"{server.url}/api/{STATE}/tasks/{account.token}/start/{job}", json=body, timeout=10
    )


def rest_start(server: SpyGlassServer, account: Account, job: str) -> Any:
    return httpx.post(
        f"{server.url}/api/tasks",
        json={"task_type": f"{STATE}.{job}"},
        headers=auth(account),
        timeout=10,
    )


def shortfall_context(available: int, job: str) -> dict[str, Any]:
    return {
        "available": available,
        "required": PAID_COST,
        "shortfall": PAID_COST - available,
        "breakdown": {job: PAID_COST},
    }


@pytest.mark.parametrize("path", ["token", "rest"])
def test_a_costed_job_charges_its_starter_and_keeps_the_charge_when_it_completes(
    server: SpyGlassServer, path: str
) -> None:
    account = make_account(server, prefix=f"pay{path}")
    set_credits(server, account, 100)
    start = token_start if path == "token" else rest_start
    r = start(server, account, "paid")
    assert r.status_code in (200, 201), r.text
    task_id = r.json()["task_id"]
    assert balance(server, account) == 100 - PAID_COST  # charged as it was created
    assert follow(server, account, STATE, task_id)[-1]["status"] == "COMPLETED"
    assert balance(server, account) == 100 - PAID_COST


@pytest.mark.parametrize("path", ["token", "rest"])
def test_a_costed_job_without_the_credits_is_402_with_the_shortfall(
    server: SpyGlassServer, path: str
) -> None:
    account = make_account(server, prefix=f"poor{path}")
    set_credits(server, account, 3)
    start = token_start if path == "token" else rest_start
    r = start(server, account, "paid")
    assert r.status_code == 402, r.text
    body = r.json()
    assert body["error_code"] == "BILLING_INSUFFICIENT_CREDITS"
    assert body["context"] == shortfall_context(3, "paid")
    listed = httpx.get(f"{server.url}/api/tasks", headers=auth(account), timeout=10).json()
    assert listed["pagination"]["total"] == 0, "nothing was started"
    assert balance(server, account) == 3


def test_refunds_follow_the_data_tools_rule(server: SpyGlassServer) -> None:
    """Refunded when the run ends before any unit of work finished (failed, cancelled);
    kept once a unit of work (an agent) finished, exactly as for a tool task."""
    account = make_account(server, prefix="refund")
    set_credits(server, account, 100)
    failed = token_start(server, account, "paid_boom").json()["task_id"]
    end = follow(server, account, STATE, failed)[-1]
    assert end["status"] == "FAILED"
    assert balance(server, account) == 100, "refunded: it failed before doing its work"

    partial = token_start(server, account, "paid_partial").json()["task_id"]
    assert follow(server, account, STATE, partial)[-1]["status"] == "FAILED"
    assert balance(server, account) == 100 - PAID_COST, "kept: a unit of work finished"

    sleeper = token_start(server, account, "paid_sleep").json()["task_id"]
    until_status(server, account, sleeper, {"PROCESSING"})
    assert balance(server, account) == 100 - 2 * PAID_COST
    r = httpx.post(f"{server.url}/api/tasks/{sleeper}/cancel", headers=auth(account), timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
    assert balance(server, account) == 100 - PAID_COST, "refunded: cancelled"

    # Units that name their cost (as each agent of a tool does): a cancel after the first
    # of them keeps its 2 credits and gives back the other 3, and the timeline says so.
    units = token_start(server, account, "paid_units").json()["task_id"]
    until_status(server, account, units, {"PROCESSING"})

    def unit_done() -> bool:
        r = httpx.get(f"{server.url}/api/tasks/{units}/events", headers=auth(account), timeout=10)
        return any(e["event_type"] == "agent_completed" for e in r.json()["events"])

    wait_for(unit_done, 30, "the first unit of work")
    r = httpx.post(f"{server.url}/api/tasks/{units}/cancel", headers=auth(account), timeout=30)
    assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
    assert balance(server, account) == 100 - PAID_COST - 2, "the finished unit is kept"
    timeline = httpx.get(
        f"{server.url}/api/tasks/{units}/events", headers=auth(account), timeout=10
    ).json()["events"]
    assert timeline[-1]["data"]["refunded"] == PAID_COST - 2


def test_retry_of_a_costed_job_charges_again(server: SpyGlassServer) -> None:
    account = make_account(server, prefix="payretry")
    set_credits(server, account, 100)
    h = auth(account)
    first = token_start(server, account, "paid_sleep").json()["task_id"]
    until_status(server, account, first, {"PROCESSING"})
    httpx.post(f"{server.url}/api/tasks/{first}/cancel", headers=h, timeout=30)
    assert balance(server, account) == 100
    r = httpx.post(f"{server.url}/api/tasks/{first}/retry", headers=h, timeout=30)
    assert r.status_code == 201, r.text
    again = r.json()["task_id"]
    assert balance(server, account) == 100 - PAID_COST
    httpx.post(f"{server.url}/api/tasks/{again}/cancel", headers=h, timeout=30)
    set_credits(server, account, 2)
    r = httpx.post(f"{server.url}/api/tasks/{again}/retry", headers=h, timeout=30)
    assert (r.status_code, r.json()["context"]) == (402, shortfall_context(2, "paid_sleep"))


def test_an_interrupted_costed_job_is_refunded_at_the_next_start(new_server: Any) -> None:
    srv: SpyGlassServer = new_server()
    account = make_account(srv, prefix="payinterrupt")
    set_credits(srv, account, 50)
    task_id = token_start(srv, account, "paid_sleep", {"steps": 400, "delay": 0.05}).json()[
        "task_id"
    ]
    until_status(srv, account, task_id, {"PROCESSING"})
    assert balance(srv, account) == 50 - PAID_COST
    srv.kill()
    again: SpyGlassServer = new_server(srv.data_dir)
    task = httpx.get(f"{again.url}/api/tasks/{task_id}", headers=auth(account), timeout=10).json()
    assert (task["status"], task["error_code"]) == ("FAILED", "INTERRUPTED")
    assert balance(again, account) == 50, "refunded: interrupted before doing its work"


def test_a_costed_job_is_not_startable_token_free(server: SpyGlassServer) -> None:
    for path in (f"/api/{STATE}/task/start/paid", "/api/probe_jobs_state/task/start/paid"):
        r = httpx.post(server.url + path, timeout=10)
        assert r.status_code == 403, r.text
        assert r.json()["error_code"] == "JOB_NEEDS_ACCOUNT"
        assert "credits" in r.json()["detail"]
    schema = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    documented = schema["paths"][f"/api/{STATE}/task/start/paid"]["post"]
    assert "403" in documented["responses"]
    assert "JOB_NEEDS_ACCOUNT" in documented["responses"]["403"]["description"]
    assert "client token" in documented["description"]
    free = schema["paths"][f"/api/{STATE}/task/start/steps"]["post"]
    # Its 403 is only the origin check's, as on every state-changing route.
    assert "JOB_NEEDS_ACCOUNT" not in free["responses"]["403"]["description"]


@pytest.mark.browser
def test_a_page_start_charges_the_signed_in_user(server: SpyGlassServer) -> None:
    """The page event MonitorState makes for a job, sent by a signed-in browser's socket."""
    from tests.jobs import ProbeJobsState
    from tests.test_tasks_page import sign_in

    account = make_account(server, prefix="paypage")
    set_credits(server, account, 7)
    links: list[tuple[WebSocketRoute, list[str]]] = []

    def route(ws: WebSocketRoute) -> None:
        to_server = ws.connect_to_server()
        sent: list[str] = []
        ws.on_message(lambda m: (sent.append(str(m)), to_server.send(m)))
        links.append((to_server, sent))

    def start_from_page() -> None:
        to_server, sent = links[-1]
        # How this socket frames events: Socket.IO's EVENT packet ("42") in the namespace
        # its CONNECT packet ("40/_event,{…}", which may carry the page's first events) named.
        connect = next(m for m in sent if m.startswith("40"))
        namespace = connect[2 : connect.index(",") + 1] if connect[2:3] == "/" else ""
        prefix = "42" + namespace
        event = {
            "name": f"{ProbeJobsState.get_full_name()}.paid",
            "payload": {},
            "router_data": {"pathname": "/tasks", "asPath": "/tasks"},
        }
        to_server.send(prefix + json.dumps(["event", event]))

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_context().new_page()
            page.route_web_socket(re.compile(r".*/_event.*"), route)
            sign_in(page, server, account.email, account.password)
            expect(page.get_by_test_id("signed-in-as")).to_have_text(account.email, timeout=30_000)
            start_from_page()
            expect(page.get_by_text(re.compile(r"Started paid"))).to_be_visible(timeout=10_000)
            assert balance(server, account) == 7 - PAID_COST
            start_from_page()  # 2 credits left
            expect(page.get_by_text(re.compile(r"Insufficient credits"))).to_be_visible(
                timeout=10_000
            )
        finally:
            browser.close()
    listed = httpx.get(f"{server.url}/api/tasks", headers=auth(account), timeout=10).json()
    assert [(t["task_type"], t["cost"]) for t in listed["tasks"]] == [("paid", PAID_COST)]
    assert balance(server, account) == 7 - PAID_COST
