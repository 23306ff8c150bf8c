"""The audit log for admins: `GET /api/admin/audit` (filtered, paged) and its CSV export.

Read-only by design: there is no route that changes or removes a row (any other method on
these paths is 405), and the database refuses it too. A client token (`Authorization:
Bearer`) or, from the browser, the session cookie; anyone but an admin gets 403.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from spyglass import audit
from spyglass.api.bounds import OffsetQuery
from spyglass.api.errors import TOKEN_ERRORS, responses
from spyglass.api.logs import FORMULA_START, LogReader
from spyglass.api.scheduling import START_AT, parse_start_at
from spyglass.errors import DomainError
from spyglass.tasks.access import is_admin

#: `action`: one of the actions, or a family (`task.*`, `tasks.*`, `webhook.*` …).
ACTION_VALUES = [*audit.FAMILIES, *audit.ACTIONS]
CSV_COLUMNS = (
    "id",
    "at",
    "actor_id",
    "actor_email",
    "credential_type",
    "credential_id",
    "action",
    "target_type",
    "target_id",
    "detail",
    "ip",
    "user_agent",
)


class AuditEventOut(BaseModel):
    id: int
    at: datetime = Field(description="When (UTC)")
    actor_id: int | None = Field(description="The user who acted (null: system or anonymous)")
    actor_email: str = Field(description="Their email at the time, `system` or `anonymous`")
    credential_type: str = Field(description="`token`, `session`, or empty")
    credential_id: int | None = Field(description="The client token's or session's id")
    action: str = Field(json_schema_extra={"enum": list(audit.ACTIONS)})
    target_type: str = Field(json_schema_extra={"enum": list(audit.TARGET_TYPES)})
    target_id: str = Field(description="The task id, user id, token id … (empty for `tasks`)")
    detail: dict[str, Any] | None = Field(description="Counts, old and new values")
    ip: str = Field(description="The client's address")
    user_agent: str = Field(description="Its user agent (at most 200 characters)")


class AuditPage(BaseModel):
    events: list[AuditEventOut] = Field(description="Newest first")
    total: int
    limit: int
    offset: int
    has_more: bool


def event_out(view: audit.AuditView) -> dict[str, Any]:
    return {name: getattr(view, name) for name in AuditEventOut.model_fields}


def require_admin(user: Any) -> None:
    if not is_admin(user):
        raise DomainError("FORBIDDEN", "Only admins read the audit log", 403)


def _time(raw: str | None, name: str) -> datetime | None:
    return parse_start_at(raw, name) if raw is not None else None


def _time_query(description: str) -> Any:
    return Query(
        description=description + " (RFC 3339, with its time zone)",
        pattern=START_AT,
        json_schema_extra={"format": "date-time"},
    )


async def audit_filter(
    actor: Annotated[
        str | None,
        Query(
            max_length=320,
            description="The actor's email (any case), `system` or `anonymous`",
        ),
    ] = None,
    action: Annotated[
        str | None,
        Query(
            max_length=40,
            description="An action (`task.cancel`) or a family (`task.*`, `webhook.*`)",
            json_schema_extra={"enum": ACTION_VALUES},
        ),
    ] = None,
    target_type: Annotated[
        str | None, Query(json_schema_extra={"enum": list(audit.TARGET_TYPES)})
    ] = None,
    target_id: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[str | None, _time_query("At or after this time")] = None,
    until: Annotated[str | None, _time_query("Before this time")] = None,
) -> audit.AuditFilter:
    if target_type is not None and target_type not in audit.TARGET_TYPES:
        raise DomainError(
            "INVALID_TARGET_TYPE", f"target_type is one of {', '.join(audit.TARGET_TYPES)}", 400
        )
    if action is not None and action not in ACTION_VALUES:
        raise DomainError("INVALID_ACTION", f"No audit action '{action}'", 400)
    return audit.AuditFilter(
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        since=_time(since, "since"),
        until=_time(until, "until"),
    )


AuditQuery = Annotated[audit.AuditFilter, Depends(audit_filter)]
router = APIRouter(tags=["audit"], responses=responses(*TOKEN_ERRORS, 400, 403, 422))
FILTER_DOC = (
    "Every admin and destructive action: who (`actor_email`, with the credential), what "
    "(`action`, `target_type`, `target_id`, `detail`), when (`at`) and from where (`ip`, "
    "`user_agent`). Filters combine (all must hold). Authenticated with a client token "
    "(`Authorization: Bearer`) or, from the browser, the session cookie; admins only. "
    "Nothing changes or removes a row: there is no route for it."
)


@router.get(
    "/api/admin/audit",
    response_model=AuditPage,
    summary="The audit log, newest first, filtered and paged (admins)",
    description=FILTER_DOC,
)
async def list_audit(
    user: LogReader,
    flt: AuditQuery,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: OffsetQuery = 0,
) -> Any:
    require_admin(user)
    found, total = await audit.search(flt, limit=limit, offset=offset)
    return {
        "events": [event_out(v) for v in found],
        "total": total,
        "limit": limit,
        "offset": offset,
        "has_more": offset + len(found) < total,
    }


@router.get(
    "/api/admin/audit.csv",
    response_class=StreamingResponse,
    summary="The audit log as CSV, newest first, with the same filters (admins)",
    description=FILTER_DOC
    + " A cell a spreadsheet would read as a formula starts with an apostrophe.",
    responses={
        200: {
            "description": "Every matching row (`Content-Disposition: attachment`)",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def export_audit(user: LogReader, flt: AuditQuery) -> StreamingResponse:
    require_admin(user)
    return StreamingResponse(
        _csv(flt),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="spyglass-audit.csv"',
            "Cache-Control": "no-store",
        },
    )


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


async def _csv(flt: audit.AuditFilter) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    pages = audit.pages(flt)
    while True:
        page = await asyncio.to_thread(next, pages, None)
        if page is None:
            break
        for row in page:
            detail = "" if row.detail is None else json.dumps(row.detail, ensure_ascii=False)
            writer.writerow(
                [
                    row.id,
                    row.at.isoformat(),
                    "" if row.actor_id is None else row.actor_id,
                    _cell(row.actor_email),
                    row.credential_type,
                    "" if row.credential_id is None else row.credential_id,
                    row.action,
                    row.target_type,
                    _cell(row.target_id),
                    _cell(detail),
                    _cell(row.ip),
                    _cell(row.user_agent),
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()
