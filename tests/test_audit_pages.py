"""The audit log from the pages, in Debian chromium: actions taken in the pages (the task page,
the tasks page, the admin dashboard, the token and webhook panels) are recorded with the
browser's session and address, and admins read the log at `/admins/audit` (on a phone too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.accounts import Account, make_account
from tests.harness import SpyGlassServer
from tests.test_admin_pages import open_as, start
from tests.test_tasks_page import browser  # noqa: F401  (shared browser fixture)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def auditor(server: SpyGlassServer) -> Account:
    return make_account(server, admin=True, prefix="auditor")


def rows(server: SpyGlassServer, auditor: Account, **filters: Any) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{server.url}/api/admin/audit",
        params=filters,
        headers={"Authorization": f"Bearer {auditor.token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


def by_session(who: Account, row: dict[str, Any]) -> None:
    assert (row["actor_id"], row["actor_email"]) == (who.id, who.email)
    assert row["credential_type"] == "session" and row["credential_id"]
    assert row["ip"] == "127.0.0.1"
    assert "Chrome" in row["user_agent"]


@pytest.fixture
def user_page(browser: Browser, server: SpyGlassServer) -> Iterator[tuple[Page, Account]]:  # noqa: F811
    user = make_account(server, prefix="audited")
    page = open_as(browser, server, user, "/tasks")
    yield page, user
    page.context.close()


def test_the_task_page_records_cancel_and_delete(
    user_page: tuple[Page, Account], server: SpyGlassServer, auditor: Account
) -> None:
    page, user = user_page
    task_id = start(server, user, "steps", {"steps": 400, "delay": 0.05})
    page.goto(f"{server.url}/tasks/{task_id}")
    expect(page.get_by_test_id("task-status")).to_have_text("Processing", timeout=15_000)
    page.get_by_test_id("cancel").click()
    page.get_by_test_id("cancel-confirm").click()
    expect(page.get_by_test_id("task-status")).to_have_text("Cancelled", timeout=10_000)
    page.get_by_test_id("delete").click()
    page.get_by_test_id("delete-confirm").click()
    expect(page).to_have_url(f"{server.url}/tasks", timeout=10_000)
    found = rows(server, auditor, target_id=task_id)
    assert [r["action"] for r in found] == ["task.delete", "task.cancel"]
    for row in found:
        by_session(user, row)


def test_the_tasks_page_records_a_bulk_delete(
    user_page: tuple[Page, Account], server: SpyGlassServer, auditor: Account
) -> None:
    page, user = user_page
    ids = [start(server, user, "boom") for _ in range(2)]
    rows_ = page.locator("[data-testid=task-row]")
    expect(rows_).to_have_count(2, timeout=20_000)
    for task_id in ids:
        expect(page.locator(f"[data-task-id='{task_id}']")).to_have_attribute(
            "data-status", "FAILED", timeout=20_000
        )
    page.get_by_test_id("bulk-delete").click()
    page.get_by_test_id("bulk-delete-confirm").click()
    expect(rows_).to_have_count(0, timeout=20_000)
    found = rows(server, auditor, actor=user.email, action="tasks.bulk_delete")
    assert len(found) == 1
    by_session(user, found[0])
    assert found[0]["detail"]["count"] == 2


def test_the_dashboard_records_cancel_and_credit_grants(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
    auditor: Account,
) -> None:
    admin = make_account(server, admin=True, prefix="audit-dash")
    user = make_account(server, prefix="audit-dash-user")
    page = open_as(browser, server, admin, "/admins/tasks/")
    try:
        expect(page.get_by_test_id("stat-running")).to_be_visible(timeout=20_000)
        task_id = start(server, user, "steps", {"steps": 600, "delay": 0.05})
        row = page.locator(f"[data-testid=admin-task-row][data-task-id='{task_id}']")
        expect(row).to_have_attribute("data-status", "PROCESSING", timeout=15_000)
        row.get_by_role("button", name="Cancel").click(timeout=30_000)
        page.get_by_test_id("cancel-confirm").click(timeout=30_000)
        expect(row).to_have_attribute("data-status", "CANCELLED", timeout=30_000)
        cancelled = rows(server, auditor, target_id=task_id)
        assert [r["action"] for r in cancelled] == ["task.cancel"]
        by_session(admin, cancelled[0])

        page.get_by_test_id("credits-user").click()
        page.get_by_role("option", name=user.email).click()
        page.get_by_placeholder("Credits").fill("250")
        page.get_by_role("button", name="Grant credits").click()
        balance = page.locator(f"[data-testid=credits-row][data-email='{user.email}']")
        expect(balance.get_by_test_id("credits-balance")).not_to_have_text("", timeout=10_000)
        granted = rows(server, auditor, target_type="user", target_id=str(user.id))
        assert len(granted) == 1 and granted[0]["action"] == "user.credit_change"
        by_session(admin, granted[0])
        detail = granted[0]["detail"]
        assert detail["granted"] == 250 and detail["new"] - detail["old"] == 250
    finally:
        page.context.close()


def test_admins_read_and_filter_the_log_on_a_phone(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
    auditor: Account,
) -> None:
    user = make_account(server, prefix="audit-phone")
    task_id = start(server, user, "steps", {"steps": 1, "delay": 0})
    deleted = httpx.delete(
        f"{server.url}/api/tasks/{task_id}",
        headers={"Authorization": f"Bearer {auditor.token}"},
        timeout=30,
    )
    assert deleted.status_code == 200, deleted.text
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        from tests.test_tasks_page import sign_in

        sign_in(page, server, auditor.email, auditor.password)
        expect(page.get_by_test_id("signed-in-as")).to_have_text(auditor.email, timeout=30_000)
        page.goto(f"{server.url}/admins/audit")
        expect(page.get_by_test_id("audit-row").first).to_be_visible(timeout=30_000)
        page.locator("#audit-target_id").fill(task_id)
        page.get_by_test_id("audit-filter-action").select_option("task.*")
        page.get_by_test_id("audit-apply").click()
        only = page.get_by_test_id("audit-row")
        expect(only).to_have_count(1, timeout=10_000)
        expect(only.first).to_have_attribute("data-action", "task.delete")
        expect(only.first).to_contain_text(auditor.email)
        expect(page.get_by_test_id("audit-summary")).to_have_text("1–1 of 1 event, newest first")
        # Nothing wider than the phone's screen.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        # The CSV link carries the filters; the browser's session may download it.
        href = page.get_by_test_id("audit-csv").get_attribute("href")
        assert href and f"target_id={task_id}" in href and "action=task.%2A" in href
        csv = page.request.get(f"{server.url}{href}")
        assert csv.status == 200 and task_id in csv.text()
        assert len(csv.text().strip().splitlines()) == 2  # the header and the one row
    finally:
        context.close()


def test_non_admins_get_no_audit_page(
    user_page: tuple[Page, Account], server: SpyGlassServer
) -> None:
    page, _user = user_page
    r = page.request.get(f"{server.url}/admins/audit")
    assert r.status == 403  # the server's answer to a non-admin's page load
    page.goto(f"{server.url}/tasks")
    assert page.request.get(f"{server.url}/api/admin/audit").status == 403


def test_the_token_panel_and_webhooks_page_record_their_changes(
    user_page: tuple[Page, Account], server: SpyGlassServer, auditor: Account
) -> None:
    page, user = user_page
    page.get_by_placeholder("Token name").fill("audited laptop")
    page.get_by_role("button", name="Issue token").click()
    expect(page.get_by_test_id("new-token")).to_be_visible(timeout=10_000)
    row = page.locator("[data-testid=token-row][data-token-name='audited laptop']")
    row.get_by_role("button", name="Revoke").click()
    expect(row.get_by_text("Revoked")).to_be_visible(timeout=10_000)
    tokens = rows(server, auditor, actor=user.email, target_type="token")
    assert [r["action"] for r in tokens] == ["token.revoke", "token.issue"]
    assert tokens[0]["target_id"] == tokens[1]["target_id"]
    assert tokens[1]["detail"]["name"] == "audited laptop"
    for found in tokens:
        by_session(user, found)

    page.goto(f"{server.url}/webhooks")
    expect(page.get_by_text("No endpoints yet.")).to_be_visible(timeout=15_000)
    page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/audited?secret=s3")
    page.get_by_label("completed", exact=True).check()
    page.get_by_role("button", name="Add endpoint").click()
    card = page.get_by_test_id("webhook-endpoint")
    expect(card).to_have_count(1, timeout=10_000)
    card.get_by_role("button", name="Disable").click()
    expect(page.get_by_test_id("webhook-disabled")).to_be_visible(timeout=10_000)
    card.get_by_role("button", name="Enable").click()
    expect(card.get_by_text("Enabled")).to_be_visible(timeout=10_000)
    card.get_by_role("button", name="Delete").click()
    expect(card).to_have_count(0, timeout=10_000)
    hooks = rows(server, auditor, actor=user.email, target_type="webhook")
    assert [r["action"] for r in hooks] == [
        "webhook.delete",
        "webhook.enable",
        "webhook.disable",
        "webhook.create",
    ]
    assert hooks[3]["detail"] == {"host": "127.0.0.1", "events": ["task.completed"]}
    for found in hooks:
        by_session(user, found)
