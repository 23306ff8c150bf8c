"""The pages' HTTP status follows the access policy (sign-in, sign-out and registration follow)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from spyglass.auth.service import SESSION_COOKIE
from tests.accounts import Account, make_account, session_cookie
from tests.harness import SpyGlassServer

# -- item 10: the password policy ------------------------------------------------------------


def test_a_weak_bootstrap_admin_password_stops_the_server(
    new_server: Callable[..., SpyGlassServer], tmp_path
) -> None:
    with pytest.raises(RuntimeError, match="server exited early") as failed:
        new_server(
            tmp_path / "weak",
            env={"SPYGLASS_ADMIN_EMAIL": "root@example.com", "SPYGLASS_ADMIN_PASSWORD": "password"},
        )
    assert "SPYGLASS_ADMIN_PASSWORD is refused by the password policy" in str(failed.value)


# -- item 12: the pages' HTTP status follows the access policy --------------------------------

PRIVATE_PAGES = ["/", "/tasks", "/tasks/", "/tasks/some-task-id", "/task/some-task-id/results"]
ADMIN_PAGES = ["/admins/tasks", "/admins/tasks/"]


@pytest.fixture
def plain_user(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="plain")


def test_admin_pages_answer_403_to_non_admins_and_303_to_strangers(
    server: SpyGlassServer, plain_user: Account
) -> None:
    admin = make_account(server, admin=True, prefix="admin")
    for path in ADMIN_PAGES:
        r = httpx.get(server.url + path, cookies=session_cookie(server, plain_user), timeout=30)
        assert r.status_code == 403, path
        assert r.headers["content-type"].startswith("text/html")
        assert "for admins only" in r.text and 'href="/tasks"' in r.text

        stranger = httpx.get(server.url + path, timeout=30)
        assert stranger.status_code == 303
        assert stranger.headers["location"] == "/login?next=/admins/tasks"

        ok = httpx.get(server.url + path, cookies=session_cookie(server, admin), timeout=30)
        assert ok.status_code == 200 and "<html" in ok.text
    forged = httpx.get(f"{server.url}/admins/tasks/", cookies={SESSION_COOKIE: "forged"})
    assert forged.status_code == 303


def test_private_pages_send_strangers_to_sign_in(
    server: SpyGlassServer, plain_user: Account
) -> None:
    for path in PRIVATE_PAGES:
        r = httpx.get(server.url + path, timeout=30)
        assert r.status_code == 303, path
        assert r.headers["location"] == f"/login?next={path.rstrip('/') or '/'}"
        ok = httpx.get(
            server.url + path,
            cookies=session_cookie(server, plain_user),
            follow_redirects=True,
            timeout=30,
        )
        assert ok.status_code == 200 and "<html" in ok.text, path
    with_query = httpx.get(f"{server.url}/tasks?status=FAILED", timeout=30)
    assert with_query.headers["location"] == "/login?next=/tasks%3Fstatus%3DFAILED"
    for path in ("/login", "/register"):  # public, and served at their own address
        assert httpx.get(server.url + path, timeout=30).status_code == 200
