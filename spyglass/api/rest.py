"""The REST tasks API (S000–S003), authenticated with `Authorization: Bearer <client_token>`.

A user sees only their own tasks (another user's task is a 404, exactly like an
unknown id); an admin's, operator's or viewer's token sees all, and only admins and operators
act on others' tasks (`spyglass.tasks.access`). Each route needs its token scope: reading
`tasks:read`, creating and uploading `tasks:start`, cancel, retry and delete `tasks:manage`
(403 INSUFFICIENT_SCOPE otherwise). Jobs are created by `task_type` (a job name, optionally
`state.job` or with `state_name`) and `input_params`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, model_validator

from spyglass import audit, idempotency
from spyglass.api.auth import Manager, Reader, Starter
from spyglass.api.bounds import OffsetQuery, SeqQuery
from spyglass.api.direct import IdempotencyKey, args_required, args_schema, check_json_types
from spyglass.api.errors import TOKEN_ERRORS, error_answer, responses
from spyglass.api.scheduling import START_AT, StartSchedule, parse_start_at
from spyglass.errors import DomainError
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import event_view, iso, rest_view
from spyglass.tasks.registry import JobInputError, JobSpec, UnknownJob, registry
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.view import TaskQuery
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


class RestTask(BaseModel):
    """A task in the REST tasks API (S000 `TaskResponse` with the job's fields)."""

    task_id: str
    status: str
    tool_id: str | None
    agents: list[str]
    state_name: str
    task_type: str
    progress: float
    message: str | None
    input_params: dict[str, Any] | None
    result: Any
    error_code: str | None
    error_message: str | None
    retry_of: str | None
    attempt: int
    cost: int
    queue: str = "default"
    priority: int = 0
    #: When a run scheduled for later may start (`start_at` / `start_in`).
    scheduled_at: str | None = None
    created_at: str | None
    upload_started_at: str | None
    processing_started_at: str | None
    completed_at: str | None
    failed_at: str | None
    cancelled_at: str | None
    updated_at: str | None
    execution_time_ms: int | None
    downloads_available: bool


class TaskList(BaseModel):
    tasks: list[RestTask]
    pagination: Pagination


class BulkDeleted(BaseModel):
    deleted_count: int
    statuses: list[str]


class UploadTicket(BaseModel):
    url: str
    key: str
    method: str
    headers: dict[str, str]
    expires_at: str


class UploadTickets(BaseModel):
    task_id: str
    status: str
    uploads: dict[str, UploadTicket] = Field(description="By file key")
    expires_in_seconds: int
    message: str


class Download(BaseModel):
    download_id: str
    filename: str
    type: str
    mime_type: str | None
    size_bytes: int | None
    url: str
    expires_at: str


class Downloads(BaseModel):
    task_id: str
    downloads: list[Download]
    expires_in_seconds: int


class TaskReport(BaseModel):
    analysis_id: str
    tool: str | None
    status: str
    timestamp: str | None
    execution_time_ms: int | None
    report: dict[str, Any]


class TaskEvent(BaseModel):
    seq: int
    timestamp: str | None
    event_type: str
    message: str | None
    data: Any


class TaskEvents(BaseModel):
    task_id: str
    events: list[TaskEvent]
    last_seq: int


class Cancelled(BaseModel):
    task_id: str
    status: str
    message: str
    cancelled_at: str | None


class Deleted(BaseModel):
    task_id: str
    message: str
    files_deleted: int


class ToolList(BaseModel):
    tools: list[dict[str, Any]] = Field(
        description="Each tool: id, name, files, agents (cost, parameters), parameters schema"
    )


def _status_pattern(*, empty: bool) -> str:
    """A comma list of statuses, as `TaskStatus.parse` reads them (any case, `_` or space)."""

    def word(status: TaskStatus) -> str:
        return "".join("[_ ]" if c == "_" else f"[{c}{c.lower()}]" for c in status.value)

    one = rf"\s*(?:{'|'.join(word(s) for s in TaskStatus)})\s*"
    return rf"^(?:{'|' if empty else ''}{one}(?:,{one})*)$"


def _tool_body(tool_id: str, agents: list[str]) -> dict[str, Any]:
    return {
        "title": f"Tool {tool_id}",
        "properties": {
            "tool_id": {"const": tool_id},
            "agents": {
                "anyOf": [{"type": "array", "items": {"enum": agents}}, {"type": "null"}],
                "description": "Any of the tool's available agents; none: all of them",
            },
            "task_type": {"type": "null"},
        },
        "required": ["tool_id"],
    }


def _job_body(spec: JobSpec, task_type: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    args = args_schema(spec)
    required = ["task_type", *(["input_params"] if args_required(spec) else [])]
    if "state_name" in state.get("required", ()):
        required.append("state_name")
    return {
        "title": f"Job {spec.state_name}.{spec.task_name}",
        "properties": {
            "task_type": task_type,
            "state_name": state["schema"],
            "input_params": args if args_required(spec) else {"anyOf": [args, {"type": "null"}]},
            "tool_id": {"type": "null"},
        },
        "required": required,
    }


def add_create_task_schema(document: dict[str, Any]) -> None:
    """`CreateTask` in /openapi.json, exactly: one of the tools with its available agents, or
    one of the jobs started this way (static ones) named as `find_task_type` reads names."""
    variants = []
    for tool in TOOLS.values():
        agents = [a.id for a in tool.agents]
        if agents:
            variants.append(_tool_body(tool.id, agents))
    jobs = [spec for spec in registry.all() if spec.is_static]
    plain_names = [spec.task_name for spec in registry.all()]
    for spec in jobs:
        states = [spec.state_name, *spec.aliases]
        names = [f"{state}.{spec.task_name}" for state in states]
        if plain_names.count(spec.task_name) == 1:
            names.append(spec.task_name)
        no_state = {"schema": {"type": "null"}}
        variants.append(_job_body(spec, {"enum": names}, no_state))
        named = {"schema": {"enum": states}, "required": ["state_name"]}
        variants.append(_job_body(spec, {"const": spec.task_name}, named))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("CreateTask", {"type": "object"})["oneOf"] = variants


STATUS_LIST = _status_pattern(empty=True)
STATUS_LIST_REQUIRED = _status_pattern(empty=False)


def _time(raw: str | None, name: str) -> datetime | None:
    return parse_start_at(raw, name) if raw is not None else None


def parse_statuses(raw: str | None) -> list[TaskStatus]:
    if not raw:
        return []
    statuses = []
    for part in raw.split(","):
        try:
            statuses.append(TaskStatus.parse(part))
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


def _links(*operations: tuple[str, str]) -> dict[str, Any]:
    """OpenAPI links from an answer's `task_id` to what can be done with that task next."""
    links = {}
    for method, path in operations:
        pointer = ("/api/tasks" + path).replace("~", "~0").replace("/", "~1")
        words = path.replace("{task_id}", "task").replace("/", " ").replace("-", " ")
        name = method.capitalize() + words.title().replace(" ", "")
        links[name] = {
            "operationRef": f"#/paths/{pointer}/{method}",
            "parameters": {"task_id": "$response.body#/task_id"},
        }
    return links


#: Where a new task's id leads (for readers of /docs and for tools that follow links).
NEW_TASK: dict[int | str, dict[str, Any]] = {
    201: {
        "links": _links(
            ("get", "/{task_id}"),
            ("get", "/{task_id}/events"),
            ("post", "/{task_id}/upload-urls"),
            ("post", "/{task_id}/process"),
            ("get", "/{task_id}/downloads"),
            ("get", "/{task_id}/report"),
            ("post", "/{task_id}/cancel"),
            ("post", "/{task_id}/retry"),
            ("delete", "/{task_id}"),
        )
    }
}

#: Answers of every route here: no valid token, too many requests, a bad parameter.
router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=responses(*TOKEN_ERRORS, 422))
#: And of the routes about one task: another user's task is "not found" like an unknown id.
ONE_TASK = responses(404)


@router.post(
    "",
    status_code=201,
    response_model=RestTask,
    summary="Create a tool task (CREATED) or a job task (PENDING)",
    responses={
        **NEW_TASK,
        **responses(400, 402),
        409: error_answer(409, "JOB_NEEDS_PAGE: an instance job; or " + idempotency.CONFLICT_DOC),
    },
)
async def create_task(
    body: CreateTask,
    request: Request,
    user: Starter,
    schedule: StartSchedule,
    key: IdempotencyKey = None,
) -> Any:
    if key is None:
        return await _create_task(body, user, schedule)

    async def start() -> Response:
        created = RestTask.model_validate(await _create_task(body, user, schedule))
        return JSONResponse(created.model_dump(mode="json"), status_code=201)

    return await idempotency.once(request, f"user:{user.id}", key, start)


async def _create_task(body: CreateTask, user: Any, schedule: Any) -> dict[str, Any]:
    if body.tool_id is not None:
        task = await flow.create_tool_task(body.tool_id, body.agents, user.id)
        return {**rest_view(task), "message": "Task created: ask for upload URLs next"}
    assert body.task_type is not None
    spec = find_task_type(body.task_type, body.state_name)
    if not spec.is_static:
        raise DomainError(
            "JOB_NEEDS_PAGE",
            f"Job '{spec.task_name}' runs in a browser's page state; start it there",
            409,
        )
    try:
        check_json_types(spec, body.input_params)
        task = await get_engine().start_job(
            spec, body.input_params, origin="api", owner_id=user.id, schedule=schedule
        )
    except JobInputError as exc:
        errors = [{**e, "loc": ["body", "input_params", *e["loc"][1:]]} for e in exc.errors]
        raise_validation(errors)
    return rest_view(task)


@router.get(
    "",
    response_model=TaskList,
    summary="Your tasks, newest first (admins, operators and viewers: everyone's)",
    responses=responses(400),
)
async def list_tasks(
    user: Reader,
    status: Annotated[
        str | None,
        Query(
            description="Comma list, e.g. FAILED,CANCELLED",
            json_schema_extra={"pattern": STATUS_LIST},
        ),
    ] = None,
    tool_id: str | None = None,
    task_type: str | None = None,
    state_name: str | None = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="The start of a task id, or part of an input file's name (any case)",
        ),
    ] = None,
    created_after: Annotated[
        str | None,
        Query(
            description="Created at or after this time (RFC 3339, with its time zone)",
            pattern=START_AT,
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    created_before: Annotated[
        str | None,
        Query(
            description="Created before this time (RFC 3339, with its time zone)",
            pattern=START_AT,
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: OffsetQuery = 0,
) -> Any:
    canonical = None
    if state_name is not None:
        canonical = registry.canonical_state(state_name) or state_name
    query = TaskQuery(
        statuses=parse_statuses(status),
        state_name=canonical,
        task_name=task_type,
        tool_id=tool_id,
        search=q,
        created_after=_time(created_after, "created_after"),
        created_before=_time(created_before, "created_before"),
    )
    page = await get_engine().list_tasks(user, query, limit=limit, offset=offset)
    return {
        "tasks": [rest_view(t) for t in page.tasks],
        "pagination": {
            "total": page.total,
            "limit": limit,
            "offset": offset,
            "has_more": page.has_more,
        },
    }


@router.delete(
    "",
    response_model=BulkDeleted,
    summary="Delete every task of yours (admins, operators: anyone's) with one of these statuses",
    responses=responses(400),
)
async def bulk_delete(
    request: Request,
    user: Manager,
    status: Annotated[
        str,
        Query(
            description="Comma list, e.g. COMPLETED,FAILED",
            json_schema_extra={"pattern": STATUS_LIST_REQUIRED},
        ),
    ],
) -> Any:
    statuses = parse_statuses(status)
    if not statuses:
        raise DomainError("INVALID_STATUS", "Name at least one status", 400)
    detail: dict[str, Any] = {"statuses": [s.value for s in statuses]}
    async with audit.recording(request, user, "tasks.bulk_delete", "tasks", detail):
        deleted = await get_engine().delete_matching(user, TaskQuery(statuses=statuses))
        detail["count"] = deleted
    return {"deleted_count": deleted, "statuses": [s.value for s in statuses]}


@router.post(
    "/{task_id}/upload-urls",
    response_model=UploadTickets,
    summary="Presigned PUT URLs for the task's files",
    responses={**ONE_TASK, **responses(400)},
)
async def upload_urls(
    task_id: str, body: UploadUrlsRequest, request: Request, user: Starter
) -> Any:
    task = await get_engine().get_actionable(task_id, user)
    tickets = await flow.request_uploads(
        task,
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


@router.post(
    "/{task_id}/process",
    response_model=RestTask,
    summary="Check files and credits, then start the tool",
    responses={**ONE_TASK, **responses(400, 402, 409)},
)
async def process(task_id: str, user: Starter) -> Any:
    started = await flow.start_processing(await get_engine().get_actionable(task_id, user))
    return {
        **rest_view(started),
        "status": TaskStatus.PROCESSING.value,
        "message": f"Processing started; {started.cost} credits charged",
    }


@router.get(
    "/{task_id}/downloads",
    response_model=Downloads,
    summary="Download URLs (1 h) of a completed task's files",
    responses={**ONE_TASK, **responses(400)},
)
async def downloads(task_id: str, request: Request, user: Reader) -> Any:
    flow.require_completed(await get_engine().get_visible(task_id, user))
    return {
        "task_id": task_id,
        "downloads": await flow.download_list(task_id, str(request.base_url)),
        "expires_in_seconds": flow.DOWNLOAD_EXPIRY,
    }


@router.get(
    "/{task_id}/report",
    response_model=TaskReport,
    summary="The JSON report of a completed tool task",
    responses={**ONE_TASK, **responses(400)},
)
async def report(task_id: str, request: Request, user: Reader) -> Any:
    task = await get_engine().get_visible(task_id, user)
    body = await flow.read_report(task)
    body["downloads"] = await flow.download_list(task_id, str(request.base_url))
    return {
        "analysis_id": task_id,
        "tool": task.tool_id,
        "status": "success",
        "timestamp": iso(task.completed_at),
        "execution_time_ms": task.execution_time_ms,
        "report": body,
    }


@router.get("/{task_id}", response_model=RestTask, summary="One task", responses=ONE_TASK)
async def get_task(task_id: str, user: Reader) -> Any:
    return rest_view(await get_engine().get_visible(task_id, user))


@router.get(
    "/{task_id}/events",
    response_model=TaskEvents,
    summary="The task's timeline (after_seq for increments)",
    responses=ONE_TASK,
)
async def task_events(
    task_id: str,
    user: Reader,
    after_seq: SeqQuery = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> Any:
    engine = get_engine()
    await engine.get_visible(task_id, user)
    events = await engine.events(task_id, after_seq=after_seq, limit=limit)
    last = events[-1].seq if events else after_seq
    return {"task_id": task_id, "events": [event_view(e) for e in events], "last_seq": last}


@router.post(
    "/{task_id}/cancel",
    response_model=Cancelled,
    summary="Cancel a queued or running task",
    responses={**ONE_TASK, **responses(400)},
)
async def cancel_task(task_id: str, request: Request, user: Manager) -> Any:
    engine = get_engine()
    task = await engine.get_actionable(task_id, user)
    if not await engine.cancel_and_wait(task_id):
        raise DomainError(
            "TASK_NOT_CANCELLABLE", f"Cannot cancel task with status: {task.status}", 400
        )
    await audit.record(request, user, "task.cancel", "task", task_id)
    task = await engine.get_visible(task_id, user)
    return {
        "task_id": task_id,
        "status": task.status.value,
        "message": "Task cancelled",
        "cancelled_at": iso(task.cancelled_at),
    }


@router.post(
    "/{task_id}/retry",
    status_code=201,
    response_model=RestTask,
    summary="Retry a failed or cancelled task",
    responses={**NEW_TASK, **ONE_TASK, **responses(400, 402)},
)
async def retry_task(task_id: str, request: Request, user: Manager) -> Any:
    engine = get_engine()
    await engine.get_actionable(task_id, user)
    retried = await engine.retry(task_id)
    await audit.record(request, user, "task.retry", "task", task_id, {"new_task_id": retried.id})
    return rest_view(retried)


@router.delete(
    "/{task_id}",
    response_model=Deleted,
    summary="Delete a task and its files (cancelled first)",
    responses=ONE_TASK,
)
async def delete_task(task_id: str, request: Request, user: Manager) -> Any:
    engine = get_engine()
    await engine.get_actionable(task_id, user)
    files = await engine.delete(task_id)
    await audit.record(request, user, "task.delete", "task", task_id, {"files_deleted": files})
    return {"task_id": task_id, "message": "Task deleted", "files_deleted": files}


tools_router = APIRouter(tags=["tools"])


@tools_router.get(
    "/api/tools",
    response_model=ToolList,
    summary="The data tools, their agents, parameters and costs",
)
async def list_tools() -> Any:
    return {"tools": [tool.describe() for tool in TOOLS.values()]}


def raise_validation(errors: list[dict[str, Any]]) -> None:
    from fastapi.exceptions import RequestValidationError

    raise RequestValidationError(errors)
