"""Sign-up, sign-in, sign-out and page guards in Debian chromium."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from spyglass.auth.service import SESSION_COOKIE, SIGNED_UP
from tests.accounts import Account, make_account
from tests.conftest import BOOTSTRAP_ADMIN
from tests.harness import SpyGlassServer
from tests.test_tasks_page import browser, sign_in  # noqa: F401  (shared browser fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:  # noqa: F811
    ctx = browser.new_context()
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def test_signed_out_visitors_are_sent_to_login(page: Page, server: SpyGlassServer) -> None:
    for path in ("/tasks", "/", "/admins/tasks"):
        page.goto(f"{server.url}{path}")
        expect(page).to_have_url(f"{server.url}/login?next={path}", timeout=15_000)
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_test_id("task-row")).to_have_count(0)


def test_register_then_sign_in_sign_out_and_back_in(page: Page, server: SpyGlassServer) -> None:
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    page.goto(f"{server.url}/register")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill("a long passphrase")
    page.locator("input[name=confirm]").fill("a long passphrase")
    page.get_by_role("button", name="Create account").click()
    # Registering does not sign in (that would tell a stranger whether the email was new).
    expect(page).to_have_url(f"{server.url}/login?registered=1", timeout=15_000)
    expect(page.get_by_test_id("form-notice")).to_have_text(SIGNED_UP)
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)

    sign_in(page, server, email, "a long passphrase")
    expect(page.get_by_test_id("signed-in-as")).to_have_text(email, timeout=15_000)
    expect(page).to_have_url(f"{server.url}/tasks")

    page.reload()  # the session survives a reload
    expect(page.get_by_test_id("signed-in-as")).to_have_text(email, timeout=15_000)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.url}/login", timeout=15_000)
    page.goto(f"{server.url}/tasks")
    expect(page).to_have_url(f"{server.url}/login?next=/tasks", timeout=15_000)

    sign_in(page, server, email, "a long passphrase")
    expect(page.get_by_test_id("signed-in-as")).to_have_text(email, timeout=15_000)

    db = sqlite3.connect(server.data_dir / "spyglass.db")
    (stored,) = db.execute("SELECT password_hash FROM user WHERE email=?", (email,)).fetchone()
    assert stored.startswith("$argon2") and "a long passphrase" not in stored


def test_register_errors_are_shown(page: Page, server: SpyGlassServer) -> None:
    cases = [
        ("someone@localhost", "long enough pw", "long enough pw", "valid email"),
        ("short@example.com", "short", "short", "at least 12"),
        ("common@example.com", "qwertyuiop123", "qwertyuiop123", "too common"),
        ("differ@example.com", "long enough pw", "other long pw", "differ"),
    ]
    page.goto(f"{server.url}/register")
    for email, password, confirm, message in cases:
        page.locator("input[name=email]").fill(email)
        page.locator("input[name=password]").fill(password)
        page.locator("input[name=confirm]").fill(confirm)
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_test_id("form-error")).to_contain_text(message, timeout=10_000)
    expect(page).to_have_url(re.compile(r"/register/?$"))


def test_register_answers_the_same_for_a_taken_email(page: Page, server: SpyGlassServer) -> None:
    """The page does not tell a stranger that an account exists."""
    existing = make_account(server, prefix="taken")
    page.goto(f"{server.url}/register")
    page.locator("input[name=email]").fill(existing.email)
    page.locator("input[name=password]").fill("another long passphrase")
    page.locator("input[name=confirm]").fill("another long passphrase")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{server.url}/login?registered=1", timeout=15_000)
    expect(page.get_by_test_id("form-notice")).to_have_text(SIGNED_UP)
    expect(page.get_by_test_id("form-error")).to_have_count(0)
    # The account is unchanged: its own password still signs in, the stranger's does not.
    sign_in(page, server, existing.email, "another long passphrase")
    expect(page.get_by_test_id("form-error")).to_have_text("Wrong email or password")
    sign_in(page, server, existing.email, existing.password)
    expect(page.get_by_test_id("signed-in-as")).to_have_text(existing.email, timeout=15_000)


def test_register_form_shows_the_password_rules_as_you_type(
    page: Page, server: SpyGlassServer
) -> None:
    page.goto(f"{server.url}/register")
    password = page.locator("input[name=password]")

    def met(rule: str) -> Locator:
        return page.locator(f"[data-testid=password-rule][data-rule={rule}]")

    expect(met("length")).to_have_attribute("data-met", "false", timeout=15_000)
    expect(met("length")).to_contain_text("At least 12 characters")
    password.press_sequentially("password")  # typed, as a person would
    expect(met("common")).to_have_attribute("data-met", "false", timeout=10_000)
    expect(met("length")).to_have_attribute("data-met", "false")
    password.fill("            ")  # twelve spaces
    expect(met("length")).to_have_attribute("data-met", "true", timeout=10_000)
    expect(met("varied")).to_have_attribute("data-met", "false")
    password.fill("qwertyuiop123")  # long enough, but on the common-passwords list
    expect(met("common")).to_have_attribute("data-met", "false", timeout=10_000)
    expect(met("varied")).to_have_attribute("data-met", "true")
    password.fill("violet staircase at noon")
    for rule in ("length", "common", "varied"):
        expect(met(rule)).to_have_attribute("data-met", "true", timeout=10_000)


def test_session_cookie_is_set_by_the_server_and_hidden_from_scripts(
    page: Page, context: BrowserContext, server: SpyGlassServer
) -> None:
    account = make_account(server, prefix="cookie")
    sign_in(page, server, account.email, account.password)
    expect(page.get_by_test_id("signed-in-as")).to_have_text(account.email, timeout=15_000)
    (cookie,) = [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["secure"] is False  # plain http, SPYGLASS_SECURE_COOKIES unset
    assert SESSION_COOKIE not in page.evaluate("document.cookie")
    with httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: cookie["value"]}) as c:
        assert c.get("/api/session").json()["email"] == account.email

    page.goto(f"{server.url}/admins/tasks/")  # a non-admin: the server answers 403
    expect(page.get_by_text("This page is for admins, operators and viewers only")).to_be_visible()
    page.get_by_role("link", name="Go to your tasks").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(account.email, timeout=15_000)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.url}/login", timeout=15_000)
    assert not [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    # The session ended on the server too: the old cookie no longer signs anyone in.
    with httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: cookie["value"]}) as c:
        assert c.get("/api/session").status_code == 401
        assert c.get("/tasks/").status_code == 303


def test_wrong_password_then_rate_limit(page: Page, server: SpyGlassServer) -> None:
    account: Account = make_account(server, prefix="locked")
    for _ in range(5):
        sign_in(page, server, account.email, "wrong password!")
        expect(page.get_by_test_id("form-error")).to_have_text(
            "Wrong email or password", timeout=10_000
        )
    sign_in(page, server, account.email, account.password)  # even the right one is refused now
    expect(page.get_by_test_id("form-error")).to_contain_text(
        "Too many failed sign-ins", timeout=10_000
    )
    expect(page.get_by_test_id("signed-in-as")).to_have_count(0)


def test_login_next_only_goes_to_local_pages(page: Page, server: SpyGlassServer) -> None:
    account = make_account(server, prefix="next")
    page.goto(f"{server.url}/login?next=//evil.example.com/")
    page.locator("input[name=email]").fill(account.email)
    page.locator("input[name=password]").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/tasks", timeout=15_000)


def test_bootstrap_admin_from_the_environment(page: Page, server: SpyGlassServer) -> None:
    email, password = BOOTSTRAP_ADMIN
    sign_in(page, server, email, password)
    expect(page.get_by_test_id("signed-in-as")).to_have_text(email, timeout=15_000)
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_test_id("stat-running")).to_be_visible(timeout=15_000)
    db = sqlite3.connect(server.data_dir / "spyglass.db")
    (role, stored) = db.execute(
        "SELECT role, password_hash FROM user WHERE email=?", (email,)
    ).fetchone()
    assert role == "admin" and stored.startswith("$argon2") and password not in stored
