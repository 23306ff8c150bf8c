"""Who is signed in: the session cookie, page guards, sign-in, registration and sign-out."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import reflex as rx

from spyglass.auth.service import SESSION_COOKIE, SESSION_DAYS, UserInfo, get_auth
from spyglass.errors import DomainError
from spyglass.tasks.access import is_admin

__all__ = ["SESSION_COOKIE", "AuthState", "current_user"]


class AuthState(rx.State):
    session_token: str = rx.Cookie(
        "", name=SESSION_COOKIE, path="/", max_age=SESSION_DAYS * 86400, same_site="lax"
    )
    user_email: str = ""
    is_admin: bool = False
    checked: bool = False
    form_error: str = ""
    busy: bool = False
    _user_id: int | None = None

    def _remember(self, user: UserInfo | None) -> None:
        self._user_id = user.id if user else None
        self.user_email = user.email if user else ""
        self.is_admin = is_admin(user)
        self.checked = True

    async def _resolve(self) -> UserInfo | None:
        user = await get_auth().session_user(self.session_token)
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
        """on_load of admin pages; a signed-in non-admin stays and sees only 'Forbidden'."""
        if await self._resolve() is None:
            return self._login_redirect()
        return None

    @rx.event
    async def redirect_if_signed_in(self) -> Any:
        """on_load of /login and /register."""
        self.form_error = ""
        if await self._resolve() is not None:
            return rx.redirect("/tasks")
        return None

    def _next_page(self) -> str:
        target = str(self.router.url.query_parameters.get("next") or "/tasks")
        # Only local paths: never send a user to another site after sign-in.
        return target if target.startswith("/") and not target.startswith("//") else "/tasks"

    async def _sign_in(self, user: UserInfo) -> Any:
        self.session_token = await get_auth().start_session(user.id)
        self._remember(user)
        self.form_error = ""
        return rx.redirect(self._next_page())

    @rx.event
    async def login(self, form: dict[str, Any]) -> Any:
        self.busy = True
        try:
            user = await get_auth().authenticate(
                str(form.get("email", "")),
                str(form.get("password", "")),
                self.router.session.client_ip,
            )
        except DomainError as exc:
            self.form_error = exc.message
            return None
        finally:
            self.busy = False
        return await self._sign_in(user)

    @rx.event
    async def register(self, form: dict[str, Any]) -> Any:
        password = str(form.get("password", ""))
        if password != str(form.get("confirm", "")):
            self.form_error = "The two passwords differ"
            return None
        self.busy = True
        try:
            user = await get_auth().register(str(form.get("email", "")), password)
        except DomainError as exc:
            self.form_error = exc.message
            return None
        finally:
            self.busy = False
        return await self._sign_in(user)

    @rx.event
    async def logout(self) -> Any:
        await get_auth().end_session(self.session_token)
        self.session_token = ""
        self._remember(None)
        return rx.redirect("/login")


async def current_user(state: rx.State) -> UserInfo | None:
    """The signed-in user of any state's browser (call inside `async with self` in background)."""
    auth = await state.get_state(AuthState)
    return await get_auth().session_user(auth.session_token)
