"""Bulk actions over a filter: cancel, retry or delete every task that matches the list's
filters, for a user's own tasks (admins: everyone's), counted and confirmed first.

The first call (no `confirm`) acts on nothing: it answers how many tasks the action would
touch and a confirmation token bound to the caller, the action, the filter and that count
(signed, 10 minutes). The second call with the same filter and `confirm=<token>` acts, if
the count is still the same; else 409 BULK_COUNT_CHANGED with the new count and a new token.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from spyglass import audit
from spyglass.api.auth import Manager
from spyglass.api.errors import TOKEN_ERRORS, error_answer, responses
from spyglass.api.rest import STATUS_LIST, parse_statuses
from spyglass.config import get_settings
from spyglass.errors import DomainError
from spyglass.tasks.engine import TaskNotFound, get_engine
from spyglass.tasks.registry import registry
from spyglass.tasks.status import ACTIVE_STATUSES, TaskStatus
from spyglass.tasks.view import TaskQuery

Action = Literal["cancel", "retry", "delete"]
#: The statuses each action applies to (None: any).
APPLIES_TO: dict[str, frozenset[TaskStatus] | None] = {
    "cancel": frozenset(ACTIVE_STATUSES),
    "retry": frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED}),
    "delete": None,
}
CONFIRM_SECONDS = 600
MOST = 10_000


class BulkFailure(BaseModel):
    task_id: str
    error_code: str
    detail: str


class BulkResult(BaseModel):
    action: str
    statuses: list[str] = Field(description="The statuses the action applied to")
    matched: int = Field(description="Tasks the action applies to, now")
    executed: bool = Field(description="False: counted only; send `confirm` to act")
    confirm: str | None = Field(
        default=None, description="Send this back as `confirm` (with the same filter) to act"
    )
    confirm_expires_in: int | None = None
    done: int = 0
    failed: int = 0
    failures: list[BulkFailure] = Field(default_factory=list, description="The first 20")


def _sign(user_id: int, action: str, query: TaskQuery, count: int, expires: int) -> str:
    statuses = ",".join(sorted(s.value for s in query.statuses))
    text = "|".join(
        str(part)
        for part in (
            user_id,
            action,
            statuses,
            query.state_name,
            query.task_name,
            query.tool_id,
            count,
            expires,
        )
    )
    key = get_settings().secret_key.encode()
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:40]


def confirmation(user_id: int, action: str, query: TaskQuery, count: int) -> str:
    expires = int(time.time()) + CONFIRM_SECONDS
    return f"{count}.{expires}.{_sign(user_id, action, query, count, expires)}"


def _effective(action: str, asked: list[TaskStatus]) -> list[TaskStatus]:
    allowed = APPLIES_TO[action]
    if allowed is None:
        return asked
    if not asked:
        return sorted(allowed, key=lambda s: s.value)
    return [s for s in asked if s in allowed]


BULK_AUDIT: dict[str, audit.Action] = {
    "cancel": "tasks.bulk_cancel",
    "retry": "tasks.bulk_retry",
    "delete": "tasks.bulk_delete",
}


def _audit_detail(statuses: list[str], query: TaskQuery, matched: int) -> dict[str, Any]:
    flt = {"state_name": query.state_name, "task_type": query.task_name, "tool_id": query.tool_id}
    return {
        "count": 0,
        "matched": matched,
        "failed": 0,
        "statuses": statuses,
        **{k: v for k, v in flt.items() if v is not None},
    }


router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=responses(*TOKEN_ERRORS, 422))


@router.post(
    "/bulk/{action}",
    response_model=BulkResult,
    summary="Cancel, retry or delete every task matching the filters (count, then confirm)",
    description=__doc__,
    responses={
        **responses(400),
        409: error_answer(
            409,
            "BULK_COUNT_CHANGED: the tasks matching changed since the count (`context`: "
            "`matched` and a new `confirm`); BULK_CONFIRMATION_EXPIRED: count again",
        ),
    },
)
async def bulk_action(
    action: Action,
    request: Request,
    user: Manager,
    status: Annotated[
        str | None,
        Query(
            description="Comma list, e.g. FAILED,CANCELLED (default: every status the "
            "action applies to)",
            json_schema_extra={"pattern": STATUS_LIST},
        ),
    ] = None,
    tool_id: str | None = None,
    task_type: str | None = None,
    state_name: str | None = None,
    confirm: Annotated[
        str | None,
        Query(
            description="The token of the counting call: act now",
            max_length=200,
            pattern=r"^\d{1,10}\.\d{1,12}\.[0-9a-f]{40}$",
        ),
    ] = None,
) -> Any:
    asked = parse_statuses(status)
    statuses = _effective(action, asked)
    canonical = None
    if state_name is not None:
        canonical = registry.canonical_state(state_name) or state_name
    query = TaskQuery(statuses=statuses, state_name=canonical, task_name=task_type, tool_id=tool_id)
    engine = get_engine()
    answer: dict[str, Any] = {"action": action, "statuses": [s.value for s in statuses]}
    if asked and not statuses:  # asked only for statuses the action does not apply to
        return {**answer, "matched": 0, "executed": confirm is not None}
    count = await engine.count_matching(user, query)
    if count > MOST:
        raise DomainError(
            "BULK_TOO_MANY", f"{count} tasks match; narrow the filter to {MOST} or fewer", 400
        )
    fresh = {
        "matched": count,
        "confirm": confirmation(user.id, action, query, count),
        "confirm_expires_in": CONFIRM_SECONDS,
    }
    if confirm is None:
        return {**answer, **fresh, "executed": False}
    counted, expires, signature = confirm.split(".")
    expected = _sign(user.id, action, query, int(counted), int(expires))
    if not hmac.compare_digest(expected, signature):
        raise DomainError(
            "BULK_CONFIRMATION_INVALID",
            "This confirmation is for another action, filter or caller: count again",
            400,
        )
    if int(expires) < time.time():
        raise DomainError(
            "BULK_CONFIRMATION_EXPIRED", "The confirmation expired: count again", 409, fresh
        )
    if int(counted) != count:
        raise DomainError(
            "BULK_COUNT_CHANGED",
            f"{count} tasks match now, not {counted}: confirm the new count",
            409,
            fresh,
        )
    done, failures = 0, []
    detail = _audit_detail(answer["statuses"], query, count)
    # One row when the loop ends, with what it did, even if it broke off half-way.
    async with audit.recording(request, user, BULK_AUDIT[action], "tasks", detail):
        for task_id in await engine.matching_ids(user, query, count):
            try:
                if action == "cancel":
                    ok = await engine.cancel(task_id)
                    if not ok:
                        raise DomainError("TASK_NOT_CANCELLABLE", "It had ended meanwhile", 400)
                elif action == "retry":
                    await engine.retry(task_id)
                else:
                    await engine.delete(task_id)
                done += 1
            except TaskNotFound:
                failures.append(
                    {"task_id": task_id, "error_code": "TASK_NOT_FOUND", "detail": "Gone"}
                )
            except DomainError as exc:
                failures.append({"task_id": task_id, "error_code": exc.code, "detail": exc.message})
            detail.update(count=done, failed=len(failures))
    return {
        **answer,
        "matched": count,
        "executed": True,
        "done": done,
        "failed": len(failures),
        "failures": failures[:20],
    }
