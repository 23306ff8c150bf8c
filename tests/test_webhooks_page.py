"""The webhooks page in Debian chromium: register an endpoint with its events (labelled
controls), the secret shown once, send a test event to a real receiver, the delivery log,
send again; and the page fits a 390 px phone screen."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from standardwebhooks.webhooks import Webhook

from tests.accounts import Account, make_account
from tests.harness import SpyGlassServer
from tests.test_tasks_page import browser, sign_in  # noqa: F401  (shared browser fixture)
from tests.test_webhooks import Receiver

pytestmark = pytest.mark.browser


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def signed_in(browser: Browser, server: SpyGlassServer, who: Account, **size: int) -> Page:  # noqa: F811
    context = browser.new_context(**({"viewport": size} if size else {}))
    page = context.new_page()
    sign_in(page, server, who.email, who.password)
    expect(page.get_by_test_id("signed-in-as")).to_have_text(who.email, timeout=30_000)
    return page


def test_register_send_a_test_event_read_the_log_and_send_again(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
    receiver: Receiver,
) -> None:
    who = make_account(server, prefix="hooks-page")
    page = signed_in(browser, server, who)
    try:
        page.get_by_role("link", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Webhooks")).to_be_visible(timeout=15_000)
        expect(page.get_by_text("No endpoints yet.")).to_be_visible()
        page.get_by_label("Endpoint URL").fill(receiver.url)
        page.get_by_label("Description").fill("my receiver")
        page.get_by_label("completed", exact=True).check()
        page.get_by_label("failed", exact=True).check()
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.get_by_test_id("webhook-secret")
        expect(secret).to_contain_text("whsec_", timeout=15_000)
        secret_text = secret.inner_text()
        card = page.get_by_test_id("webhook-endpoint")
        expect(card).to_have_count(1)
        expect(card).to_contain_text(receiver.url)
        expect(card).to_contain_text("task.completed, task.failed")
        page.get_by_role("button", name="Done").click()
        expect(page.get_by_test_id("webhook-secret")).to_have_count(0)

        card.get_by_role("button", name="Send test event").click()
        expect(page.get_by_role("heading", name="Delivery log")).to_be_visible(timeout=15_000)
        row = page.get_by_test_id("webhook-delivery")
        expect(row).to_have_count(1, timeout=15_000)
        for _ in range(50):  # the log is read when asked (no timer on the page)
            page.get_by_role("button", name="Refresh").click()
            if row.get_attribute("data-state") == "succeeded":
                break
            page.wait_for_timeout(200)
        expect(row).to_have_attribute("data-state", "succeeded")
        expect(row).to_contain_text("webhook.test")
        assert len(receiver.got) == 1
        got = receiver.got[0]
        headers = {k.lower(): v for k, v in got.headers.items()}
        assert Webhook(secret_text).verify(got.body, headers)["type"] == "webhook.test"

        row.get_by_role("button", name="Send again").click()
        for _ in range(50):
            if len(receiver.got) == 2:
                break
            page.wait_for_timeout(200)
        assert len(receiver.got) == 2
        page.get_by_role("button", name="Refresh").click()
        expect(row.get_by_role("cell").nth(2)).to_have_text("2", timeout=15_000)
        row.get_by_role("button", name="Payload").click()
        expect(page.locator("code").filter(has_text='"type": "webhook.test"')).to_have_count(1)
        assert json.loads(receiver.got[1].body)["type"] == "webhook.test"
    finally:
        page.context.close()


def test_a_refused_target_is_explained_and_the_page_fits_a_phone(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
) -> None:
    who = make_account(server, prefix="hooks-phone")
    page = signed_in(browser, server, who, width=390, height=844)
    try:
        page.goto(f"{server.url}/webhooks")
        expect(page.get_by_role("heading", name="Webhooks")).to_be_visible(timeout=15_000)
        page.get_by_label("Endpoint URL").fill("https://user:pw@example.com/hook")
        page.get_by_label("started", exact=True).check()
        page.get_by_role("button", name="Add endpoint").click()
        expect(page.get_by_test_id("webhook-error")).to_contain_text(
            "no user name or password", timeout=15_000
        )
        expect(page.get_by_test_id("webhook-endpoint")).to_have_count(0)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        for name in ("Endpoint URL", "Description"):
            box = page.get_by_label(name).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    finally:
        page.context.close()
