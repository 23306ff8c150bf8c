"""The REST tasks API (S000–S003), authenticated with `Authorization: Bearer <client_token>`.

A user sees only their own tasks (another user's task is a 404, exactly like an
unknown id); an admin's token sees all. Jobs are created by `task_type` (a job
name, optionally `state.job` or with `state_name`) and `input_params`.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field, ValidationError, model_validator

from spyglass.api.auth import bearer, bearer_user
from spyglass.api.errors import ApiError
from spyglass.auth.service import UserInfo, get_auth
from spyglass.config import get_settings
from spyglass.storage import StorageError, get_storage, input_key, sanitise_filename
from spyglass.storage.base import check_content_type, task_prefix
from spyglass.tasks.engine import TaskNotFound, TaskStateError, get_engine
from spyglass.tasks.messages import event_view, rest_view
from spyglass.tasks.models import utcnow
from spyglass.tasks.registry import JobInputError, JobSpec, UnknownJob, registry
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.store import TaskFilter
from spyglass.tools.catalogue import TOOLS, TOOLS_STATE
from spyglass.tools.run import ToolInput, ToolRun, agent_available, tool_spec

Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def caller(credentials: Bearer) -> UserInfo:
    return (await bearer_user(credentials))[1]


Caller = Annotated[UserInfo, Depends(caller)]


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
            raise ApiError(400, str(exc), "INVALID_STATUS") from None
    return statuses


def find_task_type(task_type: str, state_name: str | None) -> JobSpec:
    if state_name is None and "." in task_type:
        state_name, task_type = task_type.rsplit(".", 1)
    if state_name is not None:
        try:
            return registry.get(state_name, task_type)
        except UnknownJob:
            raise ApiError(400, f"Unknown task_type '{task_type}'", "INVALID_TASK_TYPE") from None
    matches = [s for s in registry.all() if s.task_name == task_type]
    if not matches:
        raise ApiError(400, f"Unknown task_type '{task_type}'", "INVALID_TASK_TYPE")
    if len(matches) > 1:
        states = ", ".join(s.aliases[0] if s.aliases else s.state_name for s in matches)
        raise ApiError(
            400,
            f"task_type '{task_type}' exists on several states ({states}); "
            "name one with state_name or `state.task_type`",
            "AMBIGUOUS_TASK_TYPE",
        )
    return matches[0]


async def owned_row(task_id: str, user: UserInfo) -> dict[str, Any]:
    row = await get_engine().get_row(task_id)
    if row is None or not (user.is_admin or row["owner_id"] == user.id):
        raise ApiError(404, f"Task '{task_id}' not found", "TASK_NOT_FOUND")
    return row


async def create_tool_task(tool_id: str, agents: list[str] | None, user: UserInfo) -> Any:
    tool = TOOLS.get(tool_id)
    if tool is None:
        known = ", ".join(TOOLS)
        raise ApiError(400, f"Invalid tool_id '{tool_id}'; tools are {known}", "INVALID_TOOL")
    chosen = (
        list(dict.fromkeys(agents))
        if agents
        else [a.id for a in tool.agents if agent_available(a.id)]
    )
    bad = [a for a in chosen if tool.agent(a) is None]
    if bad:
        raise ApiError(400, f"Invalid agents for {tool_id}: {', '.join(bad)}", "INVALID_AGENTS")
    missing = [a for a in chosen if not agent_available(a)]
    if missing or not chosen:
        raise ApiError(
            400,
            f"Not available yet in this version: {', '.join(missing) or tool_id}",
            "AGENT_NOT_AVAILABLE",
        )
    order = [a.id for a in tool.agents]
    chosen.sort(key=order.index)  # agents run in the tool's order (cleaning is a pipeline)
    cost = sum(tool.agent(a).cost for a in chosen)  # type: ignore[union-attr]
    row = await get_engine().create_waiting(
        state_name=TOOLS_STATE,
        task_name=tool_id,
        tool_id=tool_id,
        agents=chosen,
        cost=cost,
        owner_id=user.id,
    )
    return {
        **rest_view(row),
        "message": "Task created: ask for upload URLs next",
    }


DOWNLOAD_EXPIRY = 3600


def require_completed(row: dict[str, Any]) -> None:
    if row["status"] != TaskStatus.COMPLETED.value:
        raise ApiError(400, f"Task not completed (it is {row['status']})", "TASK_NOT_COMPLETED")


async def download_list(task_id: str, base_url: str) -> list[dict[str, Any]]:
    storage = get_storage()
    out = []
    for art in await get_engine().store.get_artifacts(task_id, "output"):
        url = await asyncio.to_thread(
            storage.download_url, art.storage_key, art.filename, DOWNLOAD_EXPIRY, base_url
        )
        out.append(
            {
                "download_id": f"{task_id}:{art.key}",
                "filename": art.filename,
                "type": art.type,
                "mime_type": art.content_type,
                "size_bytes": art.size_bytes,
                "url": url,
                "expires_at": (utcnow() + timedelta(seconds=DOWNLOAD_EXPIRY)).isoformat(),
            }
        )
    return out


async def delete_with_files(row: dict[str, Any]) -> int:
    """Delete the task (cancelling it first), then every file it has in storage."""
    await get_engine().delete(row["id"])
    prefix = task_prefix(row["owner_id"], row["id"])
    return await asyncio.to_thread(get_storage().delete_prefix, prefix)


async def start_processing(row: dict[str, Any]) -> Any:
    """Check files, parameters and credits of an UPLOADING tool task, then start its tool."""
    task_id = row["id"]
    tool = TOOLS[row["tool_id"]]
    engine = get_engine()
    if task_id in await engine.expire_uploads(get_settings().upload_expiry):
        raise ApiError(400, "The upload URLs expired before processing started", "UPLOAD_EXPIRED")
    storage = get_storage()
    inputs = {a.key: a for a in await engine.store.get_artifacts(task_id, "input")}
    agents: list[str] = row["agents"] or []
    # Every announced file must have arrived; an agent's missing extra file (a baseline never
    # announced) fails the run itself, before any agent, with the credits refunded.
    needed = ["primary", *(k for k in inputs if k != "primary")]
    missing = []
    for key in needed:
        art = inputs.get(key)
        size = await asyncio.to_thread(storage.size, art.storage_key) if art else None
        if size is None or size > storage.max_upload_bytes:
            missing.append(key)
    if missing:
        message = f"Files not found: {', '.join(missing)}"
        await engine.set_waiting_status(
            task_id,
            TaskStatus.UPLOAD_FAILED,
            message,
            {"error_code": "FILES_NOT_FOUND", "error_message": message},
        )
        raise ApiError(400, message, "FILES_NOT_FOUND")
    parameters: dict[str, Any] = {}
    if "parameters" in inputs:
        raw = await asyncio.to_thread(storage.read, inputs["parameters"].storage_key)
        try:
            parameters = json.loads(raw)
            tool.parameters.model_validate(parameters)
        except (ValueError, ValidationError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else "invalid JSON"
            raise ApiError(
                422, f"parameters.json does not fit {tool.id}: {detail}", "INVALID_PARAMETERS"
            ) from None
    breakdown = {a: tool.agent(a).cost for a in agents}  # type: ignore[union-attr]
    required = sum(breakdown.values())
    charged, balance = await get_auth().charge(row["owner_id"], required)
    if not charged:
        message = (
            f"Insufficient credits for agent execution. Required: {required}, Available: {balance}"
        )
        await engine.set_waiting_status(
            task_id,
            TaskStatus.FAILED,
            message,
            {
                "error_code": "BILLING_INSUFFICIENT_CREDITS",
                "error_message": message,
                "failed_at": utcnow(),
            },
        )
        return JSONResponse(
            {
                "detail": message,
                "error_code": "BILLING_INSUFFICIENT_CREDITS",
                "context": {
                    "available": balance,
                    "required": required,
                    "shortfall": required - balance,
                    "breakdown": breakdown,
                },
            },
            status_code=402,
        )
    run = ToolRun(
        tool_id=tool.id,
        agents=agents,
        owner_id=row["owner_id"],
        cost=required,
        inputs={
            k: ToolInput(storage_key=a.storage_key, filename=a.filename) for k, a in inputs.items()
        },
        parameters=parameters,
    )
    seq = await engine.store.next_seq(task_id) - 1
    started = await engine.runner.adopt(tool_spec(tool.id), run, row, seq)
    return {
        **rest_view(started),
        "status": TaskStatus.PROCESSING.value,
        "message": f"Processing started; {required} credits charged",
    }


async def retry_tool_task(row: dict[str, Any]) -> Any:
    """A new task with the same tool, agents and a copy of the same input files, processed now."""
    engine = get_engine()
    storage = get_storage()
    inputs = await engine.store.get_artifacts(row["id"], "input")
    if not inputs:
        raise ApiError(400, "This task has no files to run again", "TASK_NOT_RETRYABLE")
    new = await engine.create_waiting(
        state_name=TOOLS_STATE,
        task_name=row["tool_id"],
        tool_id=row["tool_id"],
        agents=row["agents"] or [],
        cost=row["cost"],
        owner_id=row["owner_id"],
        retry_of=row["id"],
    )
    copies = []
    for art in inputs:
        key = input_key(row["owner_id"], new["id"], art.storage_key.rsplit("/", 1)[-1])
        try:
            data = await asyncio.to_thread(storage.read, art.storage_key)
        except Exception:
            continue  # a file that never arrived: processing reports it as missing
        await asyncio.to_thread(storage.write, key, data, art.content_type)
        copies.append(
            {
                "task_id": new["id"],
                "role": "input",
                "key": art.key,
                "filename": art.filename,
                "content_type": art.content_type,
                "size_bytes": len(data),
                "storage_key": key,
                "type": art.type,
                "created_at": utcnow(),
            }
        )
    await engine.store.replace_inputs(new["id"], copies)
    row = await engine.set_waiting_status(
        new["id"],
        TaskStatus.UPLOADING,
        "Files copied from the original task",
        {"upload_started_at": utcnow()},
    )
    response = await start_processing(row)
    if isinstance(response, JSONResponse):
        return response
    return JSONResponse(response, status_code=201)


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/tasks", tags=["tasks"])

    @router.post(
        "", status_code=201, summary="Create a tool task (CREATED) or a job task (PENDING)"
    )
    async def create_task(body: CreateTask, user: Caller) -> Any:
        if body.tool_id is not None:
            return await create_tool_task(body.tool_id, body.agents, user)
        assert body.task_type is not None
        spec = find_task_type(body.task_type, body.state_name)
        if not spec.is_static:
            raise ApiError(
                409,
                f"Job '{spec.task_name}' runs in a browser's page state; start it there",
                "JOB_NEEDS_PAGE",
            )
        try:
            row = await get_engine().start_job(
                spec, body.input_params, origin="api", owner_id=user.id
            )
        except JobInputError as exc:
            errors = [{**e, "loc": ["body", "input_params", *e["loc"][1:]]} for e in exc.errors]
            raise_validation(errors)
        return rest_view(row)

    @router.get("", summary="Your tasks, newest first (admins: everyone's)")
    async def list_tasks(
        user: Caller,
        status: Annotated[
            str | None, Query(description="Comma list, e.g. FAILED,CANCELLED")
        ] = None,
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
            owner_id=None if user.is_admin else user.id,
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
        user: Caller,
        status: Annotated[str, Query(description="Comma list, e.g. COMPLETED,FAILED")],
    ) -> Any:
        statuses = parse_statuses(status)
        if not statuses:
            raise ApiError(400, "Name at least one status", "INVALID_STATUS")
        engine = get_engine()
        flt = TaskFilter(statuses=statuses, owner_id=None if user.is_admin else user.id)
        deleted = 0
        while True:
            tasks, _ = await engine.store.list_tasks(flt, limit=100)
            if not tasks:
                break
            for task in tasks:
                try:
                    await delete_with_files(task.model_dump())
                    deleted += 1
                except TaskNotFound:
                    pass
        return {"deleted_count": deleted, "statuses": statuses}

    @router.post("/{task_id}/upload-urls", summary="Presigned PUT URLs for the task's files")
    async def upload_urls(
        task_id: str, body: UploadUrlsRequest, request: Request, user: Caller
    ) -> Any:
        row = await owned_row(task_id, user)
        if row["status"] not in (TaskStatus.CREATED.value, TaskStatus.UPLOAD_FAILED.value):
            raise ApiError(
                400,
                f"Task not in CREATED or UPLOAD_FAILED status (it is {row['status']})",
                "INVALID_STATUS",
            )
        tool = TOOLS.get(row.get("tool_id") or "")
        if tool is None:
            raise ApiError(400, "Only tool tasks take files", "INVALID_STATUS")
        files = dict(body.files)
        unknown = sorted(set(files) - set(tool.files))
        if unknown:
            raise ApiError(
                400,
                f"Unknown file key(s) {', '.join(unknown)}; "
                f"{tool.id} takes {', '.join(tool.files)}",
                "INVALID_FILE_KEY",
            )
        if "primary" not in files:
            raise ApiError(400, "The primary file is required", "MISSING_PRIMARY_FILE")
        wanted: list[tuple[str, str, str]] = []
        for file_key, spec in files.items():
            name = sanitise_filename(spec.filename)
            if name.lower().endswith(".json"):
                raise StorageError(
                    "UNSUPPORTED_FILE_TYPE", f"'{name}': data files are csv, xlsx or xls"
                )
            wanted.append((file_key, name, check_content_type(name, spec.content_type)))
        if body.has_parameters:
            wanted.append(("parameters", "parameters.json", "application/json"))
        storage = get_storage()
        base = str(request.base_url)
        expiry = get_settings().upload_expiry
        uploads: dict[str, Any] = {}
        artifacts: list[dict[str, Any]] = []
        now = utcnow()
        for file_key, name, ctype in wanted:
            key = input_key(row["owner_id"], task_id, f"{file_key}-{name}")
            ticket = await asyncio.to_thread(storage.upload_ticket, key, ctype, expiry, base)
            uploads[file_key] = {
                "url": ticket.url,
                "key": ticket.key,
                "method": ticket.method,
                "headers": ticket.headers,
                "expires_at": ticket.expires_at.isoformat(),
            }
            artifacts.append(
                {
                    "task_id": task_id,
                    "role": "input",
                    "key": file_key,
                    "filename": name,
                    "content_type": ctype,
                    "storage_key": key,
                    "type": "other" if file_key == "parameters" else "data",
                    "created_at": now,
                }
            )
        engine = get_engine()
        await engine.store.replace_inputs(task_id, artifacts)
        await engine.set_waiting_status(
            task_id, TaskStatus.UPLOADING, "Waiting for the uploads", {"upload_started_at": now}
        )
        return {
            "task_id": task_id,
            "status": TaskStatus.UPLOADING.value,
            "uploads": uploads,
            "expires_in_seconds": expiry,
            "message": f"Upload {len(uploads)} file(s) with PUT, then call /process",
        }

    @router.post("/{task_id}/process", summary="Check files and credits, then start the tool")
    async def process(task_id: str, user: Caller) -> Any:
        row = await owned_row(task_id, user)
        if row["status"] != TaskStatus.UPLOADING.value:
            raise ApiError(
                400, f"Task not in UPLOADING status (it is {row['status']})", "INVALID_STATUS"
            )
        return await start_processing(row)

    @router.get("/{task_id}/downloads", summary="Download URLs (1 h) of a completed task's files")
    async def downloads(task_id: str, request: Request, user: Caller) -> Any:
        row = await owned_row(task_id, user)
        require_completed(row)
        return {
            "task_id": task_id,
            "downloads": await download_list(task_id, str(request.base_url)),
            "expires_in_seconds": DOWNLOAD_EXPIRY,
        }

    @router.get("/{task_id}/report", summary="The JSON report of a completed tool task")
    async def report(task_id: str, request: Request, user: Caller) -> Any:
        row = await owned_row(task_id, user)
        require_completed(row)
        outputs = {a.key: a for a in await get_engine().store.get_artifacts(task_id, "output")}
        art = outputs.get("report")
        if art is None:
            raise ApiError(404, "Report not found", "REPORT_NOT_FOUND")
        try:
            raw = await asyncio.to_thread(get_storage().read, art.storage_key)
        except Exception:
            raise ApiError(404, "Report not found", "REPORT_NOT_FOUND") from None
        body = json.loads(raw)
        body["downloads"] = await download_list(task_id, str(request.base_url))
        return {
            "analysis_id": task_id,
            "tool": row.get("tool_id"),
            "status": "success",
            "timestamp": rest_view(row)["completed_at"],
            "execution_time_ms": row.get("execution_time_ms"),
            "report": body,
        }

    @router.get("/{task_id}", summary="One task")
    async def get_task(task_id: str, user: Caller) -> Any:
        return rest_view(await owned_row(task_id, user))

    @router.get("/{task_id}/events", summary="The task's timeline (after_seq for increments)")
    async def task_events(
        task_id: str,
        user: Caller,
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
    async def cancel_task(task_id: str, user: Caller) -> Any:
        row = await owned_row(task_id, user)
        engine = get_engine()
        if not await engine.cancel_and_wait(task_id):
            raise ApiError(
                400, f"Cannot cancel task with status: {row['status']}", "TASK_NOT_CANCELLABLE"
            )
        row = await owned_row(task_id, user)
        return {
            "task_id": task_id,
            "status": row["status"],
            "message": "Task cancelled",
            "cancelled_at": rest_view(row)["cancelled_at"],
        }

    @router.post("/{task_id}/retry", status_code=201, summary="Retry a failed or cancelled task")
    async def retry_task(task_id: str, user: Caller) -> Any:
        row = await owned_row(task_id, user)
        if row.get("tool_id"):
            if row["status"] not in (TaskStatus.FAILED.value, TaskStatus.CANCELLED.value):
                raise ApiError(
                    400, f"Cannot retry task with status: {row['status']}", "TASK_NOT_RETRYABLE"
                )
            return await retry_tool_task(row)
        try:
            row = await get_engine().retry(task_id)
        except TaskStateError as exc:
            raise ApiError(400, str(exc), "TASK_NOT_RETRYABLE") from None
        return rest_view(row)

    @router.delete("/{task_id}", summary="Delete a task and its files (cancelled first)")
    async def delete_task(task_id: str, user: Caller) -> Any:
        row = await owned_row(task_id, user)
        files = await delete_with_files(row)
        return {"task_id": task_id, "message": "Task deleted", "files_deleted": files}

    return router


def build_tools_router() -> APIRouter:
    router = APIRouter(tags=["tools"])

    @router.get("/api/tools", summary="The data tools, their agents, parameters and costs")
    async def list_tools() -> Any:
        return {"tools": [tool.describe() for tool in TOOLS.values()]}

    return router


def raise_validation(errors: list[dict[str, Any]]) -> None:
    from fastapi.exceptions import RequestValidationError

    raise RequestValidationError(errors)
