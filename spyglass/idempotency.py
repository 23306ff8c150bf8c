"""`Idempotency-Key` on every start path: the table of what a start answered, by who sent
it and the key, and the rule (`once`)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlmodel import Column, Field, SQLModel

from spyglass.errors import DomainError
from spyglass.tasks.models import UTCDateTime, utcnow


class IdempotencyRecord(SQLModel, table=True):
    """One start made with an `Idempotency-Key`: `scope` is its sender (`user:<id>`, or
    `addr:<address>` on the token-free path), `request_hash` what was asked (method, path,
    query, body), and the answer given (None while the first request is still starting)."""

    __tablename__ = "idempotency_key"

    scope: str = Field(primary_key=True, max_length=80)
    key: str = Field(primary_key=True, max_length=255)
    request_hash: str = Field(max_length=64)
    status_code: int | None = None
    response: str | None = None
    task_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


# -- the rule: what every start path does with an `Idempotency-Key` header -------------

HEADER = "Idempotency-Key"
KEY_PATTERN = r"^[\x21-\x7E]{1,255}$"
_KEY = re.compile(KEY_PATTERN)
TABLE = IdempotencyRecord.__table__  # type: ignore[attr-defined]
#: How long a second request waits for the first one with its key to finish starting.
WAIT_FOR_FIRST = 30.0
REPLAYED = "Idempotent-Replayed"

#: The header in /openapi.json, on every start route.
HEADER_DOC: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes the start safe to send again: the same key from the same sender within 24 h "
        "answers the original task (same status code and body, with `Idempotent-Replayed: "
        "true`); the same key with a different request answers 409 IDEMPOTENCY_KEY_REUSED"
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
}
CONFLICT_DOC = (
    "The state does not allow it, or (IDEMPOTENCY_KEY_REUSED) this Idempotency-Key was "
    "used for another request, or (IDEMPOTENCY_KEY_IN_USE) its first request is still running"
)


def header_key(request: Request) -> str | None:
    """The request's Idempotency-Key (None without one); 422 when it is malformed."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.match(key):
        raise RequestValidationError(
            [
                {
                    "type": "string_pattern_mismatch",
                    "loc": ("header", HEADER),
                    "msg": "1 to 255 visible ASCII characters",
                    "input": key,
                }
            ]
        )
    return key


def has_key(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether raw ASCGI headers carry an Idempotency-Key (cheap: no parsing)."""
    return any(name == b"idempotency-key" for name, _ in headers)


async def request_hash(request: Request) -> str:
    """What was asked: method, path, query (the schedule) and body (JSON compared by
    value, so spacing and key order do not count)."""
    raw = await request.body()
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")) if raw else ""
    except ValueError:
        body = raw.decode("latin-1")
    query = "&".join(sorted(request.url.query.split("&"))) if request.url.query else ""
    text = "\n".join([request.method, request.url.path, query, body])
    return hashlib.sha256(text.encode()).hexdigest()


def _database() -> sa.Engine:
    from spyglass.tasks.engine import get_engine

    return get_engine().database


def _claim(scope: str, key: str, digest: str, hours: float) -> Any:
    """Record the key for this request (None: ours now), or return the row that holds it."""
    database = _database()
    now = utcnow()
    where = (TABLE.c.scope == scope, TABLE.c.key == key)
    with database.begin() as conn:  # a record past its time is forgotten
        conn.execute(
            sa.delete(TABLE).where(*where, TABLE.c.created_at < now - timedelta(hours=hours))
        )
    try:
        with database.begin() as conn:
            conn.execute(
                sa.insert(TABLE).values(scope=scope, key=key, request_hash=digest, created_at=now)
            )
        return None
    except sa.exc.IntegrityError:
        with database.connect() as conn:
            return conn.execute(sa.select(TABLE).where(*where)).first()


def _finish(scope: str, key: str, status: int, body: bytes, task_id: str | None) -> None:
    with _database().begin() as conn:
        conn.execute(
            sa.update(TABLE)
            .where(TABLE.c.scope == scope, TABLE.c.key == key)
            .values(status_code=status, response=body.decode(), task_id=task_id)
        )


def _forget(scope: str, key: str) -> None:
    with _database().begin() as conn:
        conn.execute(sa.delete(TABLE).where(TABLE.c.scope == scope, TABLE.c.key == key))


def _read(scope: str, key: str) -> Any:
    with _database().connect() as conn:
        return conn.execute(
            sa.select(TABLE).where(TABLE.c.scope == scope, TABLE.c.key == key)
        ).first()


def _replay(row: Any) -> Response:
    return Response(
        row.response,
        status_code=row.status_code,
        media_type="application/json",
        headers={REPLAYED: "true"},
    )


def reused() -> DomainError:
    return DomainError(
        "IDEMPOTENCY_KEY_REUSED",
        "This Idempotency-Key was used for a different request: use a new key for a new start",
        409,
    )


async def once(
    request: Request,
    scope: str,
    key: str | None,
    start: Callable[[], Awaitable[Response]],
) -> Response:
    """Run `start` once per (sender, key): a repeat of the request within the key's time
    gets the stored answer, another request with the key a 409. Without a key, just
    `start`. Only a successful start (2xx) is remembered; a refusal frees the key."""
    if key is None:
        return await start()
    from spyglass.config import get_settings

    hours = get_settings().idempotency_hours
    digest = await request_hash(request)
    held = await asyncio.to_thread(_claim, scope, key, digest, hours)
    if held is not None:
        if held.request_hash != digest:
            raise reused()
        deadline = asyncio.get_running_loop().time() + WAIT_FOR_FIRST
        while held is not None and held.status_code is None:
            if asyncio.get_running_loop().time() > deadline:
                raise DomainError(
                    "IDEMPOTENCY_KEY_IN_USE",
                    "The first request with this Idempotency-Key is still being answered",
                    409,
                )
            await asyncio.sleep(0.05)
            held = await asyncio.to_thread(_read, scope, key)
        if held is None:  # the first request was refused meanwhile: this one goes ahead
            return await once(request, scope, key, start)
        return _replay(held)
    try:
        response = await start()
    except BaseException:
        await asyncio.shield(asyncio.to_thread(_forget, scope, key))
        raise
    if not 200 <= response.status_code < 300:
        await asyncio.to_thread(_forget, scope, key)
        return response
    body = bytes(response.body)
    task_id = None
    with contextlib.suppress(ValueError, AttributeError):
        task_id = json.loads(body).get("task_id")
    await asyncio.to_thread(_finish, scope, key, response.status_code, body, task_id)
    return response
