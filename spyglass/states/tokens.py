"""Client tokens in the browser: each user manages their own; admins everyone's.

A new token's secret is shown once, right after it is issued (only its hash is
stored). Every action is checked on the server by the auth service. The form chooses the
token's scopes (checkboxes `scope:<scope>`; none ticked: every scope) and an optional expiry
in days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import reflex as rx

from spyglass import audit
from spyglass.auth.service import MAX_TOKEN_DAYS, AuthError, TokenInfo, UserInfo, get_auth
from spyglass.states.auth import current_user
from spyglass.tasks.access import SCOPES, is_admin, token_scope
from spyglass.tasks.models import utcnow

#: The form field of each scope's checkbox.
SCOPE_FIELD = "scope:"


@dataclass
class TokenRow:
    id: int = 0
    prefix: str = ""
    name: str = ""
    owner_email: str = ""
    created_at: str = ""
    last_used_at: str = ""
    scopes: str = ""
    expires_at: str = ""
    active: bool = True


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _row(token: TokenInfo) -> TokenRow:
    return TokenRow(
        id=token.id,
        prefix=token.prefix,
        name=token.name,
        owner_email=token.owner_email,
        created_at=_when(token.created_at),
        last_used_at=_when(token.last_used_at),
        scopes=" ".join(token.scopes) if set(token.scopes) != set(SCOPES) else "all",
        expires_at=_when(token.expires_at),
        active=token.active,
    )


class TokenState(rx.State):
    tokens: list[TokenRow] = []
    user_emails: list[str] = []
    new_token: str = ""
    new_token_owner: str = ""
    error: str = ""

    async def _user(self) -> UserInfo | None:
        return await current_user(self)

    @rx.event
    async def load(self) -> None:
        await self._load()

    async def _load(self) -> None:
        user = await self._user()
        if user is None:
            self.tokens = []
            return
        auth = get_auth()
        tokens = await auth.list_tokens(token_scope(user))
        self.tokens = [_row(t) for t in tokens]
        self.user_emails = [u.email for u in await auth.list_users()] if is_admin(user) else []

    @rx.event
    async def refresh_users(self, is_open: bool = True) -> None:
        """Owners to choose from, fresh each time the list opens (admins only)."""
        user = await self._user()
        if is_admin(user) and is_open:
            self.user_emails = [u.email for u in await get_auth().list_users()]

    @rx.event
    async def issue(self, form: dict[str, Any]) -> Any:
        user = await self._user()
        if user is None:
            return rx.toast.error("Sign in first.")
        owner: UserInfo | None = user
        owner_email = str(form.get("owner_email") or "").strip().lower()
        if owner_email and owner_email != user.email:
            if not is_admin(user):
                return rx.toast.error("Only admins issue tokens for other users.")
            owner = await get_auth().find_user(owner_email)
            if owner is None:
                self.error = "No user with that email"
                return None
        assert owner is not None
        scopes = [s for s in SCOPES if form.get(SCOPE_FIELD + s) in (True, "on", "true")]
        expires_at = None
        days = str(form.get("expires_in_days") or "").strip()
        if days:
            if not days.isdigit() or not 1 <= int(days) <= MAX_TOKEN_DAYS:
                self.error = f"Expire in 1 to {MAX_TOKEN_DAYS} days, or leave it empty"
                return None
            expires_at = utcnow() + timedelta(days=int(days))
        try:
            raw, token = await get_auth().issue_token(
                owner.id,
                str(form.get("name") or ""),
                created_by=user.id,
                scopes=scopes or None,
                expires_at=expires_at,
            )
        except AuthError as exc:
            self.error = exc.message
            return None
        detail = {"owner": token.owner_email, "name": token.name, "prefix": token.prefix}
        await audit.record(self, user, "token.issue", "token", token.id, detail)
        self.error = ""
        self.new_token = raw
        self.new_token_owner = token.owner_email
        await self._load()
        return None

    @rx.event
    def dismiss_new_token(self) -> None:
        self.new_token = ""

    @rx.event
    async def revoke(self, token_id: int) -> Any:
        user = await self._user()
        if user is None:
            return rx.toast.error("Sign in first.")
        try:
            changed = await get_auth().revoke_token(token_id, by=user)
        except AuthError as exc:
            return rx.toast.error(exc.message)
        if changed:
            await audit.record(self, user, "token.revoke", "token", token_id)
        await self._load()
        return rx.toast.success("Token revoked: it stopped working everywhere.")
