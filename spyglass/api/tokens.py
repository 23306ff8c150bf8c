"""Client-token endpoints (S004): start a job for the token's owner, stream their tasks,
and manage tokens with `Authorization: Bearer`.

A token start needs no browser: the task belongs to the token's owner and appears
live in their pages and on the admin dashboard. A bad, expired or revoked token is 401 on
HTTP and an error message plus close 1008 on sockets; an open socket closes the
moment its token is revoked or expires.

Tokens carry scopes and an optional expiry, chosen when issued (here, on the page's token
panel, or by `POST /api/auth/token` with a password). Starting needs `tasks:start`, the
sockets `tasks:read`, managing tokens `tokens:manage`: without it 403 `INSUFFICIENT_SCOPE`
on HTTP, and that error plus close 1008 on sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, WebSocket
from pydantic import BaseModel, ConfigDict, Field, model_validator

from spyglass import audit, idempotency
from spyglass.api.auth import (
    CurrentCredential,
    StartToken,
    TokenManager,
    path_credential,
)
from spyglass.api.bounds import IdPath
from spyglass.api.direct import (
    START_BODY_DOC,
    IdempotencyKey,
    TaskResponse,
    find_job,
    read_json_body,
    task_answer,
    validation_response,
)
from spyglass.api.errors import TOKEN_ERRORS, error_answer, responses
from spyglass.api.scheduling import StartSchedule
from spyglass.api.session import POST_ERRORS, client_address, json_only
from spyglass.api.sockets import (
    Feed,
    TokenEnd,
    Told,
    reject,
    serve_single_task,
    serve_until_done,
    socket_session,
)
from spyglass.auth.service import MAX_TOKEN_DAYS, TokenInfo, UserInfo, get_auth
from spyglass.errors import DomainError
from spyglass.tasks.access import (
    SCOPE_DOC,
    SCOPES,
    TASKS_READ,
    can_read,
    is_admin,
    owner_scope,
    role_of,
    token_scope,
)
from spyglass.tasks.bus import Subscription, TaskMessage, Topic
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import direct_view, socket_payload
from spyglass.tasks.models import utcnow
from spyglass.tasks.registry import JobInputError, registry
from spyglass.tasks.status import ACTIVE_STATUSES
from spyglass.tasks.view import TaskQuery, TaskView
from spyglass.tools.catalogue import TOOLS_STATE


def state_of(name: str) -> str | None:
    """The canonical state a path names: a job state (or its alias) or the data tools."""
    return registry.canonical_state(name) or (name if name == TOOLS_STATE else None)


def owned_by_token(task: TaskView, viewer: UserInfo, state_name: str) -> bool:
    """A token sees what its owner may see (access policy), of the state it names;
    anything else is 'not found'."""
    return can_read(task, viewer) and state_of(state_name) == task.state_name


Scope = Literal["tasks:read", "tasks:start", "tasks:manage", "tokens:manage"]
assert set(Scope.__args__) == set(SCOPES)  # type: ignore[attr-defined]
SCOPES_DESCRIPTION = (
    "What the token may do; none given: every scope (as tokens issued before scopes). "
    + "; ".join(f"`{scope}`: {doc}" for scope, doc in SCOPE_DOC.items())
    + ". A token never does more than its owner's role allows."
)


class TokenOut(BaseModel):
    id: int
    prefix: str
    name: str
    owner_email: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None = Field(description="None: never expires")
    last_used_at: datetime | None
    revoked_at: datetime | None


class IssuedToken(TokenOut):
    token: str = Field(description="The secret; shown this once only")


class TokenSummary(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[Scope]
    expires_at: datetime | None


class Me(BaseModel):
    user_id: int
    email: str
    is_admin: bool
    role: Literal["admin", "operator", "viewer", "user"]
    credits: int
    token: TokenSummary


class Revoked(BaseModel):
    token_id: int
    revoked: bool
    changed: bool = Field(description="False if it was revoked already")


class TokenLifetime(BaseModel):
    """The scopes and expiry of a token being issued (`expires_in_days` or `expires_at`, not
    both)."""

    model_config = ConfigDict(
        json_schema_extra={"not": {"required": ["expires_in_days", "expires_at"]}}
    )

    scopes: list[Scope] | None = Field(
        default=None,
        min_length=1,
        max_length=len(SCOPES),
        description=SCOPES_DESCRIPTION,
        examples=[["tasks:read", "tasks:start"]],
    )
    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKEN_DAYS,
        description="Expire this many days from now (or give `expires_at`)",
        examples=[30],
    )
    expires_at: datetime | None = Field(
        default=None,
        description="Expire at this time (RFC 3339, with its time zone); none: never",
    )

    @model_validator(mode="after")
    def one_expiry(self) -> TokenLifetime:
        if {"expires_in_days", "expires_at"} <= self.model_fields_set:
            raise ValueError("give expires_in_days or expires_at, not both")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs its time zone (e.g. 2027-01-31T00:00:00Z)")
        return self

    def expiry(self) -> datetime | None:
        if self.expires_in_days is not None:
            return utcnow() + timedelta(days=self.expires_in_days)
        return self.expires_at


class TokenRequest(TokenLifetime):
    name: str = Field(min_length=1, max_length=100, examples=["nightly import"])
    owner_email: str | None = Field(
        default=None, description="Admins may issue a token for another user"
    )


#: A token issued by `POST /api/auth/token` without an expiry lives this long.
LOGIN_TOKEN_DAYS = 90


class PasswordTokenRequest(TokenLifetime):
    email: str = Field(max_length=1000, examples=["me@example.com"])
    password: str = Field(max_length=4096)
    name: str = Field(default="cli", min_length=1, max_length=100, examples=["laptop cli"])
    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TOKEN_DAYS,
        description=f"Expire this many days from now (default {LOGIN_TOKEN_DAYS}; or give "
        "`expires_at`)",
        examples=[30],
    )

    def expiry(self) -> datetime | None:
        if self.expires_in_days is None and self.expires_at is None:
            return utcnow() + timedelta(days=LOGIN_TOKEN_DAYS)
        return super().expiry()


async def _socket_credential(ws: WebSocket, client_token: str) -> tuple[TokenInfo, UserInfo] | None:
    """The socket's valid token (counted against its rate) with `tasks:read`, and its
    owner; else an error message and close 1008."""
    try:
        return await path_credential(client_token, TASKS_READ)
    except DomainError as exc:
        await reject(ws, exc.message, exc.code)
        return None


@contextlib.contextmanager
def _watching(token: TokenInfo) -> Iterator[asyncio.Event]:
    """Set when the token is revoked, or when it expires."""
    ended = TokenEnd()
    with get_auth().watching(token.id, ended):
        timer = None
        if token.expires_at is not None:
            left = max(0.0, (token.expires_at - utcnow()).total_seconds())
            timer = asyncio.get_running_loop().call_later(left, ended.expire)
        try:
            yield ended
        finally:
            if timer is not None:
                timer.cancel()


def _out(token: TokenInfo) -> dict[str, Any]:
    fields = {k: getattr(token, k) for k in TokenOut.model_fields}
    return TokenOut(**{**fields, "scopes": list(token.scopes)}).model_dump()


async def _stream_owner_tasks(
    ws: WebSocket, sub: Subscription, versions: dict[str, int], snapshots: list[TaskView]
) -> None:
    """Every change of the subscribed tasks, skipping what the snapshot already held (and,
    for those running on other workers, a restatement of what the socket was told)."""
    told = Told(snapshots)

    def newer(msg: TaskMessage) -> bool:
        return msg.version > versions.get(msg.task_id, -1) and told.fresh(msg)

    await Feed(ws, sub, newer, end_at_terminal=False).run()


router = APIRouter()


@router.post(
    "/api/{state_name}/tasks/{client_token}/start/{task_name}",
    response_model=TaskResponse,
    tags=["client token"],
    summary="Start a job for the token's owner (no browser needed)",
    description="The body fits the job's input model (see `GET /api/jobs`); "
    "an empty body takes the job's default arguments.",
    responses={
        **responses(*TOKEN_ERRORS, 402, 404, 422),
        403: error_answer(
            403, "INSUFFICIENT_SCOPE: the token lacks `tasks:start`, or its owner's role does"
        ),
        409: error_answer(409, "JOB_NEEDS_PAGE: an instance job; or " + idempotency.CONFLICT_DOC),
    },
    openapi_extra=START_BODY_DOC,
)
async def start_with_token(
    state_name: str,
    client_token: str,
    task_name: str,
    request: Request,
    token: StartToken,
    schedule: StartSchedule,
    key: IdempotencyKey = None,
) -> Any:
    spec = find_job(state_name, task_name)
    if not spec.is_static:
        raise DomainError(
            "JOB_NEEDS_PAGE",
            f"Job '{task_name}' is an instance job: it runs in a browser's page state; "
            "start it from its page",
            409,
        )

    async def start() -> Any:
        try:
            body = await read_json_body(request, spec)
            task = await get_engine().start_job(
                spec,
                body,
                origin="token",
                owner_id=token.owner_id,
                client_id=str(token.id),
                schedule=schedule,
            )
        except JobInputError as exc:
            return validation_response(exc)
        return task_answer(direct_view(task))

    return await idempotency.once(request, f"user:{token.owner_id}", key, start)


@router.websocket("/ws/{state_name}/tasks/{client_token}/{task_id}")
async def token_task_socket(
    ws: WebSocket, state_name: str, client_token: str, task_id: str
) -> None:
    async with socket_session(ws):
        credential = await _socket_credential(ws, client_token)
        if credential is None:
            return
        token, viewer = credential
        with _watching(token) as revoked:
            await serve_single_task(
                ws, task_id, lambda task: owned_by_token(task, viewer, state_name), revoked
            )


@router.websocket("/ws/{state_name}/tasks/{client_token}")
async def token_tasks_socket(ws: WebSocket, state_name: str, client_token: str) -> None:
    """Every task of the token's owner on this state: snapshots of the running ones,
    then every change, until the client leaves or the token is revoked."""
    async with socket_session(ws):
        credential = await _socket_credential(ws, client_token)
        if credential is None:
            return
        token, viewer = credential
        canonical = state_of(state_name)
        if canonical is None:
            await reject(ws, f"No state '{state_name}'", "STATE_NOT_FOUND")
            return
        engine = get_engine()
        owner = owner_scope(viewer)  # an admin's token follows every user's tasks
        topic = Topic(state_name=canonical, owner_id=owner)
        with _watching(token) as revoked, engine.subscribe(topic) as sub:
            running = TaskQuery(statuses=tuple(ACTIVE_STATUSES), state_name=canonical)
            page = await engine.list_tasks(viewer, running, limit=100)
            # Read right after the snapshot, before any await: what it already holds.
            versions = {task.id: engine.live_version(task.id) for task in page.tasks}
            for task in reversed(page.tasks):
                snapshot = socket_payload("snapshot", task)
                await ws.send_text(json.dumps(snapshot, default=str))
            engine.catch_up(sub, page.tasks)  # those running in another process
            remote = [task for task in page.tasks if versions[task.id] < 0]
            stream = _stream_owner_tasks(ws, sub, versions, remote)
            await serve_until_done(ws, stream, revoked)


@router.get(
    "/api/me",
    tags=["client token"],
    summary="The token's owner, role and credits, and the token's scopes (any scope)",
    response_model=Me,
    responses=responses(*TOKEN_ERRORS),
)
async def me(credential: CurrentCredential) -> Any:
    token, user = credential
    return {
        "user_id": user.id,
        "email": user.email,
        "is_admin": user.is_admin,
        "role": role_of(user),
        "credits": user.credits,
        "token": {
            "id": token.id,
            "name": token.name,
            "prefix": token.prefix,
            "scopes": list(token.scopes),
            "expires_at": token.expires_at,
        },
    }


# -- token management --------------------------------------------------
@router.get(
    "/api/tokens",
    tags=["client token"],
    summary="Your tokens (admins: all)",
    response_model=list[TokenOut],
    responses=responses(*TOKEN_ERRORS),
)
async def list_tokens(user: TokenManager) -> Any:
    tokens = await get_auth().list_tokens(token_scope(user))
    return [_out(t) for t in tokens]


@router.post(
    "/api/tokens",
    tags=["client token"],
    status_code=201,
    summary="Issue a token with its scopes and expiry (admins may issue for another user)",
    response_model=IssuedToken,
    responses={
        **responses(*TOKEN_ERRORS, 404, 422),
        400: error_answer(400, "INVALID_NAME, INVALID_SCOPE or INVALID_EXPIRY"),
        403: error_answer(
            403,
            "INSUFFICIENT_SCOPE: the token lacks `tokens:manage`; FORBIDDEN: only admins "
            "issue tokens for others",
        ),
    },
)
async def issue_token(body: TokenRequest, request: Request, user: TokenManager) -> Any:
    owner: UserInfo | None = user
    if body.owner_email and body.owner_email.strip().lower() != user.email:
        if not is_admin(user):
            raise DomainError("FORBIDDEN", "Only admins issue tokens for other users", 403)
        owner = await get_auth().find_user(body.owner_email)
        if owner is None:
            raise DomainError("USER_NOT_FOUND", "No user with that email", 404)
    assert owner is not None
    raw, token = await get_auth().issue_token(
        owner.id, body.name, created_by=user.id, scopes=body.scopes, expires_at=body.expiry()
    )
    detail = {"owner": token.owner_email, "name": token.name, "prefix": token.prefix}
    await audit.record(request, user, "token.issue", "token", token.id, detail)
    return {**_out(token), "token": raw}


@router.delete(
    "/api/tokens/{token_id}",
    tags=["client token"],
    summary="Revoke a token: it stops working at once, open sockets close",
    response_model=Revoked,
    responses=responses(*TOKEN_ERRORS, 404, 422),
)
async def revoke_token(token_id: IdPath, request: Request, user: TokenManager) -> Any:
    changed = await get_auth().revoke_token(token_id, by=user)
    if changed:  # revoking a revoked token changes nothing
        await audit.record(request, user, "token.revoke", "token", token_id)
    return {"token_id": token_id, "revoked": True, "changed": changed}


@router.post(
    "/api/auth/token",
    tags=["client token"],
    status_code=201,
    summary="Issue a client token with an email and password (no browser needed)",
    description=(
        "For scripts and `spyglass login`. Limited like sign-in: failed attempts count per "
        "account and per address (`SPYGLASS_LIMIT_LOGIN_*`), then 429 even with the right "
        "password. An unknown email and a wrong password get the same answer. The token "
        f"expires in {LOGIN_TOKEN_DAYS} days unless `expires_in_days` or `expires_at` says "
        "otherwise; without `scopes` it has every scope (its owner's role still limits it)."
    ),
    response_model=IssuedToken,
    dependencies=[Depends(json_only)],
    responses={
        400: error_answer(400, "INVALID_SCOPE or INVALID_EXPIRY"),
        401: error_answer(401, "Wrong email or password (`BAD_CREDENTIALS`)"),
        **POST_ERRORS,
    },
)
async def token_with_password(body: PasswordTokenRequest, request: Request) -> Any:
    auth = get_auth()
    user = await auth.authenticate(body.email, body.password, client_address(request))
    raw, token = await auth.issue_token(
        user.id, body.name, created_by=user.id, scopes=body.scopes, expires_at=body.expiry()
    )
    return {**_out(token), "token": raw}
