"""What every visitor meets besides the pages themselves: the 404 page, the favicon, and the
model portal's readable fields and save buttons."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.accounts import make_account
from tests.harness import SpyGlassServer
from tests.test_tasks_page import browser  # noqa: F401  (shared browser fixture)
from tests.tour import Seeded, sign_in

pytestmark = pytest.mark.browser


def test_an_unknown_address_answers_404_with_the_apps_own_page(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
) -> None:
    answer = httpx.get(f"{server.url}/no/such/page", timeout=30)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{server.url}/no/such/page")
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible(timeout=30_000)
        expect(page).to_have_title("Page not found · SpyGlass")
        page.get_by_role("link", name="Go to your tasks").click()
        expect(page).to_have_url(f"{server.url}/login?next=/tasks", timeout=15_000)
    finally:
        context.close()


def test_the_favicon_is_served(server: SpyGlassServer) -> None:
    answer = httpx.get(f"{server.url}/favicon.ico", timeout=30)
    assert answer.status_code == 200
    assert answer.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_built_scripts_come_compressed_and_cached_for_a_year(server: SpyGlassServer) -> None:
    page = httpx.get(f"{server.url}/login/", headers={"Accept-Encoding": "gzip"}, timeout=30)
    assert page.status_code == 200
    assert "immutable" not in page.headers.get("cache-control", "")  # a page may change
    scripts = set(re.findall(r'"(/assets/[^"]+\.js)"', page.text))  # preloads and imports
    assert scripts
    for path in scripts:
        answer = httpx.get(f"{server.url}{path}", headers={"Accept-Encoding": "gzip"}, timeout=30)
        assert answer.status_code == 200
        if len(answer.content) >= 256:  # the build leaves smaller files as they are
            assert answer.headers["content-encoding"] == "gzip", path
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    missing = httpx.get(f"{server.url}/assets/no-such-file.js", timeout=30)
    assert "immutable" not in missing.headers.get("cache-control", "")


@pytest.fixture
def admin_page(browser: Browser, server: SpyGlassServer, seeded: Seeded) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    sign_in(page, server, seeded.admin)
    yield page
    context.close()


def test_the_portal_shows_a_tasks_agents_as_names(
    admin_page: Page, server: SpyGlassServer, seeded: Seeded
) -> None:
    task_id = seeded.results["profile-my-data"]
    admin_page.goto(f"{server.url}/admin/task/detail?pk={task_id}")
    agents = admin_page.locator(".badges-list .badge")
    expect(agents.first).to_be_visible(timeout=30_000)
    assert agents.all_inner_texts()[:2] == ["unified-profiler", "score-risk"]
    assert '["unified-profiler"' not in admin_page.content()
    admin_page.goto(f"{server.url}/admin/task/list")
    # The list is paged and the shared server holds every test's tasks: any row will do.
    expect(admin_page.locator("a[href*='/admin/task/detail']").first).to_be_visible(timeout=30_000)
    expect(admin_page.locator(".json-dict, .json-array")).to_have_count(0)  # no JSON trees


def test_the_portals_save_buttons_all_work(admin_page: Page, server: SpyGlassServer) -> None:
    member = make_account(server, prefix="portal")
    edit = f"{server.url}/admin/user/edit?pk={member.id}"
    admin_page.goto(edit)
    expect(admin_page.locator("input[name=credits]")).to_have_value("1000", timeout=30_000)
    # Users cannot be created here, so the form offers no "Save and add another" (a 403).
    expect(admin_page.get_by_role("button", name="Save and add another")).to_have_count(0)
    admin_page.locator("input[name=credits]").fill("1200")
    admin_page.get_by_role("button", name="Save and continue editing").click()
    expect(admin_page).to_have_url(edit, timeout=15_000)
    expect(admin_page.locator("input[name=credits]")).to_have_value("1200")
    admin_page.locator("input[name=credits]").fill("1300")
    admin_page.get_by_role("button", name="Save", exact=True).click()
    expect(admin_page).to_have_url(f"{server.url}/admin/user/list", timeout=15_000)
    admin_page.goto(edit)
    expect(admin_page.locator("input[name=credits]")).to_have_value("1300", timeout=30_000)
