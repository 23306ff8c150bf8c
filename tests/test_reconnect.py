"""A page open across a server restart, in Debian chromium: it reconnects and stays live.

The server is stopped mid-task and started again on the same port and data folder. The open
pages are never reloaded (a mark set in the window before the restart is still there after):
Reflex's socket reconnects by itself, and the pages' live feeds must start again with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.accounts import Account, make_account
from tests.harness import SpyGlassServer, separate_checkout
from tests.test_tasks_page import browser, sign_in  # noqa: F401  (shared browser fixture)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def restartable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpyGlassServer]:
    """A full server of its own (it is stopped and started again here): its pages are built
    for its port, in a folder of its own, so the shared server's pages are left alone."""
    folder = tmp_path_factory.mktemp("reconnect")
    srv = SpyGlassServer(
        folder / "data", full=True, root=separate_checkout(folder / "checkout")
    ).start(timeout=900)
    yield srv
    srv.stop()


def start(server: SpyGlassServer, who: Account, body: dict[str, float]) -> str:
    r = httpx.post(
        f"{server.url}/api/testjobs/tasks/{who.token}/start/steps", json=body, timeout=10
    )
    assert r.status_code == 200, r.text
    return str(r.json()["task_id"])


def signed_in(browser: Browser, server: SpyGlassServer, who: Account) -> Page:  # noqa: F811
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, server, who.email, who.password)
    expect(page.get_by_test_id("signed-in-as")).to_have_text(who.email, timeout=30_000)
    return page


def mark(page: Page) -> None:
    """A mark only this load of the page has: a reload would lose it."""
    page.evaluate("() => { window.__notReloaded = true; }")


def not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("() => window.__notReloaded === true"))


def restart(server: SpyGlassServer) -> None:
    server.stop()
    assert server.data_dir.is_dir()
    server.start(timeout=900)  # the same port (fixed when the harness was made) and data


def test_open_pages_stay_live_across_a_server_restart(
    browser: Browser,  # noqa: F811
    restartable: SpyGlassServer,
) -> None:
    server = restartable
    owner = make_account(server, prefix="reconnect")
    list_page = signed_in(browser, server, owner)
    list_page.goto(f"{server.url}/tasks")
    expect(list_page.get_by_text("Loading tasks…")).to_have_count(0, timeout=30_000)

    # A long task runs when the server stops; its page is open too.
    running = start(server, owner, {"steps": 2000, "delay": 0.05})
    detail_page = signed_in(browser, server, owner)
    detail_page.goto(f"{server.url}/tasks/{running}")
    expect(detail_page.get_by_test_id("task-status")).to_have_text("Processing", timeout=30_000)
    row = list_page.locator(f"[data-testid=task-row][data-task-id='{running}']")
    expect(row.get_by_test_id("task-status")).to_have_text("Processing", timeout=15_000)
    for page in (list_page, detail_page):
        mark(page)

    restart(server)

    # The run the restart cut short ends (failed: interrupted), on both pages, unreloaded.
    expect(row.get_by_test_id("task-status")).to_have_text("Failed", timeout=60_000)
    expect(detail_page.get_by_test_id("task-status")).to_have_text("Failed", timeout=60_000)

    # A task started after the restart shows on the open list and moves on, live.
    after = start(server, owner, {"steps": 40, "delay": 0.1})
    new_row = list_page.locator(f"[data-testid=task-row][data-task-id='{after}']")
    expect(new_row).to_have_count(1, timeout=15_000)
    expect(new_row.get_by_test_id("task-status")).to_have_text("Processing", timeout=15_000)
    progress = new_row.get_by_test_id("task-progress")
    expect(progress).to_have_text(re.compile(r"^[1-9]\d?%$"), timeout=15_000)
    seen = progress.inner_text()
    expect(progress).not_to_have_text(seen, timeout=15_000)
    expect(new_row.get_by_test_id("task-status")).to_have_text("Completed", timeout=30_000)
    expect(progress).to_have_text("100%")
    for page in (list_page, detail_page):
        assert not_reloaded(page), "the page was reloaded"
        page.context.close()
