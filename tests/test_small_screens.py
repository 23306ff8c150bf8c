"""Every page state on a phone (390×844) in Debian chromium: nothing is wider than the screen
(tables become cards or scroll in their own box, commands wrap, the top bar wraps); and the
admin dashboard fits a 1440×900 window."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, BrowserContext

from tests.harness import SpyGlassServer
from tests.test_tasks_page import browser  # noqa: F401  (shared browser fixture)
from tests.tour import STATES, Seeded, tour

pytestmark = pytest.mark.browser

WIDTH = "[document.documentElement.scrollWidth, window.innerWidth]"


def phone(browser: Browser) -> BrowserContext:  # noqa: F811
    return browser.new_context(viewport={"width": 390, "height": 844})


def laptop(browser: Browser) -> BrowserContext:  # noqa: F811
    return browser.new_context(viewport={"width": 1440, "height": 900})


def test_no_page_state_scrolls_sideways_on_a_phone(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
    seeded: Seeded,
) -> None:
    seen: list[str] = []
    too_wide: dict[str, int] = {}
    for name, page in tour(browser, server, seeded, phone):
        seen.append(name)
        scroll_width, inner_width = page.evaluate(WIDTH)
        assert inner_width == 390
        if scroll_width > inner_width:
            too_wide[name] = scroll_width
    assert seen == list(STATES)
    assert too_wide == {}


def test_the_admin_dashboard_fits_a_laptop_window(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
    seeded: Seeded,
) -> None:
    for name, page in tour(browser, server, seeded, laptop, only={"admin"}):
        scroll_width, inner_width = page.evaluate(WIDTH)
        assert (name, scroll_width) == ("admin", inner_width)
