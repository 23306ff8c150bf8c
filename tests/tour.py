"""A tour of every page state in chromium, on a server with sample data.

`seed(server)` makes an admin and a user with tasks in every state the pages show (each data
tool completed from `assets/samples/`, a failed task, a running one, example jobs); `tour(...)`
opens each page state in turn and yields its name once the page shows it. The accessibility
and small-screen tests check every state it yields, and `python -m tests.screenshots` takes
the README's pictures from the same tour.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import websockets
from playwright.sync_api import Browser, BrowserContext, Page, expect

from spyglass.storage.base import ALLOWED_TYPES
from spyglass.tools.catalogue import TOOLS
from tests.accounts import Account, make_account
from tests.harness import ROOT, SpyGlassServer

SAMPLES = ROOT / "assets" / "samples"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "UPLOAD_FAILED", "EXPIRED"}


@dataclass
class Seeded:
    admin: Account
    user: Account
    #: tool id → a COMPLETED task of that tool (the user's)
    results: dict[str, str] = field(default_factory=dict)
    failed: str = ""
    running: str = ""


def _auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


def _tool_task(c: httpx.Client, tool_id: str, files: dict[str, str]) -> str:
    agents = [
        a.id for a in TOOLS[tool_id].agents if "baseline" not in a.requires or "baseline" in files
    ]
    task = c.post("/api/tasks", json={"tool_id": tool_id, "agents": agents})
    task.raise_for_status()
    task_id = str(task.json()["task_id"])
    body = {
        "files": {
            key: {"filename": name, "content_type": ALLOWED_TYPES[name[name.rfind(".") :]][0]}
            for key, name in files.items()
        }
    }
    urls = c.post(f"/api/tasks/{task_id}/upload-urls", json=body)
    urls.raise_for_status()
    for key, info in urls.json()["uploads"].items():
        content = (SAMPLES / files[key]).read_bytes()
        put = httpx.put(info["url"], content=content, headers=info["headers"], timeout=30)
        put.raise_for_status()
    c.post(f"/api/tasks/{task_id}/process").raise_for_status()
    return task_id


def _wait_ended(server: SpyGlassServer, account: Account, task_ids: list[str]) -> None:
    async def one(task_id: str) -> None:
        task = httpx.get(
            f"{server.url}/api/tasks/{task_id}", headers=_auth(account), timeout=30
        ).json()
        url = f"{server.ws_url}/ws/{task['state_name']}/tasks/{account.token}/{task_id}"
        async with websockets.connect(url) as ws:
            async for raw in ws:
                if json.loads(raw).get("status") in TERMINAL:
                    return

    async def run() -> None:
        async with asyncio.timeout(180):
            await asyncio.gather(*(one(t) for t in task_ids))

    # In a thread of its own: Playwright's sync API may be running an event loop here.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def seed(server: SpyGlassServer, *, admin_email: str = "", user_email: str = "") -> Seeded:
    """An admin, and a user with a completed task of each tool, a failed one, a running one
    (steps for ten minutes) and a completed example job. Emails are random unless given."""
    admin = make_account(server, admin=True, prefix="admin", email=admin_email)
    user = make_account(server, prefix="ann", email=user_email)
    seeded = Seeded(admin, user)
    with httpx.Client(base_url=server.url, headers=_auth(user), timeout=30) as c:
        seeded.results["profile-my-data"] = _tool_task(
            c,
            "profile-my-data",
            {"primary": "customers.csv", "baseline": "customers_baseline.csv"},
        )
        seeded.results["clean-my-data"] = _tool_task(
            c, "clean-my-data", {"primary": "customers.csv"}
        )
        seeded.results["master-my-data"] = _tool_task(
            c, "master-my-data", {"primary": "orders.xlsx"}
        )
        token = user.token
        boom = c.post(f"/api/testjobs/tasks/{token}/start/boom")
        boom.raise_for_status()
        seeded.failed = boom.json()["task_id"]
        example = c.post(
            f"/api/example_task2/tasks/{token}/start/task2_with_args",
            json={"name": "Ann", "age": 36},
        )
        example.raise_for_status()
        _wait_ended(server, user, [*seeded.results.values(), seeded.failed])
        running = c.post(
            f"/api/testjobs/tasks/{token}/start/steps", json={"steps": 100_000, "delay": 0.5}
        )
        running.raise_for_status()
        seeded.running = running.json()["task_id"]
    return seeded


def cancel(server: SpyGlassServer, account: Account, task_id: str) -> None:
    httpx.post(f"{server.url}/api/tasks/{task_id}/cancel", headers=_auth(account), timeout=30)


def sign_in(page: Page, server: SpyGlassServer, account: Account) -> None:
    page.goto(f"{server.url}/login")
    page.locator("input[name=email]").fill(account.email)
    page.locator("input[name=password]").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in-as")).to_have_text(account.email, timeout=30_000)


def settle(page: Page) -> None:
    """Let the page finish drawing (fonts, charts' animations, live updates)."""
    page.wait_for_load_state("networkidle")
    page.evaluate("document.fonts.ready")
    time.sleep(0.6)


#: Makes a browser context (the tests choose its viewport and options).
NewContext = Callable[[Browser], BrowserContext]


def tour(
    browser: Browser,
    server: SpyGlassServer,
    seeded: Seeded,
    new_context: NewContext,
    *,
    only: set[str] | None = None,
) -> Iterator[tuple[str, Page]]:
    """Open every page state; yield `(name, page)` when each is shown.

    Names: `login`, `register`, `404-signed-out`, `tasks-empty`, `new-task`,
    `new-task-file-chosen`, `new-task-errors`, `tasks`, `tasks-filtered`, `tokens-new`,
    `task-running`, `task-completed`, `task-failed`, `results-<tool>`, `developers`,
    `admin-forbidden`, `admin`, `portal-list`, `portal-task`, `portal-edit`, `404`.
    """

    def wanted(name: str) -> bool:
        return only is None or name in only

    url = server.url
    # -- signed out ----------------------------------------------------------------------
    context = new_context(browser)
    page = context.new_page()
    try:
        if wanted("login"):
            page.goto(f"{url}/login")
            expect(page.get_by_role("button", name="Sign in")).to_be_enabled(timeout=30_000)
            settle(page)
            yield "login", page
        if wanted("register"):
            page.goto(f"{url}/register")
            expect(page.get_by_role("button", name="Create account")).to_be_enabled(timeout=30_000)
            page.locator("input[name=password]").fill("short")
            expect(
                page.locator("[data-testid=password-rule][data-met=false]").first
            ).to_be_visible()
            settle(page)
            yield "register", page
        if wanted("404-signed-out"):
            page.goto(f"{url}/no/such/page")
            expect(page.get_by_test_id("not-found-page")).to_be_visible(timeout=30_000)
            settle(page)
            yield "404-signed-out", page
    finally:
        context.close()

    # -- a new user: nothing yet ---------------------------------------------------------
    newcomer = make_account(server, prefix="new")
    context = new_context(browser)
    page = context.new_page()
    try:
        sign_in(page, server, newcomer)
        if wanted("tasks-empty"):
            page.goto(f"{url}/tasks")
            expect(page.get_by_test_id("tasks-empty")).to_be_visible(timeout=30_000)
            settle(page)
            yield "tasks-empty", page
        if wanted("new-task") or wanted("new-task-file-chosen") or wanted("new-task-errors"):
            page.goto(f"{url}/")
            expect(page.get_by_test_id("start-task")).to_be_visible(timeout=30_000)
            settle(page)
            if wanted("new-task"):
                yield "new-task", page
            page.get_by_test_id("file-primary").set_input_files(str(SAMPLES / "customers.csv"))
            expect(page.get_by_test_id("chosen-primary")).to_contain_text("customers.csv")
            settle(page)
            if wanted("new-task-file-chosen"):
                yield "new-task-file-chosen", page
            page.get_by_test_id("file-primary").set_input_files(
                {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a table"}
            )
            page.get_by_test_id("start-task").click()
            expect(page.get_by_test_id("form-error")).to_be_visible(timeout=15_000)
            settle(page)
            if wanted("new-task-errors"):
                yield "new-task-errors", page
    finally:
        context.close()

    # -- the user with tasks ---------------------------------------------------------------
    user = seeded.user
    context = new_context(browser)
    page = context.new_page()
    try:
        sign_in(page, server, user)
        if wanted("tasks") or wanted("tasks-filtered") or wanted("tokens-new"):
            page.goto(f"{url}/tasks")
            expect(page.locator("[data-testid=task-row]").first).to_be_visible(timeout=30_000)
            settle(page)
            if wanted("tasks"):
                yield "tasks", page
            if wanted("tasks-filtered"):
                # /tasks' filters are the browser's own selects (no list box of the page's
                # to check while open): the list filtered by one, with its Clear filters.
                page.get_by_test_id("filter-status").select_option(label="Completed")
                expect(page.get_by_role("button", name="Clear filters")).to_be_visible()
                settle(page)
                yield "tasks-filtered", page
                page.get_by_role("button", name="Clear filters").click()
                expect(page.get_by_role("button", name="Clear filters")).to_have_count(0)
            if wanted("tokens-new"):
                page.locator("input[name=name]").fill("laptop")
                page.get_by_role("button", name="Issue token").click()
                expect(page.get_by_test_id("new-token")).to_be_visible(timeout=15_000)
                settle(page)
                yield "tokens-new", page
        for name, task_id, ready in (
            ("task-running", seeded.running, "Processing"),
            ("task-completed", seeded.results["clean-my-data"], "Completed"),
            ("task-failed", seeded.failed, "Failed"),
        ):
            if wanted(name):
                page.goto(f"{url}/tasks/{task_id}")
                expect(page.get_by_test_id("task-status")).to_have_text(ready, timeout=30_000)
                settle(page)
                yield name, page
        for tool_id, task_id in seeded.results.items():
            if wanted(f"results-{tool_id}"):
                page.goto(f"{url}/task/{task_id}/results")
                expect(page.get_by_test_id("headline")).to_be_visible(timeout=30_000)
                settle(page)
                yield f"results-{tool_id}", page
        if wanted("developers"):
            page.goto(f"{url}/developers")
            expect(page.get_by_test_id("start-example_task-task1")).to_be_visible(timeout=30_000)
            settle(page)
            yield "developers", page
        if wanted("admin-forbidden"):
            page.goto(f"{url}/admins/tasks/")  # the server's 403 page for a non-admin
            expect(page.get_by_test_id("forbidden")).to_be_visible(timeout=30_000)
            settle(page)
            yield "admin-forbidden", page
    finally:
        context.close()

    # -- the admin -------------------------------------------------------------------------
    context = new_context(browser)
    page = context.new_page()
    try:
        sign_in(page, server, seeded.admin)
        if wanted("admin"):
            page.goto(f"{url}/admins/tasks/")
            expect(page.locator("[data-testid=admin-task-row]").first).to_be_visible(timeout=30_000)
            expect(page.get_by_test_id("credits-row").first).to_be_visible(timeout=30_000)
            settle(page)
            yield "admin", page
        if wanted("audit"):
            # A token issued and revoked: the log has rows to show, whatever ran before.
            with httpx.Client(base_url=url, headers=_auth(seeded.user), timeout=30) as c:
                issued = c.post("/api/tokens", json={"name": "audited"})
                issued.raise_for_status()
                c.delete(f"/api/tokens/{issued.json()['id']}").raise_for_status()
            page.goto(f"{url}/admins/audit")
            expect(page.get_by_test_id("audit-row").first).to_be_visible(timeout=30_000)
            settle(page)
            yield "audit", page
        if wanted("portal-list"):
            page.goto(f"{url}/admin/task/list")
            # Paged, and the shared server holds every test's tasks: any row's link will do.
            rows = page.locator("a[href*='/admin/task/detail']")
            expect(rows.first).to_be_visible(timeout=30_000)
            settle(page)
            yield "portal-list", page
        if wanted("portal-task"):
            page.goto(f"{url}/admin/task/detail?pk={seeded.results['profile-my-data']}")
            expect(page.locator("body")).to_contain_text("unified-profiler", timeout=30_000)
            settle(page)
            yield "portal-task", page
        if wanted("portal-edit"):
            page.goto(f"{url}/admin/user/edit?pk={user.id}")
            expect(page.locator("input[name=credits]")).to_be_visible(timeout=30_000)
            settle(page)
            yield "portal-edit", page
        if wanted("404"):
            page.goto(f"{url}/tasks-that-are-not-here")
            expect(page.get_by_test_id("not-found-page")).to_be_visible(timeout=30_000)
            settle(page)
            yield "404", page
    finally:
        context.close()


#: Every name `tour` yields, in order.
STATES = (
    "login",
    "register",
    "404-signed-out",
    "tasks-empty",
    "new-task",
    "new-task-file-chosen",
    "new-task-errors",
    "tasks",
    "tasks-filtered",
    "tokens-new",
    "task-running",
    "task-completed",
    "task-failed",
    *(f"results-{tool_id}" for tool_id in TOOLS),
    "developers",
    "admin-forbidden",
    "admin",
    "audit",
    "portal-list",
    "portal-task",
    "portal-edit",
    "404",
)
