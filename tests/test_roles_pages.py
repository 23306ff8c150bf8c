"""Roles and scoped tokens in the pages (Debian chromium): the dashboard for operators and
viewers, and the token panel's scopes and expiry."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.accounts import Account, make_account
from tests.harness import SpyGlassServer
from tests.test_admin_pages import open_as, start
from tests.test_tasks_page import browser  # noqa: F401  (shared browser fixture)

pytestmark = pytest.mark.browser

LONG = {"steps": 600, "delay": 0.05}


@pytest.fixture
def user(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="pages-owner")


def cancel(server: SpyGlassServer, account: Account, task_id: str) -> None:
    httpx.post(
        f"{server.url}/api/tasks/{task_id}/cancel",
        headers={"Authorization": f"Bearer {account.token}"},
        timeout=30,
    )


def test_a_viewer_sees_every_task_on_the_dashboard_without_actions_or_user_management(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
    user: Account,
) -> None:
    viewer = make_account(server, prefix="pages-viewer", role="viewer")
    task_id = start(server, user, "steps", LONG)
    try:
        page = open_as(browser, server, viewer, "/tasks")
        page.get_by_role("link", name="Admin").click()
        row = page.locator(f"[data-testid=admin-task-row][data-task-id='{task_id}']")
        expect(row).to_have_count(1, timeout=20_000)
        expect(row.get_by_test_id("task-owner")).to_have_text(user.email)
        expect(row).to_have_attribute("data-status", "PROCESSING", timeout=10_000)
        expect(row.get_by_role("button")).to_have_count(0)
        expect(page.get_by_test_id("bulk-cancel")).to_have_count(0)
        expect(page.get_by_test_id("bulk-delete")).to_have_count(0)
        expect(page.get_by_role("heading", name="Credits")).to_have_count(0)
        expect(page.get_by_test_id("token-owner")).to_have_count(0)
        expect(
            page.get_by_role("link", name="Model portal (tasks, events, users, tokens)")
        ).to_have_count(0)
        page.context.close()
    finally:
        cancel(server, user, task_id)


def test_an_operator_cancels_another_users_task_on_the_dashboard_without_credits(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
    user: Account,
) -> None:
    operator = make_account(server, prefix="pages-operator", role="operator")
    task_id = start(server, user, "steps", LONG)
    page = open_as(browser, server, operator, "/admins/tasks/")
    row = page.locator(f"[data-testid=admin-task-row][data-task-id='{task_id}']")
    expect(row).to_have_attribute("data-status", "PROCESSING", timeout=20_000)
    expect(page.get_by_test_id("bulk-cancel")).to_be_visible()
    expect(page.get_by_role("heading", name="Credits")).to_have_count(0)
    row.get_by_role("button", name="Cancel").click(timeout=30_000)
    page.get_by_test_id("cancel-confirm").click(timeout=30_000)
    expect(row).to_have_attribute("data-status", "CANCELLED", timeout=30_000)
    page.context.close()


def test_the_token_panel_issues_a_scoped_expiring_token(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
    user: Account,
) -> None:
    page = open_as(browser, server, user, "/tasks")
    page.get_by_placeholder("Token name").fill("read only")
    page.get_by_placeholder("Expires in days (never)").fill("7")
    page.get_by_test_id("scope-tasks:read").click()
    page.get_by_role("button", name="Issue token").click()
    raw = page.get_by_test_id("new-token").inner_text(timeout=10_000)
    row = page.locator("[data-testid=token-row][data-token-name='read only']")
    expect(row.get_by_test_id("token-scopes")).to_have_text("tasks:read", timeout=10_000)
    me = httpx.get(
        f"{server.url}/api/me", headers={"Authorization": f"Bearer {raw}"}, timeout=30
    ).json()
    assert me["token"]["scopes"] == ["tasks:read"] and me["token"]["expires_at"]
    r = httpx.post(f"{server.url}/api/testjobs/tasks/{raw}/start/steps", timeout=30)
    assert r.status_code == 403 and r.json()["error_code"] == "INSUFFICIENT_SCOPE"
    # Nothing ticked: every scope, as before scopes existed.
    page.get_by_placeholder("Token name").fill("everything")
    page.get_by_role("button", name="Issue token").click()
    row = page.locator("[data-testid=token-row][data-token-name='everything']")
    expect(row.get_by_test_id("token-scopes")).to_have_text("all", timeout=10_000)
    page.context.close()
