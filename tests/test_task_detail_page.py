"""`/tasks/[task_id]` in Debian chromium: live progress, timeline, agents, actions, privacy."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.accounts import Account, make_account
from tests.harness import SpyGlassServer
from tests.test_tasks_page import browser, sign_in  # noqa: F401  (shared browser fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def owner(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="detail")


@pytest.fixture
def page(browser: Browser, server: SpyGlassServer, owner: Account) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context()
    pg = context.new_page()
    sign_in(pg, server, owner.email, owner.password)
    expect(pg.get_by_test_id("signed-in-as")).to_have_text(owner.email, timeout=30_000)
    yield pg
    context.close()


def start(server: SpyGlassServer, who: Account, job: str, body: object = None) -> str:
    r = httpx.post(
        f"{server.url}/api/testjobs/tasks/{who.token}/start/{job}", json=body, timeout=10
    )
    assert r.status_code == 200, r.text
    return r.json()["task_id"]


def test_details_follow_a_task_live_and_act_on_it(
    page: Page, server: SpyGlassServer, owner: Account
) -> None:
    task_id = start(server, owner, "steps", {"steps": 400, "delay": 0.05})
    page.goto(f"{server.url}/tasks/{task_id}")
    expect(page.get_by_test_id("task-status")).to_have_text("Processing", timeout=15_000)
    progress = page.get_by_test_id("task-progress")
    expect(progress).not_to_have_text("0%", timeout=10_000)
    expect(page.get_by_test_id("timeline-event").first).to_contain_text("Queued")
    events_before = page.get_by_test_id("timeline-event").count()
    expect(page.get_by_test_id("timeline-event")).not_to_have_count(events_before, timeout=5_000)

    page.get_by_test_id("cancel").click()
    page.get_by_test_id("cancel-confirm").click()
    expect(page.get_by_test_id("task-status")).to_have_text("Cancelled", timeout=10_000)
    page.get_by_role("button", name="Retry").click()
    expect(page).not_to_have_url(f"{server.url}/tasks/{task_id}", timeout=10_000)
    expect(page.get_by_test_id("task-status")).to_have_text("Processing", timeout=15_000)
    page.get_by_test_id("delete").click()
    expect(page.get_by_test_id("delete-running")).to_be_visible()
    page.get_by_test_id("delete-confirm").click()
    expect(page).to_have_url(f"{server.url}/tasks", timeout=10_000)


def test_failed_task_shows_a_remedy(page: Page, server: SpyGlassServer, owner: Account) -> None:
    task_id = start(server, owner, "boom")
    page.goto(f"{server.url}/tasks/{task_id}")
    expect(page.get_by_test_id("task-status")).to_have_text("Failed", timeout=15_000)
    # The message as written, without the exception class; advice for a job's own error.
    expect(page.get_by_test_id("task-message")).to_have_text("The job broke on purpose")
    expect(page.get_by_test_id("failed-step")).to_contain_text("While running")
    expect(page.get_by_test_id("remedy")).to_contain_text("tell the job's author")


def test_tool_task_shows_its_agent_checklist(
    page: Page, server: SpyGlassServer, owner: Account
) -> None:
    h = {"Authorization": f"Bearer {owner.token}"}
    task = httpx.post(
        f"{server.url}/api/tasks",
        headers=h,
        timeout=10,
        json={"tool_id": "profile-my-data", "agents": ["unified-profiler", "readiness-rater"]},
    ).json()
    urls = httpx.post(
        f"{server.url}/api/tasks/{task['task_id']}/upload-urls",
        headers=h,
        timeout=10,
        json={"files": {"primary": {"filename": "a.csv", "content_type": "text/csv"}}},
    ).json()
    info = urls["uploads"]["primary"]
    httpx.put(info["url"], content=b"a,b\n1,2\n3,4\n", headers=info["headers"], timeout=10)
    assert (
        httpx.post(
            f"{server.url}/api/tasks/{task['task_id']}/process", headers=h, timeout=10
        ).status_code
        == 200
    )
    page.goto(f"{server.url}/tasks/{task['task_id']}")
    expect(page.get_by_test_id("task-status")).to_have_text("Completed", timeout=20_000)
    for agent in ("unified-profiler", "readiness-rater"):
        expect(page.locator(f"[data-testid=timeline-row][data-key='{agent}']")).to_have_attribute(
            "data-state", "done", timeout=10_000
        )


def test_another_users_task_is_not_found(page: Page, server: SpyGlassServer) -> None:
    stranger = make_account(server, prefix="stranger")
    theirs = start(server, stranger, "steps", {"steps": 2})
    page.goto(f"{server.url}/tasks/{theirs}")
    expect(page.get_by_test_id("task-not-found")).to_be_visible(timeout=15_000)
    expect(page.get_by_test_id("task-status")).to_have_count(0)
    page.goto(f"{server.url}/tasks/00000000-0000-4000-8000-000000000000")
    expect(page.get_by_test_id("task-not-found")).to_be_visible(timeout=15_000)
