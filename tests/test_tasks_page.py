"""The /tasks page in Debian chromium: jobs start from the page and rows update live."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets.sync.client
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.accounts import Account, make_account
from tests.harness import CHROMIUM_ARGS, SpyGlassServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def account(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="browser")


def sign_in(page: Page, server: SpyGlassServer, email: str, password: str) -> None:
    page.goto(f"{server.url}/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def page(browser: Browser, server: SpyGlassServer, account: Account) -> Iterator[Page]:
    context = browser.new_context()
    pg = context.new_page()
    sign_in(pg, server, account.email, account.password)
    expect(pg.get_by_test_id("signed-in-as")).to_have_text(account.email, timeout=30_000)
    expect(pg.get_by_role("heading", name="Tasks")).to_be_visible()
    yield pg
    context.close()


def row_ids(page: Page) -> set[str]:
    return set(
        page.locator("[data-testid=task-row]").evaluate_all(
            "rows => rows.map(r => r.dataset.taskId)"
        )
    )


def test_job_button_runs_the_job_and_the_row_goes_live_to_completed(
    page: Page, server: SpyGlassServer
) -> None:
    expect(page.get_by_text("Loading tasks…")).to_have_count(0, timeout=15_000)
    before = row_ids(page)
    # The example jobs live on the developers' page: a button starts one and opens /tasks.
    page.goto(f"{server.url}/developers")
    page.get_by_test_id("start-example_task2-task2_with_args").click()
    expect(page).to_have_url(f"{server.url}/tasks", timeout=15_000)

    new_row = page.locator(
        "[data-testid=task-row][data-task-name=task2_with_args]"
        + "".join(f":not([data-task-id='{tid}'])" for tid in before)
    )
    expect(new_row).to_have_count(1, timeout=10_000)
    # The row moves through live progress before it completes (ten steps over ~5 s).
    expect(new_row.get_by_test_id("task-status")).to_have_text("Processing", timeout=5_000)
    expect(new_row.get_by_test_id("task-progress")).to_have_text(re.compile(r"^[1-9]0%$"))
    expect(new_row.get_by_test_id("task-status")).to_have_text("Completed", timeout=15_000)
    expect(new_row.get_by_test_id("task-progress")).to_have_text("100%")
    expect(new_row).to_contain_text("Completed task for Browser, age 7")
    expect(new_row.locator("progress, [role=progressbar]")).to_have_count(1)


def test_token_start_with_no_browser_appears_live_in_the_owners_page(
    page: Page, server: SpyGlassServer, account: Account
) -> None:
    expect(page.get_by_text("Loading tasks…")).to_have_count(0, timeout=15_000)
    started = httpx.post(
        f"{server.url}/api/example_task2/tasks/{account.token}/start/task2_with_args",
        json={"name": "FromCurl", "age": 41},
        timeout=10,
    ).json()
    row = page.locator(f"[data-testid=task-row][data-task-id='{started['task_id']}']")
    expect(row).to_have_count(1, timeout=10_000)
    expect(row.get_by_test_id("task-status")).to_have_text("Processing", timeout=5_000)
    expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=15_000)
    expect(row).to_contain_text("Completed task for FromCurl, age 41")


def test_users_see_only_their_own_tasks(
    page: Page, server: SpyGlassServer, account: Account
) -> None:
    other = make_account(server, prefix="other")
    theirs = httpx.post(
        f"{server.url}/api/example_task2/tasks/{other.token}/start/task1", timeout=10
    ).json()
    direct = httpx.post(f"{server.url}/api/example_task2/task/start/task1", timeout=10).json()
    mine = httpx.post(
        f"{server.url}/api/example_task2/tasks/{account.token}/start/task1", timeout=10
    ).json()
    expect(page.locator(f"[data-task-id='{mine['task_id']}']")).to_have_count(1, timeout=10_000)
    page.reload()
    expect(page.locator(f"[data-task-id='{mine['task_id']}']")).to_have_count(1, timeout=10_000)
    expect(page.locator(f"[data-task-id='{theirs['task_id']}']")).to_have_count(0)
    expect(page.locator(f"[data-task-id='{direct['task_id']}']")).to_have_count(0)


def test_cancel_button_stops_a_running_task(
    page: Page, server: SpyGlassServer, account: Account
) -> None:
    expect(page.get_by_text("Loading tasks…")).to_have_count(0, timeout=15_000)
    started = httpx.post(
        f"{server.url}/api/testjobs/tasks/{account.token}/start/steps",
        json={"steps": 600, "delay": 0.05},
        timeout=10,
    ).json()
    row = page.locator(f"[data-testid=task-row][data-task-id='{started['task_id']}']")
    expect(row.get_by_test_id("task-status")).to_have_text("Processing", timeout=10_000)
    row.get_by_role("button", name="Cancel").click()
    page.get_by_test_id("cancel-confirm").click()
    expect(row.get_by_test_id("task-status")).to_have_text("Cancelled", timeout=10_000)
    with websockets.sync.client.connect(
        f"{server.ws_url}/ws/testjobs/tasks/{account.token}/{started['task_id']}"
    ) as ws:
        assert json.loads(ws.recv())["status"] == "CANCELLED"


def test_closing_the_tab_ends_its_live_subscription(
    browser: Browser, server: SpyGlassServer, account: Account
) -> None:
    def subscribers() -> int:
        return httpx.get(f"{server.url}/api/health", timeout=10).json()["bus"]["subscribers"]

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 40  # a loaded machine: the socket may take a while
        while subscribers() != count:
            assert time.monotonic() < deadline, f"subscribers stayed at {subscribers()}"
            time.sleep(0.25)

    wait_for(0)  # tabs of the earlier tests have gone
    context = browser.new_context()
    pg = context.new_page()
    sign_in(pg, server, account.email, account.password)
    expect(pg.get_by_test_id("signed-in-as")).to_have_text(account.email, timeout=30_000)
    if not pg.url.rstrip("/").endswith("/tasks"):
        pg.goto(f"{server.url}/tasks")
    expect(pg.get_by_text("Loading tasks…")).to_have_count(0, timeout=15_000)
    wait_for(1)
    context.close()
    wait_for(0)


#: testjobs.steps as the filters name it: its doc string's first line.
STEPS_TITLE = "Counts through `steps` steps, `delay` seconds apart"


def choose(page: Page, testid: str, option: str) -> None:
    """Pick `option` (by its label) in a filter: the browser's own select (/tasks), or a
    Radix select's list box (the task page, admin)."""
    control = page.get_by_test_id(testid)
    if control.evaluate("el => el.tagName") == "SELECT":
        control.select_option(label=option)
        return
    control.click()
    page.get_by_role("option", name=option, exact=True).click()


def test_filters_pages_and_bulk_delete(browser: Browser, server: SpyGlassServer) -> None:
    owner = make_account(server, prefix="pager")
    base = f"{server.url}/api/testjobs/tasks/{owner.token}/start"
    started = [
        httpx.post(f"{base}/steps", json={"steps": 1, "delay": 0}, timeout=10).json()["task_id"]
        for _ in range(21)
    ]
    failed = [httpx.post(f"{base}/boom", timeout=10).json()["task_id"] for _ in range(2)]
    for task_id in started + failed:  # every one has ended before the page opens
        with websockets.sync.client.connect(
            f"{server.ws_url}/ws/testjobs/tasks/{owner.token}/{task_id}"
        ) as ws:
            while json.loads(ws.recv())["status"] not in ("COMPLETED", "FAILED"):
                pass
    context = browser.new_context()
    pg = context.new_page()
    sign_in(pg, server, owner.email, owner.password)
    label = pg.get_by_test_id("page-label")
    rows = pg.locator("[data-testid=task-row]")
    expect(label).to_have_text("1–20 of 23", timeout=30_000)
    expect(rows).to_have_count(20)
    expect(pg.get_by_test_id("page-prev")).to_be_disabled()
    pg.get_by_test_id("page-next").click()
    expect(label).to_have_text("21–23 of 23")
    expect(rows).to_have_count(3)
    expect(pg.get_by_test_id("page-next")).to_be_disabled()
    pg.get_by_test_id("page-prev").click()
    expect(label).to_have_text("1–20 of 23")

    choose(pg, "filter-status", "Failed")
    expect(label).to_have_text("1–2 of 2")
    assert {r.get_attribute("data-task-id") for r in rows.all()} == set(failed)
    choose(pg, "filter-status", "Any status")
    choose(pg, "filter-kind", "Fails half-way")  # testjobs.boom, by its title
    expect(rows).to_have_count(2)
    choose(pg, "filter-kind", STEPS_TITLE)
    expect(label).to_have_text("1–20 of 21")
    choose(pg, "filter-status", "Failed")
    expect(pg.get_by_test_id("tasks-empty")).to_have_text("No task matches these filters.")
    pg.get_by_role("button", name="Clear filters").click()
    expect(label).to_have_text("1–20 of 23")

    # A live task arrives on the first page while the filters allow it.
    fresh = httpx.post(f"{base}/steps", json={"steps": 1, "delay": 0}, timeout=10).json()
    expect(pg.locator(f"[data-task-id='{fresh['task_id']}']")).to_have_count(1, timeout=10_000)
    expect(label).to_have_text("1–20 of 24", timeout=10_000)

    choose(pg, "bulk-choice", "All failed")
    pg.get_by_test_id("bulk-delete").click()
    expect(pg.get_by_test_id("bulk-count")).to_have_text("2 failed tasks")
    pg.get_by_test_id("bulk-delete-confirm").click()
    expect(label).to_have_text("1–20 of 22", timeout=15_000)
    h = {"Authorization": f"Bearer {owner.token}"}
    for task_id in failed:
        assert (
            httpx.get(f"{server.url}/api/tasks/{task_id}", headers=h, timeout=10).status_code == 404
        )
    choose(pg, "bulk-choice", "All finished")
    pg.get_by_test_id("bulk-delete").click()
    expect(pg.get_by_test_id("bulk-count")).to_have_text("22 finished tasks")
    pg.get_by_role("button", name="Keep them").click()
    expect(pg.get_by_role("alertdialog")).to_have_count(0)
    expect(label).to_have_text("1–20 of 22")
    pg.get_by_test_id("bulk-delete").click()
    pg.get_by_test_id("bulk-delete-confirm").click()
    expect(pg.get_by_test_id("tasks-empty")).to_contain_text("No tasks yet", timeout=15_000)
    context.close()
