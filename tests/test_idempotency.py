"""`Idempotency-Key` on every start path, over HTTP: the same key from the same sender within
its time answers the original task (same status code and body), another request with the
key a 409, concurrent repeats start one task, a refused start frees the key."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.accounts import Account, make_account
from tests.harness import SpyGlassServer

#: Keys are remembered 3.6 s here (24 h by default), so that the expiry can be seen.
ENV = {"SPYGLASS_IDEMPOTENCY_HOURS": "0.001", "SPYGLASS_SHUTDOWN_GRACE": "0"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpyGlassServer]:
    server = SpyGlassServer(tmp_path_factory.mktemp("idem"), env=ENV).start()
    yield server
    server.stop()


def auth(who: Account, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {who.token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def total(srv: SpyGlassServer, who: Account) -> int:
    r = httpx.get(f"{srv.url}/api/tasks", headers=auth(who), timeout=30)
    return int(r.json()["pagination"]["total"])


JOB = {"task_type": "testjobs.steps", "input_params": {"steps": 1}}


def test_rest_create_answers_the_original_task_again(srv: SpyGlassServer) -> None:
    alice = make_account(srv, prefix="idem-alice")
    url = f"{srv.url}/api/tasks"
    first = httpx.post(url, json=JOB, headers=auth(alice, "order-1"), timeout=30)
    assert first.status_code == 201, first.text
    again = httpx.post(url, json=JOB, headers=auth(alice, "order-1"), timeout=30)
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    # The same JSON written otherwise is the same request.
    spaced = json.dumps({"input_params": {"steps": 1}, "task_type": "testjobs.steps"}, indent=2)
    same = httpx.post(
        url,
        content=spaced,
        headers={**auth(alice, "order-1"), "Content-Type": "application/json"},
        timeout=30,
    )
    assert same.status_code == 201 and same.json()["task_id"] == first.json()["task_id"]
    assert total(srv, alice) == 1
    other_body = {**JOB, "input_params": {"steps": 2}}
    r = httpx.post(url, json=other_body, headers=auth(alice, "order-1"), timeout=30)
    assert r.status_code == 409 and r.json()["error_code"] == "IDEMPOTENCY_KEY_REUSED"
    r = httpx.post(f"{url}?priority=5", json=JOB, headers=auth(alice, "order-1"), timeout=30)
    assert r.status_code == 409 and r.json()["error_code"] == "IDEMPOTENCY_KEY_REUSED"
    # Another sender's key is another key; without a key every start is new.
    bob = make_account(srv, prefix="idem-bob")
    r = httpx.post(url, json=JOB, headers=auth(bob, "order-1"), timeout=30)
    assert r.status_code == 201 and r.json()["task_id"] != first.json()["task_id"]
    httpx.post(url, json=JOB, headers=auth(alice), timeout=30)
    httpx.post(url, json=JOB, headers=auth(alice), timeout=30)
    assert total(srv, alice) == 3
    # Past its time (3.6 s here) a key is forgotten: the start is new.
    time.sleep(4)
    later = httpx.post(url, json=JOB, headers=auth(alice, "order-1"), timeout=30)
    assert later.status_code == 201 and later.json()["task_id"] != first.json()["task_id"]


async def test_concurrent_repeats_start_one_task(srv: SpyGlassServer) -> None:
    who = make_account(srv, prefix="idem-race")
    async with httpx.AsyncClient(base_url=srv.url, timeout=60) as client:
        answers = await asyncio.gather(
            *(client.post("/api/tasks", json=JOB, headers=auth(who, "race-key")) for _ in range(8))
        )
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["task_id"] for a in answers}) == 1
    assert total(srv, who) == 1


def test_token_and_direct_starts_take_the_key(srv: SpyGlassServer) -> None:
    who = make_account(srv, prefix="idem-token")
    url = f"{srv.url}/api/testjobs/tasks/{who.token}/start/steps"
    first = httpx.post(url, json={"steps": 1}, headers={"Idempotency-Key": "t-1"}, timeout=30)
    assert first.status_code == 200, first.text
    again = httpx.post(url, json={"steps": 1}, headers={"Idempotency-Key": "t-1"}, timeout=30)
    assert again.status_code == 200 and again.content == first.content
    r = httpx.post(url, json={"steps": 3}, headers={"Idempotency-Key": "t-1"}, timeout=30)
    assert r.status_code == 409 and r.json()["error_code"] == "IDEMPOTENCY_KEY_REUSED"
    # The token's owner is the sender: the REST path with the same key is the same sender,
    # and another request.
    r = httpx.post(f"{srv.url}/api/tasks", json=JOB, headers=auth(who, "t-1"), timeout=30)
    assert r.status_code == 409
    assert total(srv, who) == 1
    # Token-free starts: the client's address is the sender (the job's own route and the
    # route for any job).
    for path in ("/api/testjobs/task/start/steps", "/api/example_task/task/start/task1"):
        key = {"Idempotency-Key": f"direct{path}"}
        body = {"steps": 1} if "steps" in path else None
        first = httpx.post(f"{srv.url}{path}", json=body, headers=key, timeout=30)
        assert first.status_code == 200, first.text
        again = httpx.post(f"{srv.url}{path}", json=body, headers=key, timeout=30)
        assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
        plain = httpx.post(f"{srv.url}{path}", json=body, timeout=30)
        assert plain.json()["task_id"] != first.json()["task_id"]


def test_a_refused_start_frees_the_key_and_bad_keys_are_422(srv: SpyGlassServer) -> None:
    who = make_account(srv, prefix="idem-refused")
    url = f"{srv.url}/api/tasks"
    bad = {"task_type": "testjobs.steps", "input_params": {"steps": "many"}}
    r = httpx.post(url, json=bad, headers=auth(who, "k-refused"), timeout=30)
    assert r.status_code == 422
    r = httpx.post(url, json=JOB, headers=auth(who, "k-refused"), timeout=30)
    assert r.status_code == 201, r.text
    for key in ("x" * 256, "with space", "tab\there"):
        r = httpx.post(url, json=JOB, headers=auth(who, key), timeout=30)
        assert r.status_code == 422, key
        assert r.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    direct = httpx.post(
        f"{srv.url}/api/testjobs/task/start/steps", headers={"Idempotency-Key": "x" * 256}
    )
    assert direct.status_code == 422


def test_the_cli_sends_the_key(srv: SpyGlassServer, tmp_path: Path) -> None:
    who = make_account(srv, prefix="idem-cli")
    command = [
        str(Path(sys.executable).with_name("spyglass")),
        "--url",
        srv.url,
        "--token",
        who.token,
        "--json",
        "start",
        "testjobs",
        "steps",
        "--arg",
        "steps=1",
        "--idempotency-key",
        "nightly-2026-12-06",
    ]
    runs = [subprocess.run(command, capture_output=True, text=True, timeout=60) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[0].stderr
    ids = {json.loads(run.stdout)["task_id"] for run in runs}
    assert len(ids) == 1
    other = subprocess.run(
        [*command[:-3], "steps=2", "--idempotency-key", "nightly-2026-12-06"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other.returncode == 2 and "IDEMPOTENCY_KEY_REUSED" in other.stderr


def test_the_document_describes_the_header_on_every_start_route(srv: SpyGlassServer) -> None:
    document = httpx.get(f"{srv.url}/openapi.json", timeout=30).json()
    starts = [
        (path, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if method == "post" and ("/start/" in path or path == "/api/tasks")
    ]
    assert len(starts) > 5
    for path, op in starts:
        names = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
        assert "Idempotency-Key" in names, path
        assert "409" in op["responses"], path
