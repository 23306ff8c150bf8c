"""What the API takes and answers is what /openapi.json says: bounded numbers, every answer
documented with its error model, 405 with the real `Allow`, JSON bodies typed as documented."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.accounts import Account, make_account
from tests.harness import SpyGlassServer

HUGE = [2**63, 2**64, 2**31]


@pytest.fixture
def api(new_server: Callable[..., SpyGlassServer]) -> SpyGlassServer:
    return new_server(job_modules="")


@pytest.fixture
def user(api: SpyGlassServer) -> Account:
    return make_account(api)


@pytest.fixture
def http(api: SpyGlassServer, user: Account) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {user.token}"}
    with httpx.Client(base_url=api.url, headers=headers, timeout=30) as c:
        yield c


def assert_validation_error(r: httpx.Response, *loc: str | int) -> None:
    assert r.status_code == 422, (r.request.url, r.status_code, r.text)
    body = r.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert [tuple(issue["loc"]) for issue in body["detail"]] == [loc], body


def test_numbers_out_of_range_are_422_never_500(http: httpx.Client) -> None:
    task_id = http.post("/api/tasks", json={"task_type": "example_task2.task2_with_args"}).json()[
        "task_id"
    ]
    for value in [*HUGE, -1]:
        r = http.get("/api/tasks", params={"offset": value})
        assert_validation_error(r, "query", "offset")
        r = http.get(f"/api/tasks/{task_id}/events", params={"after_seq": value})
        assert_validation_error(r, "query", "after_seq")
        r = http.delete(f"/api/tokens/{value}")
        assert_validation_error(r, "path", "token_id")
        for path in ("/api/tasks", f"/api/tasks/{task_id}/events"):
            assert_validation_error(http.get(path, params={"limit": value}), "query", "limit")
    assert_validation_error(http.delete("/api/tokens/0"), "path", "token_id")
    # The largest accepted values work (nothing there, nothing after it, no such token).
    top = 2**31 - 1
    r = http.get("/api/tasks", params={"offset": top})
    assert r.status_code == 200 and r.json()["tasks"] == [], r.text
    r = http.get(f"/api/tasks/{task_id}/events", params={"after_seq": top})
    assert r.status_code == 200 and r.json()["events"] == [], r.text
    r = http.delete(f"/api/tokens/{top}")
    assert (r.status_code, r.json()["error_code"]) == (404, "TOKEN_NOT_FOUND")
    # The document says so.
    params = {
        (path, p["name"]): p["schema"]
        for path, ops in http.get("/openapi.json").json()["paths"].items()
        for op in ops.values()
        for p in op.get("parameters", [])
        if p["schema"].get("type") == "integer"
    }
    assert params, "no integer parameters documented"
    for (path, name), schema in params.items():
        assert "minimum" in schema and schema.get("maximum", 2**63) < 2**63, (path, name)


def test_every_answer_is_documented_with_its_model(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert set(schemas["ErrorBody"]["required"]) == {"detail", "error_code"}
    assert "context" in schemas["ErrorBody"]["properties"]
    assert schemas["ValidationErrorBody"]["properties"]["detail"]["type"] == "array"
    secured = {"/api/me", "/api/tokens", "/api/tasks"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            answers = op["responses"]
            ok = next(s for s in answers if s.startswith("2"))
            assert answers[ok].get("content"), f"{where}: no response model"
            for status, answer in answers.items():
                if status.startswith("2") or status == "503":
                    continue
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                model = "ValidationErrorBody" if status == "422" else "ErrorBody"
                assert ref == f"#/components/schemas/{model}", (where, status)
            if any(path.startswith(p) for p in secured):
                assert {"401", "429"} <= set(answers), f"{where}: auth answers missing"
            if "/tasks/{task_id}" in path:
                assert "404" in answers, where
            if "/start/" in path:
                assert {"403", "422", "429"} <= set(answers), where
            if "{client_token}" in path or (path == "/api/tasks" and method == "post"):
                assert "402" in answers, where
    # The bodies POST /api/tasks takes are spelled out: a tool and its agents, or a job.
    variants = schemas["CreateTask"]["oneOf"]
    titles = {v["title"] for v in variants}
    assert {"Tool profile-my-data", "Job example_task_state2.task2_with_args"} <= titles


def test_unsupported_method_is_405_with_the_routes_methods(api: SpyGlassServer) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as c:
        cases = {
            ("OPTIONS", "/api/tasks"): {"GET", "POST", "DELETE"},
            ("PUT", "/api/tasks/some-id"): {"GET", "DELETE"},
            ("TRACE", "/api/tools"): {"GET"},
            ("GET", "/api/example_task2/task/start/task1"): {"POST"},
            ("DELETE", "/api/x/task/start/y"): {"POST"},
            ("POST", "/api/storage/a/b.csv"): {"GET", "PUT"},
        }
        for (method, path), allowed in cases.items():
            r = c.request(method, path)
            assert r.status_code == 405, (method, path, r.status_code, r.text)
            assert set(r.headers["allow"].replace(" ", "").split(",")) == allowed, (method, path)
            assert r.json()["error_code"] == "METHOD_NOT_ALLOWED"
        # A path with a line break is answered by the API too (JSON, not Starlette's text).
        r = c.post("/api/tasks/%0Aabc/cancel")
        assert r.status_code == 404 and r.json()["error_code"] == "NOT_FOUND"


def test_options_on_the_full_server_is_405_with_the_routes_methods(
    server: SpyGlassServer,
) -> None:
    """With the pages mounted beneath the API, an API path never falls through to them."""
    r = httpx.options(f"{server.url}/api/tasks", timeout=30)
    assert r.status_code == 405, r.text
    assert set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST", "DELETE"}
    r = httpx.request("OPTIONS", f"{server.url}/api/example_task2/task/start/task1", timeout=30)
    assert (r.status_code, r.headers["allow"]) == (405, "POST")


def test_job_bodies_are_json_objects_typed_as_documented(http: httpx.Client) -> None:
    start = "/api/example_task2/task/start/task2_with_args"
    bad: list[Any] = [
        {"name": "Matt", "age": False},
        {"name": "Matt", "age": "25"},
        {"name": "Matt", "age": 25.5},
    ]
    for body in bad:
        assert_validation_error(http.post(start, json=body), "body", "age")
        r = http.post("/api/tasks", json={"task_type": "task2_with_args", "input_params": body})
        assert_validation_error(r, "body", "input_params", "age")
    for raw in ("null", "NaN"):
        r = http.post(start, content=raw, headers={"content-type": "application/json"})
        assert_validation_error(r, "body")
    # What JSON Schema calls an integer, and an empty body or {} for the defaults, still work.
    for body in ({"name": "Matt", "age": 25.0}, {}, None):
        r = http.post(start, json=body) if body is not None else http.post(start)
        assert r.status_code == 200, r.text
    # Errors of the framework itself come in the same shape.
    r = http.post("/api/tokens", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and r.json()["error_code"], r.text
