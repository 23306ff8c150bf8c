"""Scoped, expiring client tokens and tokens without a browser (issue 15, items 4 and 6).

Every route and socket checks the scope it needs (403 INSUFFICIENT_SCOPE otherwise), an
expired token is 401 like a revoked one, and `POST /api/auth/token` trades an email and
password for a token, limited like sign-in.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.accounts import PASSWORD, Account, issue_token, make_account
from tests.conftest import ws_base
from tests.harness import SpyGlassServer
from tests.test_sockets import collect

ALL = ["tasks:read", "tasks:start", "tasks:manage", "tokens:manage"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def user(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="scoped")


def refused_for_scope(r: httpx.Response, scope: str) -> None:
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["error_code"] == "INSUFFICIENT_SCOPE"
    assert body["detail"] == f"This client token does not have the {scope} scope"
    assert body["context"] == {"required_scope": scope}


async def test_a_read_only_token_reads_but_cannot_start_on_rest_path_or_manage(
    client: httpx.AsyncClient, server: SpyGlassServer, user: Account
) -> None:
    started = await client.post(
        f"/api/testjobs/tasks/{user.token}/start/steps", json={"steps": 2, "delay": 0.01}
    )
    task_id = started.json()["task_id"]
    read = issue_token(server, user, scopes=["tasks:read"])
    assert (await client.get("/api/tasks", headers=bearer(read))).status_code == 200
    assert (await client.get(f"/api/tasks/{task_id}", headers=bearer(read))).status_code == 200
    me = (await client.get("/api/me", headers=bearer(read))).json()
    assert me["token"]["scopes"] == ["tasks:read"] and me["role"] == "user"

    refused_for_scope(
        await client.post("/api/tasks", json={"task_type": "testjobs.steps"}, headers=bearer(read)),
        "tasks:start",
    )
    refused_for_scope(
        await client.post(f"/api/testjobs/tasks/{read}/start/steps", json={"steps": 1}),
        "tasks:start",
    )
    refused_for_scope(
        await client.post(f"/api/tasks/{task_id}/cancel", headers=bearer(read)), "tasks:manage"
    )
    refused_for_scope(
        await client.delete(f"/api/tasks/{task_id}", headers=bearer(read)), "tasks:manage"
    )
    refused_for_scope(await client.get("/api/tokens", headers=bearer(read)), "tokens:manage")
    refused_for_scope(
        await client.post("/api/tokens", json={"name": "more"}, headers=bearer(read)),
        "tokens:manage",
    )


async def test_a_start_only_token_is_refused_on_the_sockets(
    client: httpx.AsyncClient, server: SpyGlassServer, user: Account
) -> None:
    start = issue_token(server, user, scopes=["tasks:start"])
    r = await client.post(f"/api/testjobs/tasks/{start}/start/steps", json={"steps": 1})
    assert r.status_code == 200, r.text
    task_id = r.json()["task_id"]
    refused_for_scope(
        await client.get(f"/api/tasks/{task_id}", headers=bearer(start)), "tasks:read"
    )
    for path in (f"/ws/testjobs/tasks/{start}", f"/ws/testjobs/tasks/{start}/{task_id}"):
        messages, code = await collect(ws_base(client) + path)
        assert code == 1008
        assert messages == [
            {
                "type": "error",
                "detail": "This client token does not have the tasks:read scope",
                "error_code": "INSUFFICIENT_SCOPE",
            }
        ]


async def test_tokens_are_issued_with_scopes_and_expiry_and_default_to_every_scope(
    client: httpx.AsyncClient, user: Account
) -> None:
    r = await client.post("/api/tokens", json={"name": "plain"}, headers=bearer(user.token))
    assert r.status_code == 201, r.text
    assert r.json()["scopes"] == ALL and r.json()["expires_at"] is None
    r = await client.post(
        "/api/tokens",
        json={"name": "ci", "scopes": ["tasks:start", "tasks:read"], "expires_in_days": 7},
        headers=bearer(user.token),
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    assert issued["scopes"] == ["tasks:read", "tasks:start"]
    expires = datetime.fromisoformat(issued["expires_at"])
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)
    listed = (await client.get("/api/tokens", headers=bearer(user.token))).json()
    assert next(t for t in listed if t["id"] == issued["id"])["scopes"] == issued["scopes"]
    for bad in (
        {"name": "x", "scopes": ["tasks:everything"]},
        {"name": "x", "expires_in_days": 0},
        {"name": "x", "expires_in_days": 1, "expires_at": "2099-01-01T00:00:00Z"},
    ):
        r = await client.post("/api/tokens", json=bad, headers=bearer(user.token))
        assert r.status_code == 422, (bad, r.text)
    r = await client.post(
        "/api/tokens",
        json={"name": "x", "expires_at": "2001-01-01T00:00:00Z"},
        headers=bearer(user.token),
    )
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_EXPIRY"
    r = await client.post(
        "/api/tokens", json={"name": "x", "scopes": []}, headers=bearer(user.token)
    )
    assert r.status_code == 422, r.text  # at least one scope (none at all: leave `scopes` out)


async def test_a_viewers_token_never_does_more_than_the_role(
    client: httpx.AsyncClient, server: SpyGlassServer
) -> None:
    viewer = make_account(server, prefix="scoped-viewer", role="viewer")
    r = await client.post(
        "/api/tasks", json={"task_type": "testjobs.steps"}, headers=bearer(viewer.token)
    )
    assert r.status_code == 403
    assert r.json()["detail"] == (
        "Your role (viewer) does not allow tasks:start, whatever the token says"
    )


async def test_an_expired_token_is_401_like_a_revoked_one_and_its_socket_closes(
    client: httpx.AsyncClient, server: SpyGlassServer, user: Account
) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=3)
    short = issue_token(server, user, expires_at=soon)
    assert (await client.get("/api/tasks", headers=bearer(short))).status_code == 200
    async with websockets.connect(f"{ws_base(client)}/ws/testjobs/tasks/{short}") as ws:
        # Open before the expiry; the server closes it when the token expires.
        last: dict[str, Any] = {}
        async with asyncio.timeout(30):
            with pytest.raises(ConnectionClosed):
                while True:
                    last = json.loads(await ws.recv())
        assert ws.close_code == 1008
        assert last == {"type": "error", "detail": "Token expired", "error_code": "TOKEN_EXPIRED"}
    expected = {"detail": "Invalid or revoked client token", "error_code": "INVALID_TOKEN"}
    r = await client.get("/api/tasks", headers=bearer(short))
    assert r.status_code == 401 and r.json() == expected
    r = await client.post(f"/api/testjobs/tasks/{short}/start/steps", json={"steps": 1})
    assert r.status_code == 401 and r.json() == expected
    messages, code = await collect(f"{ws_base(client)}/ws/testjobs/tasks/{short}")
    assert code == 1008 and messages == [{"type": "error", **expected}]


def test_a_password_buys_a_scoped_expiring_token(server: SpyGlassServer) -> None:
    who = make_account(server, prefix="pw-token")
    r = httpx.post(
        f"{server.url}/api/auth/token",
        json={"email": who.email, "password": PASSWORD, "name": "laptop", "scopes": ["tasks:read"]},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token"].startswith("sg_") and body["name"] == "laptop"
    assert body["scopes"] == ["tasks:read"] and body["owner_email"] == who.email
    expires = datetime.fromisoformat(body["expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)
    me = httpx.get(f"{server.url}/api/me", headers=bearer(body["token"]), timeout=30)
    assert me.status_code == 200 and me.json()["email"] == who.email
    # Not a form post from another site's page: JSON only.
    r = httpx.post(
        f"{server.url}/api/auth/token",
        data={"email": who.email, "password": PASSWORD},
        timeout=30,
    )
    assert r.status_code == 415


def test_password_tokens_answer_alike_for_unknown_emails_and_are_rate_limited(
    new_server: Callable[..., SpyGlassServer],
) -> None:
    srv = new_server(env={"SPYGLASS_LIMIT_LOGIN_ACCOUNT": "3/5minutes"})
    who = make_account(srv, prefix="pw-limit")

    def ask(email: str, password: str) -> httpx.Response:
        return httpx.post(
            f"{srv.url}/api/auth/token", json={"email": email, "password": password}, timeout=30
        )

    wrong = ask(who.email, "not the password")
    unknown = ask("nobody-here@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {
            "detail": "Wrong email or password",
            "error_code": "BAD_CREDENTIALS",
        }
    )
    assert [ask(who.email, "still wrong").status_code for _ in range(2)] == [401, 401]
    locked = ask(who.email, PASSWORD)  # three failures: even the right password waits
    assert locked.status_code == 429, locked.text
    assert locked.json()["error_code"] == "RATE_LIMITED"
    assert int(locked.headers["Retry-After"]) > 0
    # Sign-in and the token route count together: the browser is locked out too.
    r = httpx.post(
        f"{srv.url}/api/session", json={"email": who.email, "password": PASSWORD}, timeout=30
    )
    assert r.status_code == 429


def test_the_openapi_document_describes_the_new_routes_and_their_errors(
    server: SpyGlassServer,
) -> None:
    doc = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    token = doc["paths"]["/api/auth/token"]["post"]
    assert set(token["responses"]) >= {"201", "400", "401", "415", "422", "429"}
    ok = token["responses"]["201"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/IssuedToken")
    issued = doc["components"]["schemas"]["IssuedToken"]["properties"]
    assert {"scopes", "expires_at", "token"} <= set(issued)
    for path, method in (
        ("/api/tasks", "post"),
        ("/api/tasks/{task_id}/cancel", "post"),
        ("/api/tokens", "get"),
        ("/api/{state_name}/tasks/{client_token}/start/{task_name}", "post"),
    ):
        answers = doc["paths"][path][method]["responses"]
        assert "403" in answers and "401" in answers, (path, sorted(answers))
    assert "INSUFFICIENT_SCOPE" in json.dumps(doc["paths"]["/api/tasks"]["post"]["responses"])
