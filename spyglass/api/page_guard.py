"""The pages' HTTP status follows the access policy, decided on the server before any page loads.

A GET (or HEAD) of a private page from a signed-out browser answers 303 to
`/login?next=<page>`; a staff page (`/admins…`, today and later) answers a signed-in user
who is neither admin, operator nor viewer 403 with a short page in plain words, and the
audit log (`/admins/audit`) anyone but an admin; everyone else gets the page as Reflex
serves it. The pages check again on load (client-side navigation never reaches the server),
with the same rules: `spyglass.tasks.access` and the session cookie.

Pages also answer at their own address: Reflex's static files would redirect `/login` to
`/login/`, so the guard serves `/login/` at `/login` instead (the sign-in forms load pages
afresh, and the address bar then shows the same address as a click within the app would).
"""

from __future__ import annotations

import html
import re
from enum import Enum
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spyglass.auth.service import SESSION_COOKIE, get_auth
from spyglass.tasks.access import is_admin, reads_every_task


class Access(Enum):
    SIGNED_IN = "signed in"
    #: Admins, operators and viewers (`access.reads_every_task`).
    STAFF = "staff"
    ADMIN = "admin"


#: Page paths (as Reflex serves them, with or without a trailing slash or `.html`) and who
#: may open them. Anything else (sign-in pages, assets, the API) passes untouched.
PAGES: list[tuple[re.Pattern[str], Access]] = [
    (re.compile(r"^/admins/audit(/.*|\.html)?$"), Access.ADMIN),
    (re.compile(r"^/admins(/.*|\.html)?$"), Access.STAFF),
    (re.compile(r"^/(index\.html)?$"), Access.SIGNED_IN),
    (re.compile(r"^/tasks(/.*|\.html)?$"), Access.SIGNED_IN),
    (re.compile(r"^/task/.+$"), Access.SIGNED_IN),
    (re.compile(r"^/developers(/.*|\.html)?$"), Access.SIGNED_IN),
]

FORBIDDEN_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Staff only · SpyGlass</title><link rel="icon" href="/favicon.ico">
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; color: #1c2024; line-height: 1.5; }}
main {{ max-width: 40rem; margin: 0 auto; padding: 32px 16px; }}
a {{ color: #3a5bc7; }}
</style></head>
<body><main>
<h1 data-testid="forbidden">This page is for {who} only</h1>
<p>You are signed in as {email}, and this account does not have that role.</p>
<p><a href="/tasks">Go to your tasks</a></p>
</main></body>
</html>
"""


#: Not pages: never served at another address than their own.
NOT_PAGES = ("/api/", "/ws/", "/admin/", "/_", "/docs", "/redoc", "/openapi", "/metrics")


def page_access(path: str) -> Access | None:
    for pattern, access in PAGES:
        if pattern.match(path):
            return access
    return None


def login_redirect(path: str, query: str = "") -> RedirectResponse:
    target = path.rstrip("/") or "/"
    if query:
        target += "?" + query
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


class PageGuard:
    """ASGI middleware in front of the pages (and everything else, which it passes on)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        access = page_access(scope["path"])
        if access is not None:
            request = Request(scope)
            user = await get_auth().session_user(request.cookies.get(SESSION_COOKIE, ""))
            response: Response | None = None
            if user is None:
                response = login_redirect(request.url.path, request.url.query)
            elif access is Access.STAFF and not reads_every_task(user):
                response = HTMLResponse(
                    FORBIDDEN_PAGE.format(
                        email=html.escape(user.email), who="admins, operators and viewers"
                    ),
                    status_code=403,
                )
            elif access is Access.ADMIN and not is_admin(user):
                response = HTMLResponse(
                    FORBIDDEN_PAGE.format(email=html.escape(user.email), who="admins"),
                    status_code=403,
                )
            if response is not None:
                response.headers["Cache-Control"] = "no-store"
                await response(scope, receive, send)
                return
        await self._at_own_address(scope, receive, send)

    async def _at_own_address(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a page's `/path/` at `/path` rather than redirecting there."""
        path: str = scope["path"]
        last = path.rsplit("/", 1)[-1]
        if path.endswith("/") or "." in last or path.startswith(NOT_PAGES) or path == "/admin":
            await self.app(scope, receive, send)
            return
        slashed = False

        async def watch(message: Message) -> None:
            nonlocal slashed
            if message["type"] == "http.response.start" and message["status"] in (307, 308):
                location = dict(message.get("headers", [])).get(b"location", b"").decode()
                slashed = urlsplit(location).path == path + "/"
            if not slashed:
                await send(message)

        await self.app(scope, receive, watch)
        if slashed:
            inner = dict(scope, path=path + "/", raw_path=(path + "/").encode())
            await self.app(inner, receive, send)
