"""`GET /api/tasks/{task_id}/log`: a task's whole timeline as a file, JSON Lines or CSV.

For the browser (the task page's download links, with the session cookie) and for scripts
(a client token in `Authorization: Bearer`, which wins when both are sent). Access goes
through `engine.get_visible`, the policy of every path: another user's task is "not found"
exactly like an unknown id. Every event is in the file, in order, read from the engine a
page at a time while the answer streams.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Cookie, Depends, Query
from fastapi.responses import StreamingResponse

from spyglass.api.auth import Bearer, bearer_user, require_scope
from spyglass.api.errors import TOKEN_ERRORS, responses
from spyglass.auth.service import SESSION_COOKIE, UserInfo, get_auth
from spyglass.errors import DomainError
from spyglass.tasks.access import TASKS_READ
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import event_view

#: Timeline lines read from the engine at a time while the file streams.
PAGE = 1000
#: The columns of the CSV file (`data` as JSON).
CSV_COLUMNS = ("task_id", "seq", "timestamp", "event_type", "message", "data")
#: A cell starting with one of these is read as a formula by spreadsheets: it gets an
#: apostrophe in front (OWASP's advice against CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MEDIA_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}

LogFormat = Literal["jsonl", "csv"]


async def log_reader(
    credentials: Bearer,
    session: Annotated[str, Cookie(alias=SESSION_COOKIE, include_in_schema=False)] = "",
) -> UserInfo:
    """Who asks: the client token's owner, else the browser's signed-in user (401: neither)."""
    if credentials is not None:
        token, owner = await bearer_user(credentials)
        require_scope(token, owner, TASKS_READ)
        return owner
    user = await get_auth().session_user(session)
    if user is None:
        raise DomainError(
            "NOT_AUTHENTICATED",
            "Sign in, or send a client token as `Authorization: Bearer <token>`",
            401,
        )
    return user


LogReader = Annotated[UserInfo, Depends(log_reader)]

router = APIRouter(prefix="/api/tasks", tags=["tasks"])

LINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One line per timeline event, in order",
    "properties": {
        "task_id": {"type": "string"},
        "seq": {"type": "integer"},
        "timestamp": {"type": ["string", "null"], "format": "date-time"},
        "event_type": {"type": "string"},
        "message": {"type": ["string", "null"]},
        "data": {},
    },
}


@router.get(
    "/{task_id}/log",
    response_class=StreamingResponse,
    summary="Download the task's whole timeline (JSON Lines or CSV)",
    description=(
        "Every event of the task, in order: `format=jsonl` gives one JSON object per line "
        "(`task_id, seq, timestamp, event_type, message, data`), `format=csv` the same "
        "columns with `data` as JSON (a cell a spreadsheet would read as a formula starts "
        "with an apostrophe). Authenticated with a client token (`Authorization: Bearer`) "
        "or, from the browser, the session cookie."
    ),
    responses={
        200: {
            "description": "The timeline as a file (`Content-Disposition: attachment`)",
            "content": {
                "application/x-ndjson": {"schema": LINE_SCHEMA},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        **responses(*TOKEN_ERRORS, 404),
    },
)
async def download_log(
    task_id: str,
    viewer: LogReader,
    format: Annotated[LogFormat, Query(description="`jsonl` (JSON Lines) or `csv`")] = "jsonl",
) -> StreamingResponse:
    engine = get_engine()
    await engine.get_visible(task_id, viewer)
    lines = _jsonl(task_id) if format == "jsonl" else _csv(task_id)
    return StreamingResponse(
        lines,
        media_type=MEDIA_TYPES[format],
        headers={
            "Content-Disposition": f'attachment; filename="task-{task_id}-log.{format}"',
            "Cache-Control": "no-store",
        },
    )


async def _events(task_id: str) -> AsyncIterator[dict[str, Any]]:
    after = 0
    while True:
        page = await get_engine().events(task_id, after_seq=after, limit=PAGE)
        for event in page:
            yield {"task_id": task_id, **event_view(event)}
        if len(page) < PAGE:
            return
        after = page[-1].seq


async def _jsonl(task_id: str) -> AsyncIterator[str]:
    async for line in _events(task_id):
        yield json.dumps(line, ensure_ascii=False, default=str) + "\n"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


async def _csv(task_id: str) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    async for line in _events(task_id):
        data = line["data"]
        writer.writerow(
            [
                line["task_id"],
                line["seq"],
                line["timestamp"] or "",
                line["event_type"],
                _cell(line["message"]),
                "" if data is None else json.dumps(data, ensure_ascii=False, default=str),
            ]
        )
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
