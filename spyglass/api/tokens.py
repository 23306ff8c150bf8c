"""Client-token endpoints (S004): start a job for the token's owner, stream their tasks,
and manage tokens with `Authorization: Bearer`.

A token start needs no browser: the task belongs to the token's owner and appears
live in their pages and on the admin dashboard. A bad or revoked token is 401 on
HTTP and an error message plus close 1008 on sockets; an open socket closes the
moment its token is revoked.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, WebSocket
from pydantic import BaseModel, Field

from spyglass import audit, idempotency
from spyglass.api.auth import (
    INVALID_TOKEN,
    CurrentCredential,
    CurrentUser,
    PathToken,
    token_from_path,
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
from spyglass.api.sockets import (
    Feed,
    reject,
    serve_single_task,
    serve_until_done,
    socket_session,
)
from spyglass.auth.service import TokenInfo, UserInfo, get_auth
from spyglass.errors import DomainError
from spyglass.tasks.access import can_see, is_admin, owner_scope
from spyglass.tasks.bus import Subscription, TaskMessage, Topic
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import direct_view, socket_payload
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
    return can_see(task, viewer) and state_of(state_name) == task.state_name


class TokenOut(BaseModel):
    id: int
    prefix: str
    name: str
    owner_email: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class IssuedToken(TokenOut):
    token: str = Field(description="The secret; shown this once only")


class TokenSummary(BaseModel):
    id: int
    name: str
    prefix: str


class Me(BaseModel):
    user_id: int
    email: str
    is_admin: bool
    credits: int
    token: TokenSummary


class Revoked(BaseModel):
    token_id: int
    revoked: bool
    changed: bool = Field(description="False if it was revoked already")


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["nightly import"])
    owner_email: str | None = Field(
        default=None, description="Admins may issue a token for another user"
    )


async def _socket_credential(ws: WebSocket, client_token: str) -> tuple[TokenInfo, UserInfo] | None:
    """The socket's valid token (counted against its rate) and its owner; else an error
    message and close 1008."""
    try:
        token = await token_from_path(client_token)
    except DomainError as exc:
        await reject(ws, exc.message, exc.code)
        return None
    viewer = await get_auth().get_user(token.owner_id)
    if viewer is None:
        await reject(ws, INVALID_TOKEN, "INVALID_TOKEN")
        return None
    return token, viewer


def _out(token: TokenInfo) -> dict[str, Any]:
    return TokenOut(**{k: getattr(token, k) for k in TokenOut.model_fields}).model_dump()


async def _stream_owner_tasks(ws: WebSocket, sub: Subscription, versions: dict[str, int]) -> None:
    """Every change of the subscribed tasks, skipping what the snapshot already held."""

    def newer(msg: TaskMessage) -> bool:
        return msg.version > versions.get(msg.task_id, -1)

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
        **responses(*TOKEN_ERRORS, 402, 403, 404, 422),
        409: error_answer(409, "JOB_NEEDS_PAGE: an instance job; or " + idempotency.CONFLICT_DOC),
    },
    openapi_extra=START_BODY_DOC,
)
async def start_with_token(
    state_name: str,
    client_token: str,
    task_name: str,
    request: Request,
    token: PathToken,
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
        with get_auth().watching(token.id) as revoked:
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
        with get_auth().watching(token.id) as revoked, engine.subscribe(topic) as sub:
            running = TaskQuery(statuses=tuple(ACTIVE_STATUSES), state_name=canonical)
            page = await engine.list_tasks(viewer, running, limit=100)
            # Read right after the snapshot, before any await: what it already holds.
            versions = {task.id: engine.live_version(task.id) for task in page.tasks}
            for task in reversed(page.tasks):
                snapshot = socket_payload("snapshot", task)
                await ws.send_text(json.dumps(snapshot, default=str))
            await serve_until_done(ws, _stream_owner_tasks(ws, sub, versions), revoked)


@router.get(
    "/api/me",
    tags=["client token"],
    summary="The token's owner and credits",
    response_model=Me,
    responses=responses(*TOKEN_ERRORS),
)
async def me(credential: CurrentCredential) -> Any:
    token, user = credential
    return {
        "user_id": user.id,
        "email": user.email,
        "is_admin": user.is_admin,
        "credits": user.credits,
        "token": {"id": token.id, "name": token.name, "prefix": token.prefix},
    }


# -- token management --------------------------------------------------
@router.get(
    "/api/tokens",
    tags=["client token"],
    summary="Your tokens (admins: all)",
    response_model=list[TokenOut],
    responses=responses(*TOKEN_ERRORS),
)
async def list_tokens(user: CurrentUser) -> Any:
    tokens = await get_auth().list_tokens(owner_scope(user))
    return [_out(t) for t in tokens]


@router.post(
    "/api/tokens",
    tags=["client token"],
    status_code=201,
    summary="Issue a token (admins may issue for another user)",
    response_model=IssuedToken,
    responses=responses(*TOKEN_ERRORS, 400, 403, 404, 422),
)
async def issue_token(body: TokenRequest, request: Request, user: CurrentUser) -> Any:
    owner: UserInfo | None = user
    if body.owner_email and body.owner_email.strip().lower() != user.email:
        if not is_admin(user):
            raise DomainError("FORBIDDEN", "Only admins issue tokens for other users", 403)
        owner = await get_auth().find_user(body.owner_email)
        if owner is None:
            raise DomainError("USER_NOT_FOUND", "No user with that email", 404)
    assert owner is not None
    raw, token = await get_auth().issue_token(owner.id, body.name, created_by=user.id)
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
async def revoke_token(token_id: IdPath, request: Request, user: CurrentUser) -> Any:
    changed = await get_auth().revoke_token(token_id, by=user)
    if changed:  # revoking a revoked token changes nothing
        await audit.record(request, user, "token.revoke", "token", token_id)
    return {"token_id": token_id, "revoked": True, "changed": changed}
