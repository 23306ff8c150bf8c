"""The audit log: every admin and destructive action, who did it, to what, when and from where.

One table, `audit_event`, written only by `record` (after the action succeeded; a bulk
action with what it did) and read only by `search`. Nothing in the app updates or deletes a
row: there is no route for it, the portal shows the table read-only, and the database itself
refuses `UPDATE` and `DELETE` on it (triggers made by migration 0008).

Each row says who acted (the user's id and their email at the time, `system` for the server's
own sweeps, `anonymous` on the token-free direct paths), with which credential (`token` or
`session` and its id), the action (one of `ACTIONS`), its target (`task`, `user`, `token`,
`webhook`, `retention` and an id), a small JSON `detail` (counts, old and new values), and
the client's address and user agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, get_args

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel
from starlette.requests import HTTPConnection, cookie_parser

from spyglass.config import get_settings
from spyglass.tasks.models import UTCDateTime, utcnow

Action = Literal[
    "task.cancel",
    "task.delete",
    "task.retry",
    "tasks.bulk_cancel",
    "tasks.bulk_delete",
    "tasks.bulk_retry",
    "user.role_change",
    "user.credit_change",
    "user.email_change",
    "token.issue",
    "token.revoke",
    "retention.change",
    "retention.sweep",
    "webhook.create",
    "webhook.update",
    "webhook.enable",
    "webhook.disable",
    "webhook.delete",
]
ACTIONS: tuple[str, ...] = get_args(Action)
#: The families of actions a filter may name (`task.*`: every `task.…` action).
FAMILIES: tuple[str, ...] = tuple(sorted({a.split(".")[0] + ".*" for a in ACTIONS}))
TargetType = Literal["task", "tasks", "user", "token", "webhook", "retention"]
TARGET_TYPES: tuple[str, ...] = get_args(TargetType)
SYSTEM = "system"
ANONYMOUS = "anonymous"
USER_AGENT_CHARS = 200
#: The session cookie's name (as `spyglass.auth.service.SESSION_COOKIE`; not imported, so
#: that identity never depends on this module or the other way round).
SESSION_COOKIE = "spyglass_session"

log = logging.getLogger(__name__)


class AuditEvent(SQLModel, table=True):
    """One recorded action (append-only)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_event_at", "at"),
        sa.Index("ix_audit_event_action_at", "action", "at"),
        sa.Index("ix_audit_event_actor_at", "actor_id", "at"),
        sa.Index("ix_audit_event_target", "target_type", "target_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    #: The user who acted (None: the system, or nobody signed in on a token-free path).
    actor_id: int | None = None
    #: Their email at the time, or `system` / `anonymous`.
    actor_email: str = Field(max_length=320)
    #: `token`, `session` or "" (the system; a token-free path).
    credential_type: str = Field(default="", max_length=10)
    credential_id: int | None = None
    action: str = Field(max_length=40)
    target_type: str = Field(max_length=20)
    target_id: str = Field(default="", max_length=100)
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(sa.JSON(), nullable=True))
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=USER_AGENT_CHARS)


TABLE: sa.Table = AuditEvent.__table__  # type: ignore[attr-defined]


class Actor(Protocol):
    """Who acts: a signed-in user (`spyglass.auth.service.UserInfo`)."""

    @property
    def id(self) -> int: ...

    @property
    def email(self) -> str: ...


class PageState(Protocol):
    """A Reflex state (its `router` holds the headers of the page's socket)."""

    @property
    def router(self) -> Any: ...


Origin = HTTPConnection | PageState | None


@dataclass(frozen=True)
class Where:
    """Where an action came from: the credential it used, the client's address and agent."""

    credential_type: str = ""
    credential_id: int | None = None
    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class AuditView:
    """One row as the app shows it (read-only)."""

    id: int
    at: datetime
    actor_id: int | None
    actor_email: str
    credential_type: str
    credential_id: int | None
    action: str
    target_type: str
    target_id: str
    detail: Mapping[str, Any] | None
    ip: str
    user_agent: str

    @property
    def credential(self) -> str:
        if not self.credential_type:
            return ""
        return f"{self.credential_type} {self.credential_id or ''}".strip()


@dataclass(frozen=True)
class AuditFilter:
    """What `search` selects: every given condition holds (exact values; `actor` is an email,
    any case, or `system` / `anonymous`; `action` may end in `.*` for a family)."""

    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


# -- where from ----------------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _forwarded(headers: Mapping[str, str], peer: str) -> str:
    """The client address as the limits read it (`spyglass.api.session.client_address`)."""
    if get_settings().trust_proxy_headers:
        forwarded = [v.strip() for v in headers.get("x-forwarded-for", "").split(",")]
        if forwarded[-1]:
            return forwarded[-1]
    return peer


def _credential(database: sa.Engine, bearer: str, session: str) -> tuple[str, int | None]:
    """The id of the client token (preferred, as the API prefers it) or browser session."""
    from spyglass.auth.models import ClientToken, UserSession

    with database.connect() as conn:
        if bearer:
            found = conn.execute(
                sa.select(ClientToken.id).where(  # type: ignore[call-overload]
                    ClientToken.token_hash == _digest(bearer)
                )
            ).scalar()
            if found is not None:
                return "token", int(found)
        if session:
            found = conn.execute(
                sa.select(UserSession.id).where(  # type: ignore[call-overload]
                    UserSession.token_hash == _digest(session)
                )
            ).scalar()
            if found is not None:
                return "session", int(found)
    return "", None


def _headers_of(origin: HTTPConnection | PageState) -> tuple[dict[str, str], str]:
    """The request's headers (lower-case names) and the peer's address."""
    if isinstance(origin, HTTPConnection):
        peer = origin.client.host if origin.client else ""
        return {k.lower(): v for k, v in origin.headers.items()}, peer
    router = origin.router
    raw = dict(getattr(router.headers, "raw_headers", {}) or {})
    headers = {k.lower().replace("_", "-"): str(v) for k, v in raw.items()}
    headers.setdefault("cookie", router.headers.cookie or "")
    headers.setdefault("user-agent", router.headers.user_agent or "")
    peer = headers.get("asgi-scope-client") or router.session.client_ip or ""
    return headers, peer


def where(database: sa.Engine, origin: HTTPConnection | PageState) -> Where:
    """Where a request (or a page's event) came from."""
    headers, peer = _headers_of(origin)
    authorization = headers.get("authorization", "")
    bearer = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    session = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE, "")
    kind, ident = _credential(database, bearer, session)
    return Where(
        credential_type=kind,
        credential_id=ident,
        ip=_forwarded(headers, peer)[:64],
        user_agent=headers.get("user-agent", "")[:USER_AGENT_CHARS],
    )


# -- writing ----------------------------------------------------------------------------


def _database() -> sa.Engine:
    from spyglass.tasks.engine import get_engine

    return get_engine().database


async def record(
    origin: Origin,
    actor: Actor | None,
    action: Action,
    target_type: TargetType,
    target_id: str | int = "",
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Write one row, after the action succeeded. `origin` is the HTTP request or the page's
    state that asked (None: the server itself, `system`); `actor` the user who asked (None
    with an origin: a token-free path, `anonymous`)."""
    if action not in ACTIONS:  # the type says so; a caller that cast around it learns here
        raise ValueError(f"unknown audit action {action!r}")
    database = _database()

    def write() -> None:
        place = where(database, origin) if origin is not None else Where()
        if actor is not None:
            actor_id: int | None = actor.id
            email = actor.email
        else:
            actor_id, email = None, SYSTEM if origin is None else ANONYMOUS
        with database.begin() as conn:
            conn.execute(
                sa.insert(TABLE).values(
                    at=utcnow(),
                    actor_id=actor_id,
                    actor_email=email[:320],
                    credential_type=place.credential_type,
                    credential_id=place.credential_id,
                    action=action,
                    target_type=target_type,
                    target_id=str(target_id)[:100],
                    detail=dict(detail) if detail is not None else None,
                    ip=place.ip,
                    user_agent=place.user_agent,
                )
            )

    try:
        await asyncio.to_thread(write)
    except Exception:
        # The action happened: its answer stands (a 500 would have the caller repeat it). The
        # record goes to the server log in full instead, to be found there.
        log.exception(
            "could not write the audit record %s",
            {
                "action": action,
                "target": f"{target_type}:{target_id}",
                "detail": detail,
                "actor": getattr(actor, "email", None),
            },
        )


@contextlib.asynccontextmanager
async def recording(
    origin: Origin,
    actor: Actor | None,
    action: Action,
    target_type: TargetType,
    detail: dict[str, Any],
) -> AsyncIterator[dict[str, Any]]:
    """For a bulk action: one row when the block ends, with the `detail` the block filled in
    (the count done), even if the block broke off half-way (then `interrupted: true`, and the
    error goes on)::

        async with audit.recording(request, user, "tasks.bulk_delete", "tasks", {}) as d:
            d["count"] = await engine.delete_matching(user, query)
    """
    try:
        yield detail
    except BaseException:
        detail["interrupted"] = True
        raise
    finally:
        await record(origin, actor, action, target_type, "", detail)


# -- reading ----------------------------------------------------------------------------


def _conditions(flt: AuditFilter) -> list[Any]:
    c = TABLE.c
    where_: list[Any] = []
    if flt.actor:
        where_.append(sa.func.lower(c.actor_email) == flt.actor.strip().lower())
    if flt.action:
        if flt.action.endswith(".*"):
            where_.append(c.action.startswith(flt.action[:-1], autoescape=True))
        else:
            where_.append(c.action == flt.action)
    if flt.target_type:
        where_.append(c.target_type == flt.target_type)
    if flt.target_id:
        where_.append(c.target_id == flt.target_id)
    if flt.since is not None:
        where_.append(c.at >= flt.since)
    if flt.until is not None:
        where_.append(c.at < flt.until)
    return where_


def _view(row: Any) -> AuditView:
    return AuditView(
        id=row.id,
        at=row.at,
        actor_id=row.actor_id,
        actor_email=row.actor_email,
        credential_type=row.credential_type,
        credential_id=row.credential_id,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        detail=row.detail,
        ip=row.ip,
        user_agent=row.user_agent,
    )


async def search(
    flt: AuditFilter, *, limit: int = 50, offset: int = 0
) -> tuple[list[AuditView], int]:
    """A page of the rows that match, newest first, and how many match in all."""
    database = _database()
    conditions = _conditions(flt)

    def read() -> tuple[list[AuditView], int]:
        with database.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(TABLE).where(*conditions)
            ).scalar_one()
            rows = conn.execute(
                sa.select(TABLE)
                .where(*conditions)
                .order_by(TABLE.c.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
        return [_view(r) for r in rows], int(total)

    return await asyncio.to_thread(read)


def pages(flt: AuditFilter, size: int = 1000) -> Iterator[list[AuditView]]:
    """Every matching row, newest first, a page at a time (keyset: rows added meanwhile do
    not shift the pages). Blocking: call from a thread."""
    database = _database()
    conditions = _conditions(flt)
    before: int | None = None
    while True:
        query = sa.select(TABLE).where(*conditions)
        if before is not None:
            query = query.where(TABLE.c.id < before)
        with database.connect() as conn:
            rows = conn.execute(query.order_by(TABLE.c.id.desc()).limit(size)).all()
        if not rows:
            return
        yield [_view(r) for r in rows]
        if len(rows) < size:
            return
        before = rows[-1].id


def webhook_action(changed: list[str], enabled: bool | None) -> Action:
    """What a change of a webhook endpoint is called: switching it on or off alone is
    `webhook.enable` / `webhook.disable`, anything else `webhook.update`."""
    if changed == ["enabled"]:
        return "webhook.enable" if enabled else "webhook.disable"
    return "webhook.update"
