"""Rate limits (`SPYGLASS_LIMIT_*`): token-free starts per client address, everything done
with a client token per token; with Redis, every worker counts against the same limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import websockets

from tests.accounts import Account, make_account
from tests.harness import SpyGlassServer
from tests.services import new_database, postgres_server, redis_server
from tests.test_cluster import account_on

DIRECT = "/api/example_task/task/start/task1"  # a direct job's own documented route
ANY_DIRECT = "/api/example_task2/task/start/task1"  # …and the catch-all's other name for one
QUICK = {"SPYGLASS_SHUTDOWN_GRACE": "0"}


def assert_limited(r: httpx.Response, window: int = 60) -> None:
    assert r.status_code == 429, (r.request.url, r.status_code, r.text)
    body = r.json()
    assert body["error_code"] == "RATE_LIMITED"
    retry_after = int(r.headers["retry-after"])
    assert 1 <= retry_after <= window
    assert body["context"]["retry_after"] == retry_after


def bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


def test_token_free_starts_are_limited_per_address(
    new_server: Callable[..., SpyGlassServer],
) -> None:
    srv = new_server(job_modules="", env={**QUICK, "SPYGLASS_LIMIT_DIRECT_START": "3/minute"})
    user = make_account(srv)
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        started = [c.post(path) for path in (DIRECT, ANY_DIRECT, DIRECT)]
        assert [r.status_code for r in started] == [200, 200, 200]
        assert_limited(c.post(DIRECT))
        assert_limited(c.post("/api/example_task2/task/start/task2_with_args", json={}))
        assert_limited(c.post("/api/nope/task/start/nothing"))  # counted before it is looked up
        # Reading is not a start; starting with a token is counted per token instead.
        task_id = started[0].json()["task_id"]
        assert c.get(f"/api/example_task/task/result/{task_id}").status_code == 200
        r = c.post(f"/api/example_task/tasks/{user.token}/start/task1")
        assert r.status_code == 200, r.text


def test_behind_a_trusted_proxy_the_address_is_the_one_it_forwards(
    new_server: Callable[..., SpyGlassServer],
) -> None:
    env = {**QUICK, "SPYGLASS_LIMIT_DIRECT_START": "1/minute"}
    srv = new_server(job_modules="", env={**env, "SPYGLASS_TRUST_PROXY_HEADERS": "1"})
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        first, second = ({"X-Forwarded-For": f"203.0.113.{n}"} for n in (1, 2))
        assert c.post(DIRECT, headers=first).status_code == 200
        assert_limited(c.post(DIRECT, headers=first))
        assert c.post(DIRECT, headers=second).status_code == 200  # another client


async def _socket_answer(url: str) -> tuple[dict[str, object], int | None]:
    """The first message of a task socket, and its close code once it has closed."""
    messages = []
    async with asyncio.timeout(30), websockets.connect(url) as ws:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                messages.append(json.loads(await ws.recv()))
        return messages[0], ws.close_code


def test_client_tokens_are_limited_per_token(new_server: Callable[..., SpyGlassServer]) -> None:
    srv = new_server(job_modules="", env={**QUICK, "SPYGLASS_LIMIT_API_TOKEN": "4/minute"})
    alice, bob = make_account(srv, prefix="alice"), make_account(srv, prefix="bob")
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        # Every way of using a token counts: Bearer routes, a token in the path, a socket.
        assert c.get("/api/me", headers=bearer(alice)).status_code == 200
        assert c.get("/api/tasks", headers=bearer(alice)).status_code == 200
        r = c.post(f"/api/example_task/tasks/{alice.token}/start/task1")
        assert r.status_code == 200, r.text
        task_id = r.json()["task_id"]
        socket = f"{srv.ws_url}/ws/example_task/tasks/{alice.token}/{task_id}"
        first, _ = asyncio.run(_socket_answer(socket))
        assert first["type"] == "snapshot"  # the 4th use
        assert_limited(c.get("/api/me", headers=bearer(alice)))
        assert_limited(c.post(f"/api/tasks/{task_id}/cancel", headers=bearer(alice)))
        assert_limited(c.post(f"/api/example_task/tasks/{alice.token}/start/task1"))
        error, code = asyncio.run(_socket_answer(socket))
        assert (error["type"], error["error_code"], code) == ("error", "RATE_LIMITED", 1008)
        # Another token, even another of Alice's, has its own allowance; token-free paths too.
        assert c.get("/api/me", headers=bearer(bob)).status_code == 200
        assert c.post(DIRECT).status_code == 200
        # A bad token is refused as before (401), not counted against anyone.
        assert c.get("/api/me", headers={"Authorization": "Bearer sg_nope"}).status_code == 401


def test_workers_sharing_redis_share_the_limits(tmp_path: Path) -> None:
    limits = {"SPYGLASS_LIMIT_DIRECT_START": "4/minute", "SPYGLASS_LIMIT_API_TOKEN": "4/minute"}
    with redis_server() as redis_url, postgres_server() as pg_url:
        env = {
            **QUICK,
            **limits,
            "REDIS_URL": redis_url,
            "SPYGLASS_REDIS_PREFIX": f"t{uuid.uuid4().hex[:8]}",
            "SPYGLASS_DB_URL": new_database(pg_url),
            "GRANIAN_WORKERS": "1",
        }
        workers = [
            SpyGlassServer(tmp_path / "data", job_modules="", env=env).start() for _ in range(2)
        ]
        try:
            a, b = workers
            user = account_on(a)  # its first token use, on worker A
            for worker in (a, b, a, b):  # two starts on each: four in all
                assert httpx.post(worker.url + DIRECT, timeout=30).status_code == 200
            for worker in (a, b):
                assert_limited(httpx.post(worker.url + DIRECT, timeout=30))
            for worker in (b, a, b):  # the token's 2nd to 4th uses
                r = httpx.get(worker.url + "/api/me", headers=bearer(user), timeout=30)
                assert r.status_code == 200, r.text
            for worker in (a, b):
                assert_limited(httpx.get(worker.url + "/api/me", headers=bearer(user), timeout=30))
        finally:
            for worker in workers:
                worker.stop()
