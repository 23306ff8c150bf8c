"""The REST tasks API (S000–S003), authenticated with `Authorization: Bearer <client_token>`.

A user sees only their own tasks (another user's task is a 404, exactly like an
unknown id); an admin's token sees all. Jobs are created by `task_type` (a job
name, optionally `state.job` or with `state_name`) and `input_params`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, model_validator

from spyglass.api.auth import CurrentUser
from spyglass.errors import DomainError
from spyglass.tasks.access import owned_row, owner_scope
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import event_view, rest_view
from spyglass.tasks.registry import JobInputError, JobSpec, UnknownJob, registry
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.store import TaskFilter
from spyglass.tools import flow
from spyglass.tools.catalogue import TOOLS


class CreateTask(BaseModel):
    """Either a data tool (`tool_id`, `agents`: the S000 file flow, answered CREATED) or a
    registered job (`task_type`, `input_params`: queued at once, answered PENDING)."""

    tool_id: str | None = Field(default=None, examples=["profile-my-data"])
    agents: list[str] | None = Field(
        default=None, description="Defaults to all of the tool's agents"
    )
    task_type: str | None = Field(
        default=None,
        description="The job: `task2_with_args`, or `example_task2.task2_with_args`",
        examples=["example_task2.task2_with_args"],
    )
    state_name: str | None = Field(default=None, description="The job's state, if ambiguous")
    input_params: dict[str, Any] | None = Field(
        default=None,
        description="Arguments validated against the job's input model",
        examples=[{"name": "Matt", "age": 25}],
    )

    @model_validator(mode="after")
    def one_kind(self) -> CreateTask:
        if (self.tool_id is None) == (self.task_type is None):
            raise ValueError("give either tool_id (file flow) or task_type (a registered job)")
        return self


class FileSpec(BaseModel):
    filename: str = Field(min_length=1, max_length=255, examples=["customers.csv"])
    content_type: str = Field(min_length=1, max_length=120, examples=["text/csv"])


class UploadUrlsRequest(BaseModel):
    files: dict[str, FileSpec] = Field(
        description="By file key: `primary` (required), `baseline` where the tool takes one",
        examples=[{"primary": {"filename": "customers.csv", "content_type": "text/csv"}}],
    )
    has_parameters: bool = Field(default=False, description="Also give a URL for parameters.json")


class Pagination(BaseModel):
    total: int
    limit: int
    offset: int
    has_more: bool


def parse_statuses(raw: str | None) -> list[str]:
    if not raw:
        return []
    statuses = []
    for part in raw.split(","):
        try:
            statuses.append(TaskStatus.parse(part).value)
        except ValueError as exc:
            raise DomainError("INVALID_STATUS", str(exc), 400) from None
    return statuses


def find_task_type(task_type: str, state_name: str | None) -> JobSpec:
    if state_name is None and "." in task_type:
        state_name, task_type = task_type.rsplit(".", 1)
    if state_name is not None:
        try:
            return registry.get(state_name, task_type)
        except UnknownJob:
            raise DomainError(
                "INVALID_TASK_TYPE", f"Unknown task_type '{task_type}'", 400
            ) from None
    matches = [s for s in registry.all() if s.task_name == task_type]
    if not matches:
        raise DomainError("INVALID_TASK_TYPE", f"Unknown task_type '{task_type}'", 400)
    if len(matches) > 1:
        states = ", ".join(s.aliases[0] if s.aliases else s.state_name for s in matches)
        raise DomainError(
            "AMBIGUOUS_TASK_TYPE",
            f"task_type '{task_type}' exists on several states ({states}); "
            "name one with state_name or `state.task_type`",
            400,
        )
    return matches[0]


router = APIRouter(prefix="/api/tasks", tags=["tasks"])


@router.post("", status_code=201, summary="Create a tool task (CREATED) or a job task (PENDING)")
async def create_task(body: CreateTask, user: CurrentUser) -> Any:
    if body.tool_id is not None:
        row = await flow.create_tool_task(body.tool_id, body.agents, user.id)
        return {**rest_view(row), "message": "Task created: ask for upload URLs next"}
    assert body.task_type is not None
    spec = find_task_type(body.task_type, body.state_name)
    if not spec.is_static:
        raise DomainError(
            "JOB_NEEDS_PAGE",
            f"Job '{spec.task_name}' runs in a browser's page state; start it there",
            409,
        )
    try:
        row = await get_engine().start_job(spec, body.input_params, origin="api", owner_id=user.id)
    except JobInputError as exc:
        errors = [{**e, "loc": ["body", "input_params", *e["loc"][1:]]} for e in exc.errors]
        raise_validation(errors)
    return rest_view(row)


@router.get("", summary="Your tasks, newest first (admins: everyone's)")
async def list_tasks(
    user: CurrentUser,
    status: Annotated[str | None, Query(description="Comma list, e.g. FAILED,CANCELLED")] = None,
    tool_id: str | None = None,
    task_type: str | None = None,
    state_name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    canonical = None
    if state_name is not None:
        canonical = registry.canonical_state(state_name) or state_name
    flt = TaskFilter(
        statuses=parse_statuses(status),
        state_name=canonical,
        task_name=task_type,
        tool_id=tool_id,
        owner_id=owner_scope(user),
    )
    tasks, total = await get_engine().store.list_tasks(flt, limit=limit, offset=offset)
    engine = get_engine()
    rows = [await engine.get_row(t.id) or t.model_dump() for t in tasks]
    return {
        "tasks": [rest_view(r) for r in rows],
        "pagination": Pagination(
            total=total, limit=limit, offset=offset, has_more=offset + len(tasks) < total
        ).model_dump(),
    }


@router.delete("", summary="Delete every task of yours with one of these statuses")
async def bulk_delete(
    user: CurrentUser,
    status: Annotated[str, Query(description="Comma list, e.g. COMPLETED,FAILED")],
) -> Any:
    statuses = parse_statuses(status)
    if not statuses:
        raise DomainError("INVALID_STATUS", "Name at least one status", 400)
    flt = TaskFilter(statuses=statuses, owner_id=owner_scope(user))
    deleted = await get_engine().delete_matching(flt)
    return {"deleted_count": deleted, "statuses": statuses}


@router.post("/{task_id}/upload-urls", summary="Presigned PUT URLs for the task's files")
async def upload_urls(
    task_id: str, body: UploadUrlsRequest, request: Request, user: CurrentUser
) -> Any:
    row = await owned_row(task_id, user)
    tickets = await flow.request_uploads(
        row,
        {k: flow.WantedFile(f.filename, f.content_type) for k, f in body.files.items()},
        base_url=str(request.base_url),
        has_parameters=body.has_parameters,
    )
    return {
        "task_id": task_id,
        "status": TaskStatus.UPLOADING.value,
        **tickets,
        "message": f"Upload {len(tickets['uploads'])} file(s) with PUT, then call /process",
    }


@router.post("/{task_id}/process", summary="Check files and credits, then start the tool")
async def process(task_id: str, user: CurrentUser) -> Any:
    started = await flow.start_processing(await owned_row(task_id, user))
    return {
        **rest_view(started),
        "status": TaskStatus.PROCESSING.value,
        "message": f"Processing started; {started['cost']} credits charged",
    }


@router.get("/{task_id}/downloads", summary="Download URLs (1 h) of a completed task's files")
async def downloads(task_id: str, request: Request, user: CurrentUser) -> Any:
    flow.require_completed(await owned_row(task_id, user))
    return {
        "task_id": task_id,
        "downloads": await flow.download_list(task_id, str(request.base_url)),
        "expires_in_seconds": flow.DOWNLOAD_EXPIRY,
    }


@router.get("/{task_id}/report", summary="The JSON report of a completed tool task")
async def report(task_id: str, request: Request, user: CurrentUser) -> Any:
    row = await owned_row(task_id, user)
    body = await flow.read_report(row)
    body["downloads"] = await flow.download_list(task_id, str(request.base_url))
    return {
        "analysis_id": task_id,
        "tool": row.get("tool_id"),
        "status": "success",
        "timestamp": rest_view(row)["completed_at"],
        "execution_time_ms": row.get("execution_time_ms"),
        "report": body,
    }


@router.get("/{task_id}", summary="One task")
async def get_task(task_id: str, user: CurrentUser) -> Any:
    return rest_view(await owned_row(task_id, user))


@router.get("/{task_id}/events", summary="The task's timeline (after_seq for increments)")
async def task_events(
    task_id: str,
    user: CurrentUser,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> Any:
    await owned_row(task_id, user)
    engine = get_engine()
    engine.store.flush_pending()  # coalesced lines are written before they are read
    events = await engine.store.get_events(task_id, after_seq=after_seq, limit=limit)
    last = events[-1].seq if events else after_seq
    return {"task_id": task_id, "events": [event_view(e) for e in events], "last_seq": last}


@router.post("/{task_id}/cancel", summary="Cancel a queued or running task")
async def cancel_task(task_id: str, user: CurrentUser) -> Any:
    row = await owned_row(task_id, user)
    engine = get_engine()
    if not await engine.cancel_and_wait(task_id):
        raise DomainError(
            "TASK_NOT_CANCELLABLE", f"Cannot cancel task with status: {row['status']}", 400
        )
    row = await owned_row(task_id, user)
    return {
        "task_id": task_id,
        "status": row["status"],
        "message": "Task cancelled",
        "cancelled_at": rest_view(row)["cancelled_at"],
    }


@router.post("/{task_id}/retry", status_code=201, summary="Retry a failed or cancelled task")
async def retry_task(task_id: str, user: CurrentUser) -> Any:
    await owned_row(task_id, user)
    return rest_view(await get_engine().retry(task_id))


@router.delete("/{task_id}", summary="Delete a task and its files (cancelled first)")
async def delete_task(task_id: str, user: CurrentUser) -> Any:
    await owned_row(task_id, user)
    files = await get_engine().delete(task_id)
    return {"task_id": task_id, "message": "Task deleted", "files_deleted": files}


tools_router = APIRouter(tags=["tools"])


@tools_router.get("/api/tools", summary="The data tools, their agents, parameters and costs")
async def list_tools() -> Any:
    return {"tools": [tool.describe() for tool in TOOLS.values()]}


def raise_validation(errors: list[dict[str, Any]]) -> None:
    from fastapi.exceptions import RequestValidationError

    raise RequestValidationError(errors)
