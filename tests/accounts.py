"""Test set-up: users and client tokens made in the server's own database (as an operator would)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

from spyglass.auth.service import AuthService
from spyglass.tasks.store import make_engine
from tests.harness import SpyGlassServer

PASSWORD = "correct horse battery"


@dataclass
class Account:
    id: int
    email: str
    password: str
    token: str
    token_id: int


def db_url(server: SpyGlassServer) -> str:
    """The server's database: PostgreSQL when its environment names one, else its SQLite file."""
    return server.extra_env.get("SPYGLASS_DB_URL") or f"sqlite:///{server.data_dir / 'spyglass.db'}"


def make_account(
    server: SpyGlassServer,
    *,
    admin: bool = False,
    prefix: str = "user",
    email: str = "",
    role: str | None = None,
    scopes: list[str] | None = None,
) -> Account:
    """A new account (`email`, or `<prefix>-<random>@example.com`) with a client token (of
    `scopes`, default every scope); `role` as given (default user, or admin with `admin`)."""

    async def run() -> Account:
        engine = make_engine(db_url(server))
        try:
            auth = AuthService(engine)
            email_ = email or f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
            user = await auth.register(email_, PASSWORD, is_admin=admin, role=role)
            raw, token = await auth.issue_token(user.id, "tests", created_by=user.id, scopes=scopes)
            return Account(user.id, email_, PASSWORD, raw, token.id)
        finally:
            engine.dispose()

    return asyncio.run(run()) if not _in_loop() else _run_in_thread(run)


def issue_token(
    server: SpyGlassServer,
    account: Account,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Another client token of `account` with these scopes and expiry (its raw secret)."""

    async def run() -> str:
        engine = make_engine(db_url(server))
        try:
            raw, _ = await AuthService(engine).issue_token(
                account.id, "tests", created_by=account.id, scopes=scopes, expires_at=expires_at
            )
            return raw
        finally:
            engine.dispose()

    return asyncio.run(run()) if not _in_loop() else _run_in_thread(run)


def session_cookie(server: SpyGlassServer, account: Account) -> dict[str, str]:
    """A signed-in browser's cookie for `account` (as the login form would set it)."""

    async def run() -> str:
        engine = make_engine(db_url(server))
        try:
            return await AuthService(engine).start_session(account.id)
        finally:
            engine.dispose()

    raw = asyncio.run(run()) if not _in_loop() else _run_in_thread(run)
    return {"spyglass_session": raw}


def set_credits(server: SpyGlassServer, account: Account, credits: int) -> None:
    """Set the account's balance to `credits` (as an admin's grant would change it)."""

    async def run() -> None:
        engine = make_engine(db_url(server))
        try:
            auth = AuthService(engine)
            user = await auth.get_user(account.id)
            assert user is not None
            await auth.add_credits(account.id, credits - user.credits)
        finally:
            engine.dispose()

    asyncio.run(run()) if not _in_loop() else _run_in_thread(run)


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_in_thread(factory):  # type: ignore[no-untyped-def]
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
