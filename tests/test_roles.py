"""Roles over HTTP (issue 15, item 4): admin, operator, viewer, user.

An operator acts on every task but cannot manage users; a viewer reads every task and
changes nothing; a user has their own tasks. One policy (`spyglass.tasks.access`) on REST,
token sockets, the dashboard's page guard and the portal.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.accounts import Account, make_account, session_cookie
from tests.conftest import ws_base
from tests.harness import SpyGlassServer
from tests.test_sockets import collect

LONG = {"steps": 400, "delay": 0.05}


def bearer(who: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {who.token}"}


@pytest.fixture
def owner(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="role-owner")


@pytest.fixture
def viewer(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="role-viewer", role="viewer")


@pytest.fixture
def operator(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="role-operator", role="operator")


async def start_long(client: httpx.AsyncClient, who: Account) -> str:
    r = await client.post(
        "/api/tasks",
        json={"task_type": "testjobs.steps", "input_params": LONG},
        headers=bearer(who),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["task_id"])


async def test_a_viewer_reads_every_task_but_cannot_cancel_start_or_delete(
    client: httpx.AsyncClient, owner: Account, viewer: Account
) -> None:
    task_id = await start_long(client, owner)
    try:
        r = await client.get(f"/api/tasks/{task_id}", headers=bearer(viewer))
        assert r.status_code == 200, r.text
        assert r.json()["task_id"] == task_id
        listed = await client.get("/api/tasks?limit=100", headers=bearer(viewer))
        assert task_id in {t["task_id"] for t in listed.json()["tasks"]}
        events = await client.get(f"/api/tasks/{task_id}/events", headers=bearer(viewer))
        assert events.status_code == 200

        for method, path in (
            ("POST", f"/api/tasks/{task_id}/cancel"),
            ("POST", f"/api/tasks/{task_id}/retry"),
            ("DELETE", f"/api/tasks/{task_id}"),
            ("DELETE", "/api/tasks?status=COMPLETED"),
            ("POST", "/api/tasks/bulk/cancel"),
        ):
            r = await client.request(method, path, headers=bearer(viewer))
            assert r.status_code == 403, (path, r.text)
            body = r.json()
            assert body["error_code"] == "INSUFFICIENT_SCOPE", body
            assert "viewer" in body["detail"] and "tasks:manage" in body["detail"]
        # A viewer starts nothing either: not on REST, not with its token in a path.
        r = await client.post(
            "/api/tasks", json={"task_type": "testjobs.steps"}, headers=bearer(viewer)
        )
        assert r.status_code == 403 and r.json()["error_code"] == "INSUFFICIENT_SCOPE"
        r = await client.post(f"/api/testjobs/tasks/{viewer.token}/start/steps")
        assert r.status_code == 403 and r.json()["error_code"] == "INSUFFICIENT_SCOPE"
        # The task still runs.
        r = await client.get(f"/api/tasks/{task_id}", headers=bearer(owner))
        assert r.json()["status"] in {"PENDING", "PROCESSING"}
    finally:
        await client.post(f"/api/tasks/{task_id}/cancel", headers=bearer(owner))


async def test_a_viewers_token_follows_another_users_task_on_its_socket(
    client: httpx.AsyncClient, owner: Account, viewer: Account
) -> None:
    r = await client.post(
        f"/api/testjobs/tasks/{owner.token}/start/steps", json={"steps": 3, "delay": 0.02}
    )
    task_id = r.json()["task_id"]
    messages, code = await collect(f"{ws_base(client)}/ws/testjobs/tasks/{viewer.token}/{task_id}")
    assert code == 1000, messages
    assert messages[0]["type"] == "snapshot" and messages[-1]["status"] == "COMPLETED"


async def test_an_operator_cancels_another_users_task_but_cannot_manage_users(
    client: httpx.AsyncClient, server: SpyGlassServer, owner: Account, operator: Account
) -> None:
    task_id = await start_long(client, owner)
    r = await client.post(f"/api/tasks/{task_id}/cancel", headers=bearer(operator))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "CANCELLED"
    # Retry and delete of another user's task are the operator's too.
    retried = await client.post(f"/api/tasks/{task_id}/retry", headers=bearer(operator))
    assert retried.status_code == 201, retried.text
    new_id = retried.json()["task_id"]
    await client.post(f"/api/tasks/{new_id}/cancel", headers=bearer(operator))
    gone = await client.delete(f"/api/tasks/{task_id}", headers=bearer(operator))
    assert gone.status_code == 200, gone.text
    assert (await client.get(f"/api/tasks/{task_id}", headers=bearer(owner))).status_code == 404

    # No user management: the portal is refused, other users' tokens are not theirs.
    cookies = session_cookie(server, operator)
    for path in ("/admin/user/list", f"/admin/user/edit?pk={owner.id}", "/admin/task/list"):
        r = httpx.get(server.url + path, cookies=cookies, timeout=30)
        assert r.status_code == 403, path
        assert r.json() == {"detail": "Admins only", "error_code": "FORBIDDEN"}
    tokens = await client.get("/api/tokens", headers=bearer(operator))
    assert tokens.status_code == 200
    assert {t["owner_email"] for t in tokens.json()} == {operator.email}
    r = await client.post(
        "/api/tokens", json={"name": "x", "owner_email": owner.email}, headers=bearer(operator)
    )
    assert r.status_code == 403 and r.json()["error_code"] == "FORBIDDEN"
    r = await client.delete(f"/api/tokens/{owner.token_id}", headers=bearer(operator))
    assert r.status_code == 404


def test_the_dashboard_opens_for_admins_operators_and_viewers_only(
    server: SpyGlassServer, operator: Account, viewer: Account, owner: Account
) -> None:
    admin = make_account(server, admin=True, prefix="role-admin")
    for who in (admin, operator, viewer):
        r = httpx.get(
            server.url + "/admins/tasks/", cookies=session_cookie(server, who), timeout=30
        )
        assert r.status_code == 200, (who.email, r.status_code)
    r = httpx.get(server.url + "/admins/tasks/", cookies=session_cookie(server, owner), timeout=30)
    assert r.status_code == 403
    # The signed-in user's role is told to the page.
    r = httpx.get(server.url + "/api/session", cookies=session_cookie(server, viewer), timeout=30)
    assert r.json() == {"email": viewer.email, "is_admin": False, "role": "viewer"}


def test_an_admin_sets_a_role_in_the_portals_user_edit(
    server: SpyGlassServer, owner: Account
) -> None:
    admin = make_account(server, admin=True, prefix="role-portal")
    with httpx.Client(
        base_url=server.url, cookies=session_cookie(server, admin), timeout=30
    ) as browser:
        form = browser.get(f"/admin/user/edit?pk={owner.id}")
        assert form.status_code == 200
        assert 'name="role"' in form.text and 'name="is_admin"' not in form.text
        found = re.search(r'name="csrftoken"[^>]*value="([^"]+)"', form.text) or re.search(
            r'value="([^"]+)"[^>]*name="csrftoken"', form.text
        )
        fields = {"email": owner.email, "role": "operator", "credits": "5"}
        if found:
            fields["csrftoken"] = found.group(1)
        saved = browser.post(
            f"/admin/user/edit?pk={owner.id}",
            data=fields,
            headers={"Origin": server.url},
        )
        assert saved.status_code in (200, 303), saved.text[:500]
    me = httpx.get(f"{server.url}/api/me", headers=bearer(owner), timeout=30).json()
    assert me["role"] == "operator" and me["is_admin"] is False


def test_the_migration_keeps_admins_admin_and_old_tokens_all_scopes(tmp_path: Path) -> None:
    from alembic.config import Config

    from alembic import command
    from spyglass.tasks.store import PROJECT_ROOT, make_engine

    db = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{db}")
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0007")
            conn.execute(
                sa.text(
                    "INSERT INTO user (id, email, password_hash, is_admin, credits, created_at) "
                    "VALUES (1, 'a@example.com', 'x', 1, 0, '2026-01-01 00:00:00'), "
                    "(2, 'u@example.com', 'x', 0, 0, '2026-01-01 00:00:00')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO client_token (token_hash, prefix, name, owner_id, created_at) "
                    "VALUES ('h', 'sg_x', 'old', 2, '2026-01-01 00:00:00')"
                )
            )
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()
    rows = sqlite3.connect(db)
    assert rows.execute("SELECT id, role FROM user ORDER BY id").fetchall() == [
        (1, "admin"),
        (2, "user"),
    ]
    assert rows.execute("SELECT scopes, expires_at FROM client_token").fetchone() == (
        "tasks:read tasks:start tasks:manage tokens:manage",
        None,
    )
    assert rows.execute("SELECT count(*) FROM client_token").fetchone() == (1,)
