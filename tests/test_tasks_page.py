"""The /tasks page in Debian chromium: jobs start from the page and rows update live."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.harness import CHROMIUM_ARGS, SpyGlassServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser, server: SpyGlassServer) -> Iterator[Page]:
    context = browser.new_context()
    pg = context.new_page()
    pg.goto(f"{server.url}/tasks")
    expect(pg.get_by_role("heading", name="Tasks")).to_be_visible(timeout=30_000)
    yield pg
    context.close()


def row_ids(page: Page) -> set[str]:
    return set(
        page.locator("[data-testid=task-row]").evaluate_all(
            "rows => rows.map(r => r.dataset.taskId)"
        )
    )


def test_job_button_runs_the_job_and_the_row_goes_live_to_completed(page: Page) -> None:
    expect(page.get_by_text("Loading tasks…")).to_have_count(0, timeout=15_000)
    before = row_ids(page)
    page.get_by_test_id("start-example_task-task1").click()

    new_row = page.locator(
        "[data-testid=task-row][data-task-name=task1]"
        + "".join(f":not([data-task-id='{tid}'])" for tid in before)
    )
    expect(new_row).to_have_count(1, timeout=10_000)
    # The row moves through live progress before it completes (the job takes ~1.5 s).
    expect(new_row.get_by_test_id("task-status")).to_have_text("Processing", timeout=5_000)
    expect(new_row.get_by_test_id("task-progress")).to_have_text("33%", timeout=5_000)
    expect(new_row.get_by_test_id("task-status")).to_have_text("Completed", timeout=10_000)
    expect(new_row.get_by_test_id("task-progress")).to_have_text("100%")
    expect(new_row).to_contain_text("<Task1 Result>")
    expect(new_row.locator("progress, [role=progressbar]")).to_have_count(1)


def test_task_started_by_api_appears_without_reload(page: Page, server: SpyGlassServer) -> None:
    expect(page.get_by_text("Loading tasks…")).to_have_count(0, timeout=15_000)
    started = httpx.post(
        f"{server.url}/api/example_task2/task/start/task2_with_args",
        json={"name": "FromCurl", "age": 41},
        timeout=10,
    ).json()
    row = page.locator(f"[data-testid=task-row][data-task-id='{started['task_id']}']")
    expect(row).to_have_count(1, timeout=10_000)
    expect(row.get_by_test_id("task-status")).to_have_text("Processing", timeout=5_000)
    expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=15_000)
    expect(row).to_contain_text("Completed task for FromCurl, age 41")


def test_cancel_button_stops_a_running_task(page: Page, server: SpyGlassServer) -> None:
    expect(page.get_by_text("Loading tasks…")).to_have_count(0, timeout=15_000)
    started = httpx.post(
        f"{server.url}/api/testjobs/task/start/steps",
        json={"steps": 600, "delay": 0.05},
        timeout=10,
    ).json()
    row = page.locator(f"[data-testid=task-row][data-task-id='{started['task_id']}']")
    expect(row.get_by_test_id("task-status")).to_have_text("Processing", timeout=10_000)
    row.get_by_role("button", name="Cancel").click()
    expect(row.get_by_test_id("task-status")).to_have_text("Cancelled", timeout=10_000)
    result = httpx.get(
        f"{server.url}/api/testjobs/task/result/{started['task_id']}", timeout=10
    ).json()
    assert result["status"] == "CANCELLED"


def test_closing_the_tab_ends_its_live_subscription(
    browser: Browser, server: SpyGlassServer
) -> None:
    def subscribers() -> int:
        return httpx.get(f"{server.url}/api/health", timeout=10).json()["bus"]["subscribers"]

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 20
        while subscribers() != count:
            assert time.monotonic() < deadline, f"subscribers stayed at {subscribers()}"
            time.sleep(0.25)

    wait_for(0)  # tabs of the earlier tests have gone
    context = browser.new_context()
    pg = context.new_page()
    pg.goto(f"{server.url}/tasks")
    expect(pg.get_by_text("Loading tasks…")).to_have_count(0, timeout=15_000)
    wait_for(1)
    context.close()
    wait_for(0)
