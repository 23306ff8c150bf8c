"""Another site against a signed-in admin, and the pages under their Content-Security-Policy,
in Debian chromium.

The attacker's pages are served by this test from a second origin: another port of 127.0.0.1
(a different origin, but the same site: the browser sends the app's SameSite=Lax cookies with
its requests, and cookies are not kept apart by port).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from spyglass.auth.service import AuthService
from spyglass.tasks.store import make_engine
from tests.accounts import Account, make_account
from tests.harness import ROOT, SpyGlassServer
from tests.test_tasks_page import browser, sign_in  # noqa: F401  (shared browser fixture)

pytestmark = pytest.mark.browser


class AttackerSite:
    """A plain web server on another port of this machine, serving the pages it is given."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def attacker() -> Iterator[AttackerSite]:
    site = AttackerSite()
    site.thread.start()
    yield site
    site.httpd.shutdown()
    site.httpd.server_close()


@pytest.fixture
def admin(server: SpyGlassServer) -> Account:
    return make_account(server, admin=True, prefix="sec-admin")


@pytest.fixture
def victim(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="victim")


@pytest.fixture
def admin_context(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
    admin: Account,
) -> Iterator[BrowserContext]:
    """A browser where the admin is signed in, and has opened the portal (its CSRF cookie)."""
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, server, admin.email, admin.password)
    expect(page.get_by_test_id("signed-in-as")).to_have_text(admin.email, timeout=30_000)
    page.goto(f"{server.url}/admin/user/edit?pk={admin.id}")  # its own record: on any page count
    expect(page.locator("form")).to_contain_text("Email", timeout=15_000)
    expect(page.locator("input[name=email]")).to_have_value(admin.email)
    yield context
    context.close()


def stored_user(server: SpyGlassServer, account: Account) -> tuple[bool, int]:
    async def run() -> tuple[bool, int]:
        engine = make_engine(f"sqlite:///{server.data_dir / 'spyglass.db'}")
        try:
            user = await AuthService(engine).get_user(account.id)
            assert user is not None
            return user.is_admin, user.credits
        finally:
            engine.dispose()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # Playwright's loop runs here
        return pool.submit(asyncio.run, run()).result()


ATTACK = """<!doctype html>
<html><body>
<h1>Cute cats</h1>
<form id="forge" method="POST" enctype="multipart/form-data" action="{app}/admin/user/edit?pk={pk}">
  <input type="hidden" name="csrftoken" id="csrftoken">
  <input name="email" value="{email}">
  <input name="role" value="admin">
  <input name="credits" value="777777">
</form>
<script>
const APP = "{app}";
async function readPortal() {{
  try {{
    const r = await fetch(APP + "/admin/user/edit?pk={pk}", {{credentials: "include"}});
    const body = await r.text();
    const token = /name="csrftoken" value="([^"]+)"/.exec(body);
    return {{read: true, status: r.status, token: token ? token[1] : null}};
  }} catch (e) {{
    return {{read: false, error: String(e)}};
  }}
}}
function cookieToken() {{
  const m = /starlette_admin_csrftoken=([^;]+)/.exec(document.cookie);
  return m ? decodeURIComponent(m[1]) : null;
}}
function forgeForm(token) {{
  document.getElementById("csrftoken").value = token;
  document.getElementById("forge").submit();
}}
async function forgeFetch(token) {{
  const data = new FormData(document.getElementById("forge"));
  data.set("csrftoken", token);
  try {{
    await fetch(APP + "/admin/user/edit?pk={pk}",
                {{method: "POST", body: data, mode: "no-cors", credentials: "include"}});
  }} catch (e) {{
    // The request went out; only its (opaque) answer is withheld from this page.
  }}
  return "sent";
}}
function openSocket(path) {{
  return new Promise((resolve) => {{
    const ws = new WebSocket(APP.replace("http", "ws") + path);
    ws.onopen = () => {{ ws.close(); resolve("open"); }};
    ws.onerror = () => resolve("refused");
  }});
}}
</script>
</body></html>
"""


def test_a_page_on_another_origin_can_neither_read_nor_forge_nor_hijack_the_socket(
    admin_context: BrowserContext,
    server: SpyGlassServer,
    attacker: AttackerSite,
    victim: Account,
) -> None:
    before = stored_user(server, victim)
    assert before == (False, 1000)
    attacker.pages["/cats.html"] = ATTACK.format(app=server.url, pk=victim.id, email=victim.email)
    page = admin_context.new_page()
    page.goto(f"{attacker.url}/cats.html")

    # (i) Reading the portal with the admin's cookies: no CORS answer, the browser blocks it.
    read = page.evaluate("readPortal()")
    assert read["read"] is False, read

    # (ii) The forged edit, even with a valid CSRF token. Cookies are shared across ports, so
    # this page can read starlette-admin's double-submit cookie; the origin check must hold.
    own_tab = admin_context.pages[0]
    own_tab.goto(f"{server.url}/admin/user/edit?pk={victim.id}")
    token = page.evaluate("cookieToken()") or own_tab.locator(
        "input[name=csrftoken]"
    ).get_attribute("value")
    assert token
    assert page.evaluate("t => forgeFetch(t)", token) == "sent"
    with page.expect_response(
        lambda r: r.request.method == "POST" and "/admin/user/edit" in r.url
    ) as answer:
        page.evaluate("t => forgeForm(t)", token)
    response = answer.value
    assert response.status == 403, response.status
    assert json.loads(response.text())["error_code"] == "ORIGIN_NOT_ALLOWED"
    assert stored_user(server, victim) == before  # still a normal user with 1000 credits

    # (iii) Cross-site WebSocket hijacking: Reflex's event socket and the task sockets.
    page.goto(f"{attacker.url}/cats.html")
    assert page.evaluate("p => openSocket(p)", "/_event/?EIO=4&transport=websocket") == "refused"
    assert page.evaluate("p => openSocket(p)", "/ws/testjobs/task/ws/x") == "refused"

    # The admin's own tab, same origin, still does what the portal is for.
    own_tab.goto(f"{server.url}/admin/user/edit?pk={victim.id}")
    own_tab.locator("input[name=credits]").fill("1500")
    own_tab.locator("button.btn-primary[type=submit]").click()
    expect(own_tab).to_have_url(f"{server.url}/admin/user/list", timeout=15_000)
    assert stored_user(server, victim) == (False, 1500)


def test_the_dashboard_does_not_load_inside_another_sites_frame(
    admin_context: BrowserContext, server: SpyGlassServer, attacker: AttackerSite
) -> None:
    attacker.pages["/frame.html"] = (
        f'<!doctype html><iframe id="f" src="{server.url}/admins/tasks/" '
        'width="900" height="600"></iframe>'
    )
    page = admin_context.new_page()
    with page.expect_console_message(
        lambda m: "frame-ancestors" in m.text, timeout=20_000
    ) as refused:
        page.goto(f"{attacker.url}/frame.html")
    assert "frame-ancestors 'none'" in refused.value.text  # blocked by the page's own policy
    frame = page.frame_locator("#f")
    expect(frame.get_by_test_id("stat-running")).to_have_count(0)
    # The same dashboard in its own tab does load (the check above is not a broken page).
    own = admin_context.new_page()
    own.goto(f"{server.url}/admins/tasks/")
    expect(own.get_by_test_id("stat-running")).to_be_visible(timeout=20_000)


# -- the pages under their Content-Security-Policy -----------------------------------------------

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " " + e.blockedURI);
});
"""


class Watch:
    """Every CSP complaint and every request that leaves the app's origin, on every page."""

    def __init__(self, page: Page, origin: str) -> None:
        self.violations: list[str] = []
        self.outside: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.violations.append(f"{page.url}: {e}"))
        page.on("request", lambda r: self._request(page, r.url, origin))

    def _console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "CSP violation" in text or "Refused to" in text:
            self.violations.append(f"{message.page.url if message.page else ''}: {text}")

    def _request(self, page: Page, url: str, origin: str) -> None:
        if not url.startswith((origin, "data:", "blob:")):
            self.outside.append(f"{page.url}: {url}")


def test_every_page_works_under_its_policy_without_a_violation(
    browser: Browser,  # noqa: F811
    server: SpyGlassServer,
    admin: Account,
    victim: Account,
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(REPORT_VIOLATIONS)
    page = context.new_page()
    watch = Watch(page, server.url)
    try:
        page.goto(f"{server.url}/register")
        expect(page.locator("input[name=email]")).to_be_visible(timeout=30_000)
        page.goto(f"{server.url}/login")
        expect(page.locator("input[name=password]")).to_be_visible(timeout=30_000)
        sign_in(page, server, admin.email, admin.password)
        expect(page.get_by_test_id("signed-in-as")).to_have_text(admin.email, timeout=30_000)

        # New task: choose, upload straight to the presigned URL, process (rx.call_script).
        page.goto(f"{server.url}/")
        expect(page.get_by_test_id("start-task")).to_be_visible(timeout=30_000)
        page.get_by_test_id("tool-clean-my-data").click()
        samples = ROOT / "assets" / "samples"
        page.get_by_test_id("file-primary").set_input_files(str(samples / "customers.csv"))
        page.get_by_test_id("start-task").click()
        expect(page).to_have_url(f"{server.url}/tasks", timeout=30_000)
        # An admin's list holds everyone's tasks, newest first: this run is the top one.
        row = page.locator("[data-testid=task-row][data-task-name='clean-my-data']").first
        expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=60_000)
        task_id = row.get_attribute("data-task-id")

        page.goto(f"{server.url}/tasks/{task_id}")
        expect(page.locator("[data-testid=timeline-row][data-state=done]")).to_have_count(8)
        page.goto(f"{server.url}/task/{task_id}/results")
        expect(page.get_by_test_id("headline")).to_be_visible(timeout=30_000)
        chart = page.locator("[data-testid=chart-rows] .recharts-bar-rectangle")
        expect(chart.first).to_be_visible(timeout=10_000)

        page.goto(f"{server.url}/admins/tasks/")
        expect(page.get_by_test_id("stat-running")).to_be_visible(timeout=30_000)
        expect(page.locator(f"[data-task-id='{task_id}']")).to_have_count(1, timeout=10_000)

        page.goto(f"{server.url}/admin/task/list")  # the portal: its table is drawn by script
        expect(page.locator(f"a[href*='{task_id}']").first).to_be_visible(timeout=15_000)
        page_size = page.locator("select[aria-label='Page size']")  # an inline onchange handler
        page_size.select_option(index=1)
        expect(page).to_have_url(re.compile(r"page_size=25"), timeout=15_000)
        page.goto(f"{server.url}/admin/user/edit?pk={victim.id}")
        expect(page.locator("input[name=credits]")).to_have_value("1000", timeout=15_000)

        page.goto(f"{server.url}/developers")  # the example jobs
        expect(page.get_by_test_id("start-example_task-task1")).to_be_visible(timeout=30_000)
        page.goto(f"{server.url}/no/such/page")  # the 404 page (and the favicon)
        expect(page.get_by_test_id("not-found-page")).to_be_visible(timeout=30_000)

        page.goto(f"{server.url}/docs")  # Swagger UI, from this app, with its operations
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("SpyGlass", timeout=30_000)
        expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
    finally:
        context.close()
    assert watch.violations == []
    assert watch.outside == []
