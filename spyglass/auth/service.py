"""Users, browser sessions and client tokens: the one place that reads and writes identity.

Passwords are hashed with passlib (argon2) and must keep the policy in
`spyglass.auth.passwords`; session and client tokens are random server-issued secrets
of which only the SHA-256 is stored, so a database leak gives away no credential.
Revoking a token takes effect at once: lookups stop matching and every open socket
using it is told to close.

Strangers learn nothing about which accounts exist: a sign-in with an unknown email
checks the password against a dummy hash (the same work as a wrong password), and
`sign_up` answers the same, after the same work, whether the email is new or taken.
Failed sign-ins are limited per account and per address, and registrations per
address, by the shared limiter (`spyglass.ratelimit`, Redis-backed with REDIS_URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from passlib.context import CryptContext
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from spyglass.auth.models import ClientToken, User, UserSession
from spyglass.auth.passwords import check_password, password_problem
from spyglass.config import get_settings
from spyglass.errors import DomainError
from spyglass.ratelimit import RateLimited, get_limiter
from spyglass.tasks.access import ROLES, Role, can_manage_tokens_of, normalise_scopes
from spyglass.tasks.models import utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

SESSION_DAYS = 14
#: The browser session cookie (set by the server only: HttpOnly, see spyglass.api.session).
SESSION_COOKIE = "spyglass_session"
TOKEN_PREFIX = "sg_"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: What `sign_up` answers, whether the address was new (account created) or taken.
SIGNED_UP = "If this address is new, your account is ready: sign in with it."
BAD_CREDENTIALS = "Wrong email or password"
TOO_MANY_SIGN_INS = "Too many failed sign-ins"
TOO_MANY_SIGN_UPS = "Too many new accounts from your address"
#: last_used_at is refreshed at most this often per token (a script may call many times a second).
LAST_USED_RESOLUTION = timedelta(seconds=60)

passwords = CryptContext(schemes=["argon2"], deprecated="auto")


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash no password matches, checked for unknown emails so they cost what known ones do."""
    return passwords.hash(secrets.token_urlsafe(32))


class AuthError(DomainError):
    """A credential, account or token problem."""


class WeakBootstrapPassword(RuntimeError):
    """SPYGLASS_ADMIN_PASSWORD does not keep the password policy: the server does not start."""


#: The longest a client token may live when issued with an expiry.
MAX_TOKEN_DAYS = 3650


@dataclass(frozen=True)
class UserInfo:
    id: int
    email: str
    role: str
    credits: int

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


@dataclass(frozen=True)
class TokenInfo:
    id: int
    prefix: str
    name: str
    owner_id: int
    owner_email: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= utcnow()

    @property
    def active(self) -> bool:
        return self.revoked_at is None and not self.expired


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _user_info(user: User) -> UserInfo:
    assert user.id is not None
    role = user.role if user.role in ROLES else Role.USER.value
    return UserInfo(id=user.id, email=user.email, role=role, credits=user.credits)


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > 320 or not EMAIL_RE.match(email):
        raise AuthError("INVALID_EMAIL", "Enter a valid email address")
    return email


class AuthService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._revocations: dict[int, set[asyncio.Event]] = {}

    async def _run(self, fn: Callable[[Session], T]) -> T:
        def call() -> T:
            with Session(self.engine, expire_on_commit=False) as session:
                return fn(session)

        return await asyncio.to_thread(call)

    # -- users -------------------------------------------------------------
    async def register(
        self, email: str, password: str, *, is_admin: bool = False, role: str | None = None
    ) -> UserInfo:
        """Create an account (409 `EMAIL_TAKEN` if it exists: for operators and tests, not
        strangers, who go through `sign_up`); `role` (or `is_admin`) as given, else user."""
        role = role or (Role.ADMIN.value if is_admin else Role.USER.value)
        if role not in ROLES:
            raise AuthError("INVALID_ROLE", f"Roles are {', '.join(ROLES)}")
        email = normalise_email(email)
        check_password(password)
        hashed = await asyncio.to_thread(passwords.hash, password)

        def create(session: Session) -> UserInfo:
            user = User(
                email=email,
                password_hash=hashed,
                role=role,
                credits=get_settings().starting_credits,
                created_at=utcnow(),
            )
            session.add(user)
            try:
                session.commit()
            except sa.exc.IntegrityError:
                session.rollback()
                raise AuthError(
                    "EMAIL_TAKEN", "An account with that email already exists", 409
                ) from None
            session.refresh(user)
            return _user_info(user)

        return await self._run(create)

    async def sign_up(self, email: str, password: str, address: str = "") -> str:
        """Registration by a stranger: the same answer (`SIGNED_UP`) after the same work
        (one hash, one insert) whether the email is new or already has an account.

        Bad input (an invalid email, a weak password) is refused first, as it says nothing
        about other accounts; each well-formed attempt then counts against the address.
        """
        email = normalise_email(email)
        check_password(password)
        if address:
            await get_limiter().hit(
                get_settings().limit_register_address,
                "register-address",
                address,
                message=TOO_MANY_SIGN_UPS,
            )
        try:
            await self.register(email, password)
        except AuthError as exc:
            if exc.code != "EMAIL_TAKEN":
                raise
        return SIGNED_UP

    async def authenticate(self, email: str, password: str, address: str = "") -> UserInfo:
        """Check a password. Failures count per account and per address; once either has
        used up its rate (`SPYGLASS_LIMIT_LOGIN_*`) it is refused (429) for a while, even
        with the right password. Unknown and known emails cost the same (a dummy hash)."""
        settings = get_settings()
        limiter = get_limiter()
        account = (email or "").strip().lower()[:320]
        limits = [(settings.limit_login_account, "login-account", account)]
        if address:
            limits.append((settings.limit_login_address, "login-address", address))
        for rate, kind, key in limits:
            await limiter.check(rate, kind, key, message=TOO_MANY_SIGN_INS)
        try:
            normalised: str | None = normalise_email(email)
        except AuthError:
            normalised = None
        user = (
            await self._run(lambda s: s.exec(select(User).where(User.email == normalised)).first())
            if normalised
            else None
        )
        stored = user.password_hash if user is not None else await asyncio.to_thread(_dummy_hash)
        given = password if isinstance(password, str) else ""
        ok = await asyncio.to_thread(passwords.verify, given, stored)
        if not ok or user is None:
            for rate, kind, key in limits:
                # RateLimited here: used up by attempts made at the same moment; this one
                # failed anyway, and the next is refused by the check above.
                with contextlib.suppress(RateLimited):
                    await limiter.hit(rate, kind, key)
            raise AuthError("BAD_CREDENTIALS", BAD_CREDENTIALS, 401)
        await limiter.clear(settings.limit_login_account, "login-account", account)
        return _user_info(user)

    async def warm_up(self) -> None:
        """Make the dummy hash at start-up, so that the first unknown email is not slower."""
        await asyncio.to_thread(_dummy_hash)

    async def get_user(self, user_id: int) -> UserInfo | None:
        user = await self._run(lambda s: s.get(User, user_id))
        return _user_info(user) if user else None

    async def find_user(self, email: str) -> UserInfo | None:
        email = (email or "").strip().lower()
        user = await self._run(lambda s: s.exec(select(User).where(User.email == email)).first())
        return _user_info(user) if user else None

    async def list_users(self) -> list[UserInfo]:
        users = await self._run(lambda s: list(s.exec(select(User).order_by(col(User.email)))))
        return [_user_info(u) for u in users]

    async def bootstrap_admin(self, email: str | None, password: str | None) -> None:
        """Create the admin named by SPYGLASS_ADMIN_EMAIL/PASSWORD, or make that user admin."""
        if not email or not password:
            return
        existing = await self.find_user(email)
        if existing is None:
            problem = password_problem(password)
            if problem is not None:
                log.error(
                    "SPYGLASS_ADMIN_PASSWORD is refused by the password policy (%s): "
                    "set a stronger one to create the admin %s",
                    problem,
                    email,
                )
                raise WeakBootstrapPassword(problem)
            try:
                await self.register(email, password, is_admin=True)
                log.info("created admin %s", email)
                return
            except AuthError as exc:
                if exc.code != "EMAIL_TAKEN":
                    raise
            existing = await self.find_user(email)  # another worker created it just now
        if existing is not None and not existing.is_admin:

            def promote(session: Session) -> None:
                user = session.get(User, existing.id)
                assert user is not None
                user.role = Role.ADMIN.value
                session.commit()

            await self._run(promote)

    # -- credits ------------------------------------------------------------
    async def add_credits(self, user_id: int, amount: int) -> int:
        """Grant credits (an admin's grant); returns the new balance. Charges and refunds of
        runs are written with the run itself (spyglass/tasks/credits.py)."""

        def run(session: Session) -> int:
            session.exec(
                sa.update(User)
                .where(col(User.id) == user_id)
                .values(credits=col(User.credits) + amount)
            )
            session.commit()
            user = session.get(User, user_id)
            if user is None:
                raise AuthError("USER_NOT_FOUND", "No such user", 404)
            return user.credits

        return await self._run(run)

    # -- browser sessions -------------------------------------------------
    async def start_session(self, user_id: int) -> str:
        raw = secrets.token_urlsafe(32)
        now = utcnow()

        def create(session: Session) -> None:
            session.add(
                UserSession(
                    token_hash=digest(raw),
                    user_id=user_id,
                    created_at=now,
                    expires_at=now + timedelta(days=SESSION_DAYS),
                )
            )
            session.commit()

        await self._run(create)
        return raw

    async def session_user(self, raw: str) -> UserInfo | None:
        if not raw:
            return None

        def find(session: Session) -> UserInfo | None:
            row = session.exec(
                select(UserSession, User)
                .join(User, col(User.id) == col(UserSession.user_id))
                .where(UserSession.token_hash == digest(raw))
            ).first()
            if row is None:
                return None
            sess, user = row
            if sess.revoked_at is not None or sess.expires_at <= utcnow():
                return None
            return _user_info(user)

        return await self._run(find)

    async def end_session(self, raw: str) -> None:
        if not raw:
            return

        def revoke(session: Session) -> None:
            session.exec(
                sa.update(UserSession)
                .where(col(UserSession.token_hash) == digest(raw))
                .values(revoked_at=utcnow())
            )
            session.commit()

        await self._run(revoke)

    # -- client tokens ------------------------------------------------------
    async def issue_token(
        self,
        owner_id: int,
        name: str,
        created_by: int,
        *,
        scopes: Sequence[str] | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[str, TokenInfo]:
        """Create a token; the raw secret is returned once and never stored. Without
        `scopes` it gets every scope (as tokens did before scopes); without `expires_at` it
        never expires."""
        name = (name or "").strip() or "token"
        if len(name) > 100:
            raise AuthError("INVALID_NAME", "Token names are at most 100 characters")
        try:
            chosen = normalise_scopes(scopes)
        except ValueError as exc:
            raise AuthError("INVALID_SCOPE", str(exc)) from None
        if not chosen:
            raise AuthError("INVALID_SCOPE", "Give a token at least one scope")
        if expires_at is not None:
            now = utcnow()
            if expires_at <= now:
                raise AuthError("INVALID_EXPIRY", "The expiry must be in the future")
            if expires_at > now + timedelta(days=MAX_TOKEN_DAYS):
                raise AuthError("INVALID_EXPIRY", f"Tokens live at most {MAX_TOKEN_DAYS} days")
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)

        def create(session: Session) -> TokenInfo:
            owner = session.get(User, owner_id)
            if owner is None:
                raise AuthError("USER_NOT_FOUND", "No such user", 404)
            token = ClientToken(
                token_hash=digest(raw),
                prefix=raw[: len(TOKEN_PREFIX) + 6],
                name=name,
                owner_id=owner_id,
                created_by=created_by,
                created_at=utcnow(),
                scopes=" ".join(chosen),
                expires_at=expires_at,
            )
            session.add(token)
            session.commit()
            session.refresh(token)
            return _token_info(token, owner.email)

        return raw, await self._run(create)

    async def list_tokens(self, owner_id: int | None = None) -> list[TokenInfo]:
        def find(session: Session) -> list[TokenInfo]:
            query = select(ClientToken, User.email).join(
                User, col(User.id) == col(ClientToken.owner_id)
            )
            if owner_id is not None:
                query = query.where(ClientToken.owner_id == owner_id)
            rows = session.exec(query.order_by(col(ClientToken.created_at).desc()))
            return [_token_info(t, email) for t, email in rows]

        return await self._run(find)

    async def revoke_token(self, token_id: int, *, by: UserInfo) -> bool:
        """Revoke (owners their own, admins any); open sockets using it are closed at once."""

        def revoke(session: Session) -> bool:
            token = session.get(ClientToken, token_id)
            if token is None or not can_manage_tokens_of(token.owner_id, by):
                raise AuthError("TOKEN_NOT_FOUND", "No such token", 404)
            if token.revoked_at is not None:
                return False
            token.revoked_at = utcnow()
            session.commit()
            return True

        changed = await self._run(revoke)
        for event in self._revocations.get(token_id, ()):
            event.set()
        return changed

    async def resolve_token(self, raw: str) -> TokenInfo | None:
        """The active token for a raw secret, or None (unknown, malformed, revoked or
        expired)."""
        if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 100:
            return None

        def find(session: Session) -> TokenInfo | None:
            row = session.exec(
                select(ClientToken, User.email)
                .join(User, col(User.id) == col(ClientToken.owner_id))
                .where(ClientToken.token_hash == digest(raw))
            ).first()
            if row is None:
                return None
            token, email = row
            now = utcnow()
            if token.revoked_at is not None or (
                token.expires_at is not None and token.expires_at <= now
            ):
                return None
            if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
                token.last_used_at = now
                session.commit()
            return _token_info(token, email)

        return await self._run(find)

    @contextlib.contextmanager
    def watching(
        self, token_id: int, event: asyncio.Event | None = None
    ) -> Iterator[asyncio.Event]:
        """An event (`event`, or a new one) set the moment the token is revoked (sockets
        close on it)."""
        event = event or asyncio.Event()
        self._revocations.setdefault(token_id, set()).add(event)
        try:
            yield event
        finally:
            events = self._revocations.get(token_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._revocations[token_id]

    async def is_active(self, token_id: int) -> bool:
        token = await self._run(lambda s: s.get(ClientToken, token_id))
        return (
            token is not None
            and token.revoked_at is None
            and (token.expires_at is None or token.expires_at > utcnow())
        )


def _token_info(token: ClientToken, owner_email: str) -> TokenInfo:
    assert token.id is not None
    return TokenInfo(
        id=token.id,
        prefix=token.prefix,
        name=token.name,
        owner_id=token.owner_id,
        owner_email=owner_email,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
        scopes=tuple(token.scopes.split()),
        expires_at=token.expires_at,
    )


_auth: AuthService | None = None


def get_auth() -> AuthService:
    """The process's auth service, on the task engine's database."""
    global _auth
    if _auth is None:
        from spyglass.tasks.engine import get_engine

        _auth = AuthService(get_engine().database)
    return _auth


def set_auth(service: AuthService | None) -> None:
    global _auth
    _auth = service
