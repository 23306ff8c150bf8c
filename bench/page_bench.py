"""How light and quick the pages are, in Debian chromium against a real server (`make bench`,
or `python -m bench.page_bench`).

Prints, each beside its target:

- the JavaScript `/tasks` loads: the sum of its script responses as the browser received
  them (the bytes on the wire; whether the server compressed them, and their cache headers);
- time to usable for `/tasks`: navigation start → the task list rendered and a button (bulk
  delete) clickable (the page's socket has delivered the rows), median of N cold loads;
- Start → first progress shown for a data task: the click on Start on New task with a small
  CSV → the first progress percentage above 0 % on the page it lands on (`/tasks`), beside the
  floor: the same task's first progress message on the API socket, in the same run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets.sync.client
from playwright.sync_api import Browser, BrowserContext, sync_playwright

from tests.accounts import Account, make_account, session_cookie, set_credits
from tests.harness import CHROMIUM_ARGS, ROOT, SpyGlassServer

TARGET_JS_KB = 200
TARGET_USABLE_MS = 1000
TARGET_FIRST_PROGRESS_MS = 300
TOOL = "profile-my-data"
CSV = ROOT / "assets" / "samples" / "customers.csv"
TOOLS_STATE = "data_tools"

#: In the page, from its first script on: the wall-clock moment `/tasks` is usable (rows
#: shown, a row's button enabled) and, once Start is clicked, the click and the first
#: progress above 0 % of a row that was not there before.
WATCHER = """
(() => {
  const marks = JSON.parse(sessionStorage.getItem("bench") || "{}");
  const save = () => sessionStorage.setItem("bench", JSON.stringify(marks));
  window.__bench = marks;
  const check = () => {
    if (!marks.usable && location.pathname.startsWith("/tasks")) {
      const row = document.querySelector("[data-testid=task-row]");
      const button = document.querySelector("[data-testid=bulk-delete]:not([disabled])");
      if (row && button && button.offsetParent !== null) {
        marks.usable = performance.now(); marks.usable_at = Date.now(); save();
      }
    }
    if (marks.clicked && !marks.progress) {
      if (!marks.landed && location.pathname.startsWith("/tasks")) {
        marks.landed = Date.now(); save();
      }
      const known = new Set(marks.known || []);
      for (const row of document.querySelectorAll("[data-testid=task-row]")) {
        if (known.has(row.dataset.taskId)) continue;
        if (!marks.row) { marks.row = Date.now(); save(); }
        const pct = row.querySelector("[data-testid=task-progress]");
        if (pct && /^[1-9][0-9]*%$/.test(pct.textContent.trim())) {
          marks.progress = Date.now(); marks.progress_task = row.dataset.taskId; save();
        }
      }
    }
  };
  // At most one look per frame, just before it is painted: what the frame shows, and the
  // watcher stays out of the way of the page's own work.
  let due = false;
  const schedule = () => {
    if (!due) { due = true; requestAnimationFrame(() => { due = false; check(); }); }
  };
  new MutationObserver(schedule).observe(document, {subtree: true, childList: true,
    characterData: true, attributes: true});
  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("[data-testid=start-task]") && !marks.clicked) {
      marks.clicked = Date.now(); save();
    }
  }, true);
})();
"""


@dataclass
class Weight:
    wire_bytes: int = 0
    gzip_bytes: int = 0
    raw_bytes: int = 0
    scripts: int = 0
    compressed: int = 0
    cached: int = 0
    largest: list[tuple[str, int]] = field(default_factory=list)


def _context(browser: Browser, server: SpyGlassServer, account: Account) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies(
        [
            {"name": k, "value": v, "url": server.url}
            for k, v in session_cookie(server, account).items()
        ]
    )
    context.add_init_script(WATCHER)
    return context


def js_weight(browser: Browser, server: SpyGlassServer, account: Account) -> Weight:
    """The scripts a cold load of /tasks fetches, as they came over the wire."""
    context = _context(browser, server, account)
    page = context.new_page()
    responses: list[Any] = []
    page.on(
        "response",
        lambda r: responses.append(r) if r.request.resource_type == "script" else None,
    )
    page.goto(f"{server.url}/tasks")
    page.wait_for_function("() => window.__bench && window.__bench.usable", timeout=60_000)
    page.wait_for_load_state("networkidle")
    weight = Weight()
    sizes = []
    for response in responses:
        body = response.body()
        wire = response.request.sizes()["responseBodySize"]
        encoding = response.headers.get("content-encoding")
        weight.scripts += 1
        weight.raw_bytes += len(body)
        weight.wire_bytes += wire
        weight.gzip_bytes += wire if encoding == "gzip" else len(gzip.compress(body, 9))
        weight.compressed += bool(encoding)
        cache = response.headers.get("cache-control", "")
        weight.cached += "immutable" in cache or "max-age=31536000" in cache
        sizes.append((response.url.replace(server.url, ""), wire))
    weight.largest = sorted(sizes, key=lambda s: -s[1])[:6]
    context.close()
    return weight


def time_to_usable(
    browser: Browser, server: SpyGlassServer, account: Account, runs: int
) -> list[float]:
    """Navigation start → rows shown with a clickable button, each in a fresh (cold) context."""
    times = []
    for _ in range(runs):
        context = _context(browser, server, account)
        page = context.new_page()
        page.goto(f"{server.url}/tasks")
        page.wait_for_function("() => window.__bench && window.__bench.usable", timeout=60_000)
        times.append(page.evaluate("() => window.__bench.usable"))
        context.close()
    return times


class Floor(threading.Thread):
    """The owner's tool tasks on the API socket: when each task's first progress came."""

    def __init__(self, server: SpyGlassServer, account: Account) -> None:
        super().__init__(daemon=True)
        self.url = f"{server.ws_url}/ws/{TOOLS_STATE}/tasks/{account.token}"
        self.first: dict[str, float] = {}
        #: When each task was first seen in each status (CREATED, UPLOADING, PENDING …).
        self.statuses: dict[str, dict[str, float]] = {}
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        with websockets.sync.client.connect(self.url, open_timeout=30) as ws:
            self.ready.set()
            while not self.stop.is_set():
                try:
                    raw = ws.recv(timeout=0.2)
                except TimeoutError:
                    continue
                now = time.time() * 1000
                msg = json.loads(raw)
                task_id = msg.get("task_id") or msg.get("id")
                if task_id and msg.get("status"):
                    self.statuses.setdefault(task_id, {}).setdefault(msg["status"], now)
                if task_id and (msg.get("progress") or 0) > 0:
                    self.first.setdefault(task_id, now)


@dataclass
class Start:
    """One Start click's moments, in ms after the click (NaN: not seen)."""

    shown: float  # the first progress above 0 % drawn on /tasks
    floor: float  # the same task's first progress on the API socket
    landed: float  # the page's address became /tasks
    row: float  # the new task's row drawn
    statuses: dict[str, float]  # the task first seen in each status, on the API socket


def start_to_progress(
    browser: Browser, server: SpyGlassServer, account: Account, runs: int
) -> list[Start]:
    """Each Start: when its first progress showed on the page and on the API socket, and the
    steps between (the task's statuses on the socket, the landing on /tasks, its row)."""
    floor = Floor(server, account)
    floor.start()
    floor.ready.wait(30)
    out = []
    try:
        for _ in range(runs):
            context = _context(browser, server, account)
            page = context.new_page()
            page.goto(f"{server.url}/tasks")
            page.wait_for_function("() => window.__bench.usable", timeout=60_000)
            known = page.locator("[data-testid=task-row]").evaluate_all(
                "rows => rows.map(r => r.dataset.taskId)"
            )
            page.goto(f"{server.url}/")
            page.get_by_test_id(f"tool-{TOOL}").click()
            page.wait_for_selector(f"[data-testid=tool-{TOOL}][data-state=checked]")
            page.get_by_test_id("file-primary").set_input_files(str(CSV))
            page.wait_for_selector("[data-testid=chosen-primary]")
            page.evaluate(
                "known => { window.__bench.known = known; sessionStorage.setItem('bench', "
                "JSON.stringify(window.__bench)); }",
                known,
            )
            page.get_by_test_id("start-task").click()
            page.wait_for_function("() => window.__bench.progress", timeout=60_000)
            marks = page.evaluate("() => window.__bench")
            task_id = marks["progress_task"]
            deadline = time.monotonic() + 10
            while task_id not in floor.first and time.monotonic() < deadline:
                time.sleep(0.02)
            nan = float("nan")
            clicked = marks["clicked"]
            out.append(
                Start(
                    shown=marks["progress"] - clicked,
                    floor=floor.first.get(task_id, nan) - clicked,
                    landed=marks.get("landed", nan) - clicked,
                    row=marks.get("row", nan) - clicked,
                    statuses={k: v - clicked for k, v in floor.statuses.get(task_id, {}).items()},
                )
            )
            context.close()
    finally:
        floor.stop.set()
        floor.join(5)
    return out


def seed(server: SpyGlassServer, account: Account, count: int = 5) -> None:
    """A few finished tasks, so /tasks has rows (each with buttons) to show."""
    base = f"{server.url}/api/testjobs/tasks/{account.token}/start/steps"
    for _ in range(count):
        task_id = httpx.post(base, json={"steps": 1, "delay": 0}, timeout=10).json()["task_id"]
        with websockets.sync.client.connect(
            f"{server.ws_url}/ws/testjobs/tasks/{account.token}/{task_id}"
        ) as ws:
            while json.loads(ws.recv())["status"] not in ("COMPLETED", "FAILED"):
                pass


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "OVER"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="cold loads of /tasks")
    parser.add_argument("--starts", type=int, default=5, help="data tasks started")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        server = SpyGlassServer(Path(tmp), full=True, job_modules="tests.jobs").start(600)
        try:
            account = make_account(server, prefix="bench")
            set_credits(server, account, 100_000)
            seed(server, account)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                js_weight(browser, server, account)  # warm the server's caches
                weight = js_weight(browser, server, account)
                usable = time_to_usable(browser, server, account, args.runs)
                starts = start_to_progress(browser, server, account, args.starts)
                browser.close()
        finally:
            server.stop()
    kb = weight.gzip_bytes / 1024
    print("pages in chromium (a cold cache each time):")
    print(
        f"  /tasks JavaScript: {kb:.1f} KB gzipped ({weight.wire_bytes / 1024:.0f} KB on the "
        f"wire, {weight.raw_bytes / 1024:.0f} KB uncompressed) in {weight.scripts} scripts; "
        f"{weight.compressed}/{weight.scripts} sent compressed, {weight.cached}/"
        f"{weight.scripts} with a year's cache   (target ≤ {TARGET_JS_KB} KB: "
        f"{verdict(kb, TARGET_JS_KB)})"
    )
    print("    largest: " + ", ".join(f"{u} {s / 1024:.0f} KB" for u, s in weight.largest))
    med = statistics.median(usable)
    print(
        f"  /tasks time to usable: median {med:.0f} ms, min {min(usable):.0f}, "
        f"max {max(usable):.0f} (n={len(usable)})   (target ≤ {TARGET_USABLE_MS} ms: "
        f"{verdict(med, TARGET_USABLE_MS)})"
    )
    shown = [s.shown for s in starts]
    floor = [s.floor for s in starts]
    med = statistics.median(shown)
    print(
        f"  Start → first progress shown ({TOOL}, {CSV.name}): median {med:.0f} ms, "
        f"min {min(shown):.0f}, max {max(shown):.0f} (n={len(shown)})   "
        f"(target ≤ {TARGET_FIRST_PROGRESS_MS} ms: {verdict(med, TARGET_FIRST_PROGRESS_MS)})"
    )
    print(
        f"    floor, the same tasks' first progress on the API socket: median "
        f"{statistics.median(floor):.0f} ms, min {min(floor):.0f}, max {max(floor):.0f}"
    )
    steps: dict[str, list[float]] = {}
    for start in starts:
        for status, at in start.statuses.items():
            steps.setdefault(f"{status} on the socket", []).append(at)
        steps.setdefault("first progress on the socket", []).append(start.floor)
        steps.setdefault("page on /tasks", []).append(start.landed)
        steps.setdefault("its row drawn", []).append(start.row)
        steps.setdefault("its progress drawn", []).append(start.shown)
    order = sorted(steps, key=lambda k: statistics.median(steps[k]))
    print(
        "    where it goes (median ms after the click): "
        + ", ".join(f"{k} {statistics.median(steps[k]):.0f}" for k in order)
    )


if __name__ == "__main__":
    main()
