"""`make screenshots`: the README's pictures of the main pages, at 1440×900 and 390×844.

Starts a server of its own on a fresh data folder, fills it with sample data (`tests/tour.py`:
a task of each data tool from `assets/samples/`, a failed one, a running one) and writes
`docs/screenshots/<page>-<width>.png` from the same tour the accessibility and small-screen
tests take.

    python -m tests.screenshots [folder]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, sync_playwright

from tests.harness import CHROMIUM_ARGS, ROOT, SpyGlassServer
from tests.tour import cancel, seed, tour

#: tour state → picture name
PAGES = {
    "login": "sign-in",
    "new-task-file-chosen": "new-task",
    "tasks": "tasks",
    "task-completed": "task",
    "results-profile-my-data": "results",
    "admin": "admin",
}
SIZES = ((1440, 900), (390, 844))


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="spyglass-screenshots-") as data:
        server = SpyGlassServer(Path(data), full=True).start()
        try:
            seeded = seed(server, admin_email="admin@example.com", user_email="ann@example.com")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                for width, height in SIZES:

                    def context(b: Browser, w: int = width, h: int = height) -> BrowserContext:
                        return b.new_context(viewport={"width": w, "height": h})

                    for name, page in tour(browser, server, seeded, context, only=set(PAGES)):
                        path = folder / f"{PAGES[name]}-{width}.png"
                        page.screenshot(path=str(path))
                        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                browser.close()
            cancel(server, seeded.user, seeded.running)
        finally:
            server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")
