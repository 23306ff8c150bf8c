"""The token-free SpyGlass endpoints over real HTTP (DESIGN §5.1)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx

from tests.conftest import start_job, wait_terminal


async def test_start_with_args_then_result(client: httpx.AsyncClient) -> None:
    started = await start_job(
        client, "example_task2", "task2_with_args", {"name": "Matt", "age": 25}
    )
    assert uuid.UUID(started["task_id"]).version == 4
    assert started["status"] in {"PENDING", "PROCESSING"}
    assert set(started) >= {"task_id", "status", "progress", "result", "timestamp"}
    done = await wait_terminal(client, "example_task2", started["task_id"])
    assert done["status"] == "COMPLETED"
    assert done["progress"] == 100
    assert done["result"] == "Completed task for Matt, age 25"


async def test_canonical_state_name_and_alias_both_work(client: httpx.AsyncClient) -> None:
    started = await start_job(client, "example_task_state2", "task1")
    for name in ("example_task_state2", "example_task2"):
        r = await client.get(f"/api/{name}/task/result/{started['task_id']}")
        assert r.status_code == 200
    done = await wait_terminal(client, "example_task2", started["task_id"])
    assert done["result"] == "<Task1 Result>"


async def test_empty_body_takes_the_declared_default(client: httpx.AsyncClient) -> None:
    async def chunks(*parts: bytes) -> AsyncIterator[bytes]:  # sent chunked: no length said
        for part in parts:
            yield part

    for kwargs in ({}, {"json": {}}, {"content": b"   "}, {"content": chunks(b"")}):
        r = await client.post("/api/example_task2/task/start/task2_with_args", **kwargs)
        assert r.status_code == 200, r.text
        if not kwargs:  # says it has no body: the server need not read it to know
            assert r.request.headers["content-length"] == "0"
        done = await wait_terminal(client, "example_task2", r.json()["task_id"])
        assert done["result"] == "Completed task for John Doe, age 30"
    # A body whose length is not said up front is read all the same.
    r = await client.post(
        "/api/example_task2/task/start/task2_with_args",
        content=chunks(b'{"name": "Ada", ', b'"age": 36}'),
    )
    assert r.status_code == 200 and "content-length" not in r.request.headers
    done = await wait_terminal(client, "example_task2", r.json()["task_id"])
    assert done["result"] == "Completed task for Ada, age 36"


async def test_invalid_body_is_422_with_field_locations(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/example_task2/task/start/task2_with_args", json={"name": 5, "age": "old"}
    )
    assert r.status_code == 422
    body = r.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    locs = {tuple(e["loc"]) for e in body["detail"]}
    assert locs == {("body", "name"), ("body", "age")}


async def test_malformed_json_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/example_task2/task/start/task2_with_args",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "json_invalid"


async def test_body_for_a_job_without_input_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/testjobs/task/start/boom", json={"x": 1})
    assert r.status_code == 422
    assert r.json()["error_code"] == "VALIDATION_ERROR"


async def test_unknown_state_or_job_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/api/nope/task/start/task1", "/api/example_task2/task/start/nope"):
        r = await client.post(path, json={})
        assert r.status_code == 404
        assert r.json()["error_code"] == "JOB_NOT_FOUND"
        assert "nope" in r.json()["detail"]


async def test_instance_job_is_403_on_the_direct_api(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/testjobs/task/start/page_only")
    assert r.status_code == 403
    assert r.json()["error_code"] == "JOB_NOT_DIRECT"
    assert "not exposed to the direct API" in r.json()["detail"]


async def test_unknown_task_or_wrong_state_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/api/example_task2/task/result/{uuid.uuid4()}")
    assert r.status_code == 404
    assert r.json() == {"detail": r.json()["detail"], "error_code": "TASK_NOT_FOUND"}
    started = await start_job(client, "example_task2", "task1")
    r = await client.get(f"/api/example_task/task/result/{started['task_id']}")
    assert r.status_code == 404


async def test_failing_job_ends_failed_with_message_not_traceback(
    client: httpx.AsyncClient,
) -> None:
    started = await start_job(client, "testjobs", "boom")
    done = await wait_terminal(client, "testjobs", started["task_id"])
    assert done["status"] == "FAILED"
    assert done["error_code"] == "JOB_ERROR"
    assert done["error_message"] == "the job broke on purpose"  # no exception class name
    assert "Traceback" not in str(done)
    assert done["progress"] == 50


async def test_non_json_result_fails_clearly(client: httpx.AsyncClient) -> None:
    started = await start_job(client, "testjobs", "not_json")
    done = await wait_terminal(client, "testjobs", started["task_id"])
    assert done["status"] == "FAILED"
    assert done["error_code"] == "RESULT_NOT_SERIALIZABLE"


async def test_openapi_documents_each_job_input_schema(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/api/example_task2/task/start/task2_with_args"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    # The input model, or `{}` (like an empty body) for the job's default arguments.
    assert schema == {
        "anyOf": [
            {"$ref": "#/components/schemas/InputArgs"},
            {"type": "object", "maxProperties": 0},
        ]
    }
    input_args = spec["components"]["schemas"]["InputArgs"]
    assert set(input_args["required"]) == {"name", "age"}
    assert input_args["properties"]["age"]["type"] == "integer"
    assert "/api/{state_name}/task/result/{task_id}" in spec["paths"]
    assert "/api/testjobs/task/start/page_only" not in spec["paths"]


async def test_jobs_listing(client: httpx.AsyncClient) -> None:
    jobs = (await client.get("/api/jobs")).json()
    by_key = {(j["state_name"], j["task_name"]): j for j in jobs}
    job = by_key[("example_task_state2", "task2_with_args")]
    assert job["aliases"] == ["example_task2"]
    assert job["direct"] is True
    assert job["default_args"] == {"name": "John Doe", "age": 30}
    assert by_key[("probe_jobs_state", "page_only")]["direct"] is False
    assert by_key[("probe_jobs_state", "slow")]["options"]["timeout"] == 1.0


async def test_health(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["storage"]["status"] == "ok"
    assert body["bus"]["status"] == "ok"
    assert "timestamp" in body
