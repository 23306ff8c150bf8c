"""Retention (admins): how long finished tasks are kept, by status and job, and a preview of
what the next sweep removes; and the search over event messages (everyone: their own)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from spyglass import audit
from spyglass.api.auth import Manager, Reader
from spyglass.api.bounds import OffsetQuery
from spyglass.api.errors import TOKEN_ERRORS, responses
from spyglass.errors import DomainError
from spyglass.tasks.access import Viewer, is_admin
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import iso
from spyglass.tasks.status import TERMINAL_STATUSES, TaskStatus
from spyglass.tasks.view import RetentionRuleView

FINAL: list[Any] = sorted(s.value for s in TERMINAL_STATUSES)


class RetentionRule(BaseModel):
    status: str = Field(
        description="A final status", json_schema_extra={"enum": FINAL}, examples=["COMPLETED"]
    )
    job: str = Field(
        default="",
        max_length=401,
        pattern=r"^$|^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$",
        description='`state.job` for one job ("" for every job; a job\'s own rule wins)',
        examples=["", "example_task_state2.task2_with_args"],
    )
    days: float | None = Field(
        default=None,
        gt=0,
        le=36500,
        description="Days after the end; null keeps them for ever",
        examples=[30],
    )


class RetentionRules(BaseModel):
    rules: list[RetentionRule] = Field(max_length=200)


class RetentionPreviewOut(BaseModel):
    total: int
    by_status: dict[str, int]
    rules: list[RetentionRule]


def sweep_detail(deleted: dict[str, int]) -> dict[str, Any]:
    return {"count": sum(deleted.values()), "by_status": deleted}


def require_admin(user: Viewer) -> None:
    if not is_admin(user):
        raise DomainError("FORBIDDEN", "Only admins set and preview retention", 403)


def _rules_out(rules: list[RetentionRuleView] | tuple[RetentionRuleView, ...]) -> list[Any]:
    return [{"status": r.status.value, "job": r.job, "days": r.days} for r in rules]


router = APIRouter(tags=["retention"], responses=responses(*TOKEN_ERRORS, 403, 422))


@router.get(
    "/api/admin/retention",
    response_model=RetentionRules,
    summary="The retention rules (admins)",
)
async def get_rules(user: Reader) -> Any:
    require_admin(user)
    return {"rules": _rules_out(await get_engine().retention_rules())}


@router.put(
    "/api/admin/retention",
    response_model=RetentionRules,
    summary="Replace the retention rules (admins)",
    responses=responses(400),
)
async def put_rules(body: RetentionRules, request: Request, user: Manager) -> Any:
    require_admin(user)
    rules = []
    for rule in body.rules:
        try:
            status = TaskStatus.parse(rule.status)
        except ValueError as exc:
            raise DomainError("INVALID_RETENTION_RULE", str(exc), 400) from None
        rules.append(RetentionRuleView(status, rule.job, rule.days))
    engine = get_engine()
    old = _rules_out(await engine.retention_rules())
    await engine.set_retention_rules(rules)
    new = _rules_out(await engine.retention_rules())
    detail = {"old": old, "new": new}
    await audit.record(request, user, "retention.change", "retention", "", detail)
    return {"rules": new}


@router.get(
    "/api/admin/retention/preview",
    response_model=RetentionPreviewOut,
    summary="What the next retention sweep deletes, by status (admins)",
)
async def preview(user: Reader) -> Any:
    require_admin(user)
    found = await get_engine().retention_preview()
    rules = _rules_out(found.rules)
    return {"total": found.total, "by_status": dict(found.by_status), "rules": rules}


class SweepOut(BaseModel):
    swept: bool = Field(description="False: another process is sweeping now")
    deleted: dict[str, int] = Field(description="Tasks deleted, by status")


@router.post(
    "/api/admin/retention/sweep",
    response_model=SweepOut,
    summary="Run the retention sweep now (admins)",
)
async def sweep_now(request: Request, user: Manager) -> Any:
    require_admin(user)
    from spyglass import retention

    deleted = await retention.sweep_once(get_engine(), force=True)
    if deleted is not None:
        await audit.record(request, user, "retention.sweep", "retention", "", sweep_detail(deleted))
    return {"swept": deleted is not None, "deleted": deleted or {}}


class SearchResult(BaseModel):
    task_id: str
    seq: int
    timestamp: str | None
    event_type: str
    message: str | None
    state_name: str
    task_type: str
    task_status: str
    task_url: str = Field(description="The task's page")
    events_url: str = Field(description="The timeline from this line on (REST)")


class SearchResults(BaseModel):
    query: str
    results: list[SearchResult]
    total: int
    limit: int
    offset: int


search_router = APIRouter(tags=["tasks"], responses=responses(*TOKEN_ERRORS, 422))


@search_router.get(
    "/api/events/search",
    response_model=SearchResults,
    summary="Full-text search over the event messages of your tasks (admins: all)",
)
async def search_events(
    user: Reader,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            description="Words to find (every one must be in the message; punctuation is "
            "not query syntax)",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: OffsetQuery = 0,
) -> Any:
    hits, total = await get_engine().search_events(user, q, limit=limit, offset=offset)
    return {
        "query": q,
        "total": total,
        "limit": limit,
        "offset": offset,
        "results": [
            {
                "task_id": h.task_id,
                "seq": h.seq,
                "timestamp": iso(h.timestamp),
                "event_type": h.event_type,
                "message": h.message,
                "state_name": h.state_name,
                "task_type": h.task_name,
                "task_status": h.task_status.value,
                "task_url": f"/tasks/{h.task_id}#event-{h.seq}",
                "events_url": f"/api/tasks/{h.task_id}/events?after_seq={h.seq - 1}",
            }
            for h in hits
        ],
    }
