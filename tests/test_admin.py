"""The admin side over HTTP: the model portal is for admins only, checked on the server."""

from __future__ import annotations

import httpx
import pytest

from tests.accounts import make_account, session_cookie
from tests.harness import SpyGlassServer


@pytest.fixture
def admin_cookies(server: SpyGlassServer) -> dict[str, str]:
    return session_cookie(server, make_account(server, admin=True, prefix="admin"))


@pytest.fixture
def user_cookies(server: SpyGlassServer) -> dict[str, str]:
    return session_cookie(server, make_account(server, prefix="plain"))


def test_portal_lists_tasks_for_an_admin(
    server: SpyGlassServer, admin_cookies: dict[str, str]
) -> None:
    started = httpx.post(f"{server.url}/api/example_task2/task/start/task1", timeout=10).json()
    with httpx.Client(base_url=server.url, cookies=admin_cookies, timeout=30) as c:
        home = c.get("/admin/task/", follow_redirects=True)
        assert home.status_code == 200
        assert "Tasks" in home.text
        listing = c.get("/admin/task/list")
        assert listing.status_code == 200
        assert started["task_id"] in listing.text, "the newest task is on the first page"
        detail = c.get("/admin/task/detail", params={"pk": started["task_id"]})
        assert detail.status_code == 200 and "task1" in detail.text
        users = c.get("/admin/user/list")
        assert users.status_code == 200
        assert "$argon2" not in users.text and "password_hash" not in users.text
        tokens = c.get("/admin/client-token/list")
        assert tokens.status_code == 200 and "token_hash" not in tokens.text


@pytest.mark.parametrize("path", ["/admin/task/list", "/admin/task/", "/admin/user/list"])
def test_portal_refuses_non_admins(
    server: SpyGlassServer, user_cookies: dict[str, str], path: str
) -> None:
    r = httpx.get(f"{server.url}{path}", cookies=user_cookies, timeout=10)
    assert r.status_code == 403
    assert r.json() == {"detail": "Admins only", "error_code": "FORBIDDEN"}
    anonymous = httpx.get(f"{server.url}{path}", timeout=10)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
    forged = httpx.get(f"{server.url}{path}", cookies={"spyglass_session": "forged"}, timeout=10)
    assert forged.status_code == 303
