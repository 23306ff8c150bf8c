"""Who is signed in: read from the session cookie, page guards, and the sign-in forms.

The server alone sets the session cookie (`HttpOnly`, see spyglass.api.session), so page
scripts never see it. The browser sends it with the request that opens Reflex's socket, and
Reflex hands that request's headers to every event as `self.router.headers` (the cookie is
kept on the server: Reflex never sends it back to the page). The forms therefore sign in,
register and sign out through the HTTP API (`assets/spyglass.js`) and then load the next page
afresh, so that its new socket carries the new cookie.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import reflex as rx
from starlette.requests import cookie_parser

from spyglass.auth.passwords import PasswordRule, password_rules
from spyglass.auth.service import SESSION_COOKIE, SIGNED_UP, UserInfo, get_auth
from spyglass.tasks.access import (
    acts_on_every_task,
    can_change_tasks,
    is_admin,
    reads_every_task,
    role_of,
)

__all__ = ["READ_ONLY_ROLE", "SESSION_COOKIE", "AuthState", "current_user"]

#: What a viewer is told when a page offers to change something.
READ_ONLY_ROLE = "Your role (viewer) reads tasks; it does not start or change them."


class AuthState(rx.State):
    user_email: str = ""
    is_admin: bool = False
    #: admin, operator, viewer or user ("" signed out); what the pages offer follows it.
    role: str = ""
    #: Admins, operators and viewers: the admin dashboard and every task.
    is_staff: bool = False
    #: Admins and operators: cancel, retry and delete anyone's task.
    acts_on_all: bool = False
    #: Anyone but a viewer: start tasks and change their own.
    can_change: bool = False
    checked: bool = False
    form_error: str = ""
    #: A note above the sign-in form (after registering).
    notice: str = ""
    busy: bool = False
    #: The password rules as the register form shows them, updated as the user types.
    password_checks: list[PasswordRule] = password_rules("")
    _user_id: int | None = None

    def _session_token(self) -> str:
        """The session cookie the browser sent when it opened this page's socket."""
        return cookie_parser(self.router.headers.cookie or "").get(SESSION_COOKIE, "")

    def _remember(self, user: UserInfo | None) -> None:
        self._user_id = user.id if user else None
        self.user_email = user.email if user else ""
        self.is_admin = is_admin(user)
        self.role = role_of(user) or ""
        self.is_staff = reads_every_task(user)
        self.acts_on_all = acts_on_every_task(user)
        self.can_change = can_change_tasks(user)
        self.checked = True

    async def _resolve(self) -> UserInfo | None:
        user = await get_auth().session_user(self._session_token())
        self._remember(user)
        return user

    def _login_redirect(self) -> Any:
        path = (self.router.url.path or "/tasks").rstrip("/") or "/"
        return rx.redirect(f"/login?next={quote(path)}")

    @rx.event
    async def require_user(self) -> Any:
        """on_load of every private page: signed-out visitors go to /login."""
        if await self._resolve() is None:
            return self._login_redirect()
        return None

    @rx.event
    async def require_admin(self) -> Any:
        """on_load of admin pages (the server answers a non-admin's page load with 403; after
        a client-side navigation the page shows 'Forbidden')."""
        if await self._resolve() is None:
            return self._login_redirect()
        return None

    @rx.event
    async def identify(self) -> None:
        """on_load of pages anyone may see (the 404 page): who is signed in, if anyone."""
        await self._resolve()

    @rx.event
    async def redirect_if_signed_in(self) -> Any:
        """on_load of /login and /register."""
        self.form_error = ""
        self.busy = False
        self.password_checks = password_rules("")
        registered = self.router.url.query_parameters.get("registered")
        self.notice = SIGNED_UP if registered and self.router.url.path.startswith("/login") else ""
        if await self._resolve() is not None:
            return rx.redirect("/tasks")
        return None

    def _next_page(self) -> str:
        target = str(self.router.url.query_parameters.get("next") or "/tasks")
        # Only local paths: never send a user to another site after sign-in.
        return target if target.startswith("/") and not target.startswith("//") else "/tasks"

    def _call(self, function: str, *args: str) -> Any:
        """Run one of spyglass.js's account functions; its failures come back to `failed`."""
        arguments = ", ".join(json.dumps(arg) for arg in args)
        # The page may run this before its spyglass.js has loaded (a click right after the
        # page came up): wait for it, up to 10 s, rather than lose the click.
        script = (
            "(async () => { for (let i = 0; i < 200 && !(window.spyglass && "
            f"window.spyglass.{function}); i++) await new Promise(r => setTimeout(r, 50)); "
            f"return window.spyglass.{function}({arguments}); }})()"
        )
        return rx.call_script(script, callback=AuthState.failed)

    @rx.event
    def login(self) -> Any:
        """The sign-in form: the browser posts the fields to /api/session (never over this
        socket), and on success loads the next page."""
        self.busy = True
        self.form_error = ""
        self.notice = ""
        return self._call("signIn", self._next_page())

    @rx.event
    def register(self) -> Any:
        """The register form: posted to /api/register, then on to /login whatever the answer."""
        self.busy = True
        self.form_error = ""
        return self._call("register", self._next_page())

    @rx.event
    def check_password(self, password: str) -> None:
        """The register form's live rules (debounced as the user types; nothing is kept)."""
        self.password_checks = password_rules(password)

    @rx.event
    def failed(self, outcome: dict[str, Any] | None) -> None:
        """What spyglass.js reports back: `{ok: false, error}` stays on the form."""
        if isinstance(outcome, dict) and outcome.get("ok"):
            return  # the browser is on its way to the next page
        self.busy = False
        error = outcome.get("error") if isinstance(outcome, dict) else None
        self.form_error = str(error or "Something went wrong; try again")[:300]

    @rx.event
    def logout(self) -> Any:
        """Ends the session on the server (which clears the cookie), then shows /login."""
        return self._call("signOut")


async def current_user(state: rx.State) -> UserInfo | None:
    """The signed-in user of any state's browser (call inside `async with self` in background)."""
    auth = await state.get_state(AuthState)
    return await get_auth().session_user(auth._session_token())  # noqa: SLF001  (a state of ours)
