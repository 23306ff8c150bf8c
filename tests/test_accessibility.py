"""axe-core on every page state, in Debian chromium: no critical and no serious violation.

axe-core comes from the npm registry (pinned in the Makefile, installed into `.tools`) and is
injected by Playwright, so the check runs offline. Only these contexts bypass the pages'
Content-Security-Policy (to inject it); `tests/test_security_pages.py` checks the pages
under their policy. Keyboard use is checked below: signing in, the skip link, starting a job.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.accounts import make_account
from tests.harness import ROOT, SpyGlassServer
from tests.test_tasks_page import browser  # noqa: F401  (shared browser fixture)
from tests.tour import STATES, Seeded, tour

pytestmark = pytest.mark.browser

AXE = ROOT / ".tools" / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary.split("\\n")[1]),
  }));
}"""
BLOCKING = ("critical", "serious")


def axe_context(browser: Browser) -> BrowserContext:  # noqa: F811
    # bypass_csp: the axe script is added to the page by Playwright; only in this test.
    return browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)


def test_axe_finds_nothing_critical_or_serious_on_any_page_state(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
    seeded: Seeded,
) -> None:
    assert AXE.is_file(), "axe-core is missing: run `make install`"
    seen: list[str] = []
    found: dict[str, list[dict[str, Any]]] = {}
    for name, page in tour(browser, server, seeded, axe_context):
        seen.append(name)
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(RUN_AXE)
        blocking = [v for v in violations if v["impact"] in BLOCKING]
        if blocking:
            found[name] = blocking
    assert seen == list(STATES)
    report = "\n".join(
        f"{name}: [{v['impact']}] {v['id']} ({v['help']}): {v['nodes'][:3]}"
        for name, violations in found.items()
        for v in violations
    )
    assert not found, report


def test_the_pages_work_from_the_keyboard(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
) -> None:
    account = make_account(server, prefix="keys")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        # Sign in with the keyboard only: the fields in order, Enter submits.
        page.goto(f"{server.url}/login")
        expect(page.get_by_role("button", name="Sign in")).to_be_enabled(timeout=30_000)
        page.get_by_label("Email").focus()
        page.keyboard.type(account.email)
        page.keyboard.press("Tab")
        expect(page.get_by_label("Password")).to_be_focused()
        page.keyboard.type(account.password)
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("signed-in-as")).to_have_text(account.email, timeout=30_000)

        # The first Tab reaches the skip link, which takes focus past the bar to the content.
        page.goto(f"{server.url}/developers")
        expect(page.get_by_test_id("start-example_task-task1")).to_be_visible(timeout=30_000)
        page.keyboard.press("Tab")
        skip = page.get_by_role("button", name="Skip to the content")
        expect(skip).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()

        # Then Tab reaches each example job's Run button, and Enter starts it.
        run = page.get_by_test_id("start-example_task-task1")
        for _ in range(20):
            page.keyboard.press("Tab")
            if run.evaluate("e => e === document.activeElement"):
                break
        expect(run).to_be_focused()
        page.keyboard.press("Enter")
        expect(page).to_have_url(f"{server.url}/tasks", timeout=15_000)
        row = page.locator("[data-testid=task-row][data-task-name=task1]")
        expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=30_000)

        # A filter (the browser's own select) changes with the keyboard and keeps the focus.
        status = page.get_by_test_id("filter-status")
        status.focus()
        page.keyboard.press("ArrowDown")
        expect(page).to_have_url(re.compile(r"[?&]status=\w+"), timeout=15_000)
        expect(status).not_to_have_value("all")  # "Any status"
        expect(status).to_be_focused()
    finally:
        context.close()
