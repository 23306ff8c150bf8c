"""The HTTP paths do only what they must, and answer as FastAPI would: the start route's quick
path (no query string) beside FastAPI's own, the pre-encoded task answer, the 405 check that
only requests no route takes pay for, the API served past Reflex's own layers."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from spyglass.api.direct import (
    DirectStartRoute,
    TaskResponse,
    TaskRoute,
    _only_path_strings,
    cancel_task,
    task_answer,
    task_result,
)
from spyglass.api.errors import MethodNotAllowed
from tests.conftest import wait_terminal


class Colour(enum.Enum):
    RED = "red"


class Point(BaseModel):
    x: int = 1


@dataclasses.dataclass
class Pair:
    a: float = 0.5


VIEW: dict[str, Any] = {
    "task_id": str(uuid.uuid4()),
    "state_name": "example_task_state2",
    "task_name": "task1",
    "tool_id": "profile-my-data",  # not a TaskResponse field: dropped, as FastAPI drops it
    "agents": ["a"],
    "status": "COMPLETED",
    "progress": 100,
    "message": 'héllo ☃ "quoted" \u2028',
    "result": None,
    "error_code": None,
    "error_message": None,
    "scheduled_at": None,
    "timestamp": "2026-01-01T00:00:00+00:00",
}

RESULTS = [
    None,
    "text",
    1.5,
    1e-7,
    2**70,
    float("nan"),
    float("inf"),
    {"a": [1, 2.0, "x", None, True]},
    datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    uuid.UUID(int=7),
    b"bytes",
    (1, 2),
    {1: "int key"},
    Colour.RED,
    Point(),
    Pair(),
]


@pytest.mark.parametrize("result", RESULTS, ids=repr)
@pytest.mark.parametrize("progress", [0, 33.333333333333336, 100])
def test_task_answer_is_what_fastapi_sends_for_the_response_model(
    result: Any, progress: float
) -> None:
    """FastAPI validates a route's dict against `response_model` and dumps the model; the
    pre-encoded answer must be the same bytes."""
    view = {**VIEW, "result": result, "progress": progress}
    model = TypeAdapter(TaskResponse)
    expected = model.dump_json(model.validate_python(view))
    answer = task_answer(view)
    assert answer.body == expected
    assert answer.media_type == "application/json"


def test_a_jobs_own_start_route_matches_its_path_only() -> None:
    async def endpoint() -> None: ...

    route = DirectStartRoute("/api/s/task/start/j", endpoint, methods=["POST"])
    other = DirectStartRoute("/api/{state_name}/task/start/{task_name}", endpoint, methods=["POST"])

    def scope(path: str, method: str = "POST", **extra: Any) -> Scope:
        return {"type": "http", "path": path, "method": method, "root_path": "", **extra}

    assert route.matches(scope("/api/s/task/start/j"))[0] is Match.FULL
    assert route.matches(scope("/api/s/task/start/j", "GET"))[0] is Match.PARTIAL
    assert route.matches(scope("/api/s/task/start/k"))[0] is Match.NONE
    assert route.matches(scope("/api/s/task/start/j/"))[0] is Match.NONE
    assert route.matches({**scope("/api/s/task/start/j"), "type": "websocket"})[0] is Match.NONE
    # Under a root path Starlette's own matching decides.
    assert route.matches(scope("/x/api/s/task/start/j", root_path="/x"))[0] is Match.FULL
    match, child = other.matches(scope("/api/s/task/start/k"))
    assert match is Match.FULL and child["path_params"] == {"state_name": "s", "task_name": "k"}


async def test_task_routes_call_their_endpoint_with_the_paths_strings() -> None:
    for endpoint in (task_result, cancel_task):
        route = TaskRoute("/api/{state_name}/task/x/{task_id}", endpoint, methods=["GET"])
        assert _only_path_strings(route.dependant), endpoint
    seen: list[tuple[str, str]] = []

    async def endpoint(state_name: str, task_id: str) -> Response:
        seen.append((state_name, task_id))
        return Response(b"{}", media_type="application/json")

    route = TaskRoute("/api/{state_name}/task/x/{task_id}", endpoint, methods=["GET"])
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    scope: dict[str, Any] = {"type": "http", "path": "/api/s/task/x/t", "method": "GET"}
    scope.update({"root_path": "", "headers": [], "query_string": b"", "path_params": {}})
    match, child = route.matches(scope)
    assert match is Match.FULL
    # An outer mount's parameter (Reflex mounts at "", `path`) is not the endpoint's.
    params = {"path": "x", **child["path_params"]}
    await route.handle({**scope, **child, "path_params": params}, receive, send)
    assert seen == [("s", "t")] and sent[0]["status"] == 200

    async def with_query(state_name: str, q: int = 0) -> None: ...

    async def with_int(state_name: int) -> None: ...

    for other in (with_query, with_int):
        assert not _only_path_strings(TaskRoute("/x/{state_name}", other).dependant)


async def test_405_is_decided_only_beneath_the_api_and_with_every_routes_methods() -> None:
    api = FastAPI()
    router = APIRouter()

    async def endpoint() -> None: ...

    router.add_api_route("/api/things/{id}", endpoint, methods=["GET"])
    router.add_api_route("/api/things/{id}", endpoint, methods=["DELETE"])
    api.include_router(router)
    api.add_api_route("/api/things", endpoint, methods=["POST"])
    reached: list[str] = []

    async def beneath(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])

    guard = MethodNotAllowed(beneath, api.router)
    assert guard.allowed({"type": "http", "path": "/api/things/1", "method": "PUT"}) == {
        "GET",
        "DELETE",
    }
    assert guard.allowed({"type": "http", "path": "/api/things", "method": "GET"}) == {"POST"}
    # Paths no route of the API begins with are not matched at all; nor is a method it takes.
    assert guard.allowed({"type": "http", "path": "/tasks/1", "method": "PUT"}) is None
    assert guard.allowed({"type": "http", "path": "/api/things/1", "method": "GET"}) is None
    assert guard.allowed({"type": "http", "path": "/api/other", "method": "GET"}) is None
    under_root = {"type": "http", "path": "/x/api/things", "method": "GET", "root_path": "/x"}
    assert guard.allowed(under_root) == {"POST"}

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    await guard({"type": "http", "path": "/tasks", "method": "GET", "headers": []}, receive, send)
    assert reached == ["/tasks"] and not sent
    scope = {"type": "http", "path": "/api/things", "method": "PATCH", "headers": []}
    await guard(scope, receive, send)
    assert sent[0]["status"] == 405
    assert dict(sent[0]["headers"])[b"allow"] == b"POST"


async def test_start_answers_alike_with_and_without_a_query_string(
    client: httpx.AsyncClient,
) -> None:
    """The quick path (no query string) and FastAPI's (a schedule to read) give the same
    answer, with the security headers the middleware adds to every answer, once."""
    path = "/api/example_task2/task/start/task2_with_args"
    body = {"name": "Matt", "age": 25}
    quick = await client.post(path, json=body)
    slow = await client.post(f"{path}?priority=3", json=body)
    for r in (quick, slow):
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/json"
        assert set(r.json()) == set(TaskResponse.model_fields)
        assert isinstance(r.json()["progress"], float)
        for name in ("content-security-policy", "x-frame-options", "x-content-type-options"):
            assert len(r.headers.get_list(name)) == 1, (name, r.headers)
        done = await wait_terminal(client, "example_task2", r.json()["task_id"])
        assert done["result"] == "Completed task for Matt, age 25"
    bad = await client.post(f"{path}?priority=x", json=body)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "priority"]
    # Errors of the quick path go through the same handlers.
    for route, code, status in (
        ("/api/example_task2/task/start/nope", "JOB_NOT_FOUND", 404),
        ("/api/nope/task/start/task1", "JOB_NOT_FOUND", 404),
    ):
        r = await client.post(route)
        assert (r.status_code, r.json()["error_code"]) == (status, code), r.text
        assert "content-security-policy" in r.headers
    r = await client.post(path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"


def _answer(r: httpx.Response) -> tuple[int, list[tuple[str, str]], Any]:
    """Status, headers but the date and length (a new task's id, a time), and the body's
    keys (or the body, for an error)."""
    headers = [(k, v) for k, v in r.headers.multi_items() if k not in ("date", "content-length")]
    body = r.json()
    return r.status_code, headers, sorted(body) if r.status_code == 200 else body


async def test_the_lane_answers_as_the_whole_way_does(client: httpx.AsyncClient) -> None:
    """A script's start and result read take the lane (`spyglass.api.lane`: past Reflex's and
    FastAPI's layers); with a query string the same requests take the whole way. The answers
    are the same: status, every header (security headers, `Vary: Origin`) in order, body."""
    state, job = "example_task2", "task2_with_args"
    started = await client.post(f"/api/{state}/task/start/{job}", json={"name": "A", "age": 2})
    task_id = started.json()["task_id"]
    await wait_terminal(client, state, task_id)
    asks: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"/api/{state}/task/start/{job}", {"json": {"name": "A", "age": 2}}),
        ("POST", f"/api/{state}/task/start/{job}", {"json": {"name": "A", "age": "x"}}),
        ("POST", f"/api/{state}/task/start/{job}", {"content": b"{not json"}),
        ("POST", f"/api/{state}/task/start/nope", {}),
        ("POST", "/api/nope/task/start/task1", {}),
        ("GET", f"/api/{state}/task/result/{task_id}", {}),
        ("GET", f"/api/{state}/task/result/nope", {}),
        ("GET", f"/api/other_state/task/result/{task_id}", {}),
    ]
    for method, path, kwargs in asks:
        lane = await client.request(method, path, **kwargs)
        whole = await client.request(method, f"{path}?x=1", **kwargs)
        assert _answer(lane) == _answer(whole), (method, path)
        assert lane.headers["vary"] == "Origin" and "content-security-policy" in lane.headers


async def test_a_browsers_request_takes_the_whole_way(client: httpx.AsyncClient) -> None:
    """A request naming its origin takes the whole way: the origin check refuses another
    site's (`Lane.pick` leaves it there, see the test below), its own site's starts."""
    path = "/api/example_task2/task/start/task2_with_args"
    r = await client.post(
        path, json={"name": "A", "age": 2}, headers={"Origin": "http://evil.test"}
    )
    assert r.status_code == 403 and r.json()["error_code"] == "ORIGIN_NOT_ALLOWED"
    r = await client.post(
        path, json={"name": "A", "age": 2}, headers={"Referer": "http://evil.test/x"}
    )
    assert r.status_code == 403 and r.json()["error_code"] == "ORIGIN_NOT_ALLOWED"
    own = str(client.base_url).rstrip("/")
    r = await client.post(path, json={"name": "A", "age": 2}, headers={"Origin": own})
    assert r.status_code == 200 and r.headers["vary"] == "Origin"


def test_the_lane_takes_only_what_the_router_would_give_its_routes() -> None:
    """`Lane.pick` chooses the route the router would (a job's own start route before the
    route for any job) and leaves to the whole way a browser's request, a query string, an
    Idempotency-Key, another method or path."""
    from spyglass.api.app import create_api
    from spyglass.api.lane import Lane

    api = create_api()
    lane = Lane(api, lambda: None)

    def scope(path: str, method: str = "POST", headers: Any = (), query: bytes = b"") -> Scope:
        return {
            "type": "http",
            "path": path,
            "method": method,
            "root_path": "",
            "headers": list(headers),
            "query_string": query,
        }

    for method, path in (
        ("POST", "/api/example_task2/task/start/task2_with_args"),
        ("POST", "/api/example_task_state2/task/start/task2_with_args"),
        ("POST", "/api/example_task2/task/start/nope"),
        ("GET", "/api/example_task2/task/result/some-id"),
    ):
        picked = lane.pick(scope(path, method))
        assert picked is not None, path
        chosen = next(
            r for r in api.router.routes if r.matches(scope(path, method))[0] is Match.FULL
        )
        assert picked[0] is chosen, path
        assert picked[1] == chosen.matches(scope(path, method))[1], path
    path = "/api/example_task2/task/start/task2_with_args"
    for refused in (
        scope(path, headers=[(b"origin", b"http://x")]),
        scope(path, headers=[(b"referer", b"http://x/")]),
        scope(path, headers=[(b"idempotency-key", b"k")]),
        scope(path, query=b"priority=1"),
        scope(path, "PUT"),
        scope("/api/example_task2/task/cancel/some-id"),
        scope("/api/tasks"),
        scope("/api/health", "GET"),
    ):
        assert lane.pick(refused) is None, refused
