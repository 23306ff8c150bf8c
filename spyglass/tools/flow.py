"""The S000 file flow of a tool task, shared by the REST API and the pages.

create (CREATED) → upload tickets (UPLOADING) → the files are PUT straight to
storage → process: files checked (else UPLOAD_FAILED), parameters validated,
credits charged for every agent up front → the tool runs (PROCESSING). Retry
copies the files into a new task and processes it at once. Every refusal is a
`DomainError` whose message is meant for the person who caused it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from spyglass.config import get_settings
from spyglass.errors import DomainError
from spyglass.filetypes import ALLOWED_TYPES, DATA_TYPES, DATA_WORDS, extension
from spyglass.storage import StorageError, get_storage, input_key, sanitise_filename
from spyglass.storage.base import check_content_type
from spyglass.tasks.child import ResourceLimitError, run_in_child
from spyglass.tasks.engine import get_engine, not_waiting
from spyglass.tasks.models import utcnow
from spyglass.tasks.registry import JobSpec, registry
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.view import FileView, TaskView
from spyglass.tools.catalogue import TOOLS, TOOLS_STATE, Tool
from spyglass.tools.common.sniff import HEAD_BYTES, DataFileError, check_file
from spyglass.tools.run import ToolInput, ToolRun, tool_spec

log = logging.getLogger(__name__)

#: Download URLs live an hour (S000).
DOWNLOAD_EXPIRY = 3600
#: A tool task in these statuses was already processed (or is being): /process is a 409.
STARTED = frozenset(
    (
        TaskStatus.PENDING,
        TaskStatus.PROCESSING,
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
    )
)


@dataclass(frozen=True)
class WantedFile:
    """A file the client is about to upload, as it announced it."""

    filename: str
    content_type: str


def get_tool(tool_id: str) -> Tool:
    tool = TOOLS.get(tool_id)
    if tool is None:
        known = ", ".join(TOOLS)
        raise DomainError("INVALID_TOOL", f"Invalid tool_id '{tool_id}'; tools are {known}")
    return tool


def choose_agents(tool: Tool, agents: list[str] | None) -> tuple[list[str], int]:
    """The agents to run, in the tool's order (cleaning is a pipeline), and their total cost."""
    chosen = list(dict.fromkeys(agents)) if agents else [a.id for a in tool.agents]
    bad = [a for a in chosen if tool.agent(a) is None]
    if bad:
        raise DomainError("INVALID_AGENTS", f"Invalid agents for {tool.id}: {', '.join(bad)}")
    order = [a.id for a in tool.agents]
    chosen.sort(key=order.index)
    return chosen, sum(tool.breakdown(chosen).values())


async def create_tool_task(tool_id: str, agents: list[str] | None, owner_id: int) -> TaskView:
    """A CREATED task of `tool_id` waiting for its files."""
    tool = get_tool(tool_id)
    chosen, cost = choose_agents(tool, agents)
    return await get_engine().create_waiting(
        state_name=TOOLS_STATE,
        task_name=tool.id,
        tool_id=tool.id,
        agents=chosen,
        cost=cost,
        owner_id=owner_id,
    )


def check_parameters(tool: Tool, parameters: Any) -> dict[str, Any]:
    """`parameters` validated against the tool's model (422 INVALID_PARAMETERS otherwise)."""
    if not isinstance(parameters, dict):
        raise DomainError(
            "INVALID_PARAMETERS", f"parameters.json for {tool.id} must be a JSON object", 422
        )
    try:
        tool.parameters.model_validate(parameters)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise DomainError(
            "INVALID_PARAMETERS", f"parameters.json does not fit {tool.id}: {problems}", 422
        ) from None
    return parameters


async def request_uploads(
    task: TaskView,
    files: dict[str, WantedFile],
    *,
    base_url: str,
    has_parameters: bool = False,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Upload tickets (presigned PUTs) for each announced file; the task becomes UPLOADING.

    `has_parameters` adds a ticket for `parameters.json`; a caller that already holds
    the parameters (a page's form) passes `parameters` and they are stored at once.
    """
    task_id = task.id
    if task.status not in (TaskStatus.CREATED, TaskStatus.UPLOAD_FAILED):
        raise DomainError(
            "INVALID_STATUS",
            f"Task not in CREATED or UPLOAD_FAILED status (it is {task.status})",
        )
    tool = TOOLS.get(task.tool_id or "")
    if tool is None:
        raise DomainError("INVALID_STATUS", "Only tool tasks take files")
    unknown = sorted(set(files) - set(tool.files))
    if unknown:
        raise DomainError(
            "INVALID_FILE_KEY",
            f"Unknown file key(s) {', '.join(unknown)}; {tool.id} takes {', '.join(tool.files)}",
        )
    if "primary" not in files:
        raise DomainError("MISSING_PRIMARY_FILE", "The primary file is required")
    if parameters is not None:
        check_parameters(tool, parameters)
    wanted: list[tuple[str, str, str]] = []
    for file_key, spec in files.items():
        name = sanitise_filename(spec.filename)
        if extension(name) not in DATA_TYPES and extension(name) in ALLOWED_TYPES:
            raise StorageError("UNSUPPORTED_FILE_TYPE", f"'{name}': data files are {DATA_WORDS}")
        wanted.append((file_key, name, check_content_type(name, spec.content_type)))
    if has_parameters and parameters is None:
        wanted.append(("parameters", "parameters.json", "application/json"))
    storage = get_storage()
    expiry = get_settings().upload_expiry
    uploads: dict[str, Any] = {}
    announced_files: list[FileView] = []
    now = utcnow()

    def announced(file_key: str, name: str, ctype: str, key: str, size: int | None) -> FileView:
        kind = "other" if file_key == "parameters" else "data"
        return FileView(file_key, name, ctype, size, key, kind, now)

    for file_key, name, ctype in wanted:
        key = input_key(task.owner_id, task_id, f"{file_key}-{name}")
        ticket = await asyncio.to_thread(storage.upload_ticket, key, ctype, expiry, base_url)
        uploads[file_key] = {
            "url": ticket.url,
            "key": ticket.key,
            "method": ticket.method,
            "headers": ticket.headers,
            "expires_at": ticket.expires_at.isoformat(),
        }
        announced_files.append(announced(file_key, name, ctype, key, None))
    if parameters is not None:
        key = input_key(task.owner_id, task_id, "parameters-parameters.json")  # as a ticket's
        data = json.dumps(parameters).encode()
        await asyncio.to_thread(storage.write, key, data, "application/json")
        params = announced("parameters", "parameters.json", "application/json", key, len(data))
        announced_files.append(params)
    engine = get_engine()
    await engine.replace_inputs(task_id, announced_files)
    await engine.set_waiting_status(
        task_id,
        TaskStatus.UPLOADING,
        "Waiting for the uploads",
        {"upload_started_at": now},
        expect=[TaskStatus.CREATED, TaskStatus.UPLOAD_FAILED],
    )
    return {"uploads": uploads, "expires_in_seconds": expiry}


async def fail_upload(task: TaskView, reason: str) -> TaskView:
    """The client could not upload a file: the task ends UPLOAD_FAILED with its reason."""
    if task.status is not TaskStatus.UPLOADING:
        raise DomainError("INVALID_STATUS", f"Task not in UPLOADING status (it is {task.status})")
    message = f"Upload failed: {reason[:300]}"
    return await get_engine().set_waiting_status(
        task.id,
        TaskStatus.UPLOAD_FAILED,
        message,
        {"error_code": "UPLOAD_FAILED", "error_message": message},
        expect=[TaskStatus.UPLOADING],
    )


async def start_processing(task: TaskView) -> TaskView:
    """Check files, parameters and credits of an UPLOADING tool task, then start its tool.

    Returns the task's row, now queued; raises 400 FILES_NOT_FOUND (task UPLOAD_FAILED),
    422 BAD_INPUT_FILE when a data file is empty, not text in a known encoding or not a
    readable table (`spyglass.tools.common.sniff`; task UPLOAD_FAILED, nothing charged),
    422 INVALID_PARAMETERS, 402 BILLING_INSUFFICIENT_CREDITS (task FAILED, with context),
    or 409 TASK_NOT_WAITING when it was already started (by a concurrent call too: the
    charge and the move to PENDING are one transaction, which only one call wins).
    """
    task_id = task.id
    if task.status in STARTED:
        raise not_waiting(task.status)
    if task.status is not TaskStatus.UPLOADING or task.tool_id not in TOOLS:
        raise DomainError("INVALID_STATUS", f"Task not in UPLOADING status (it is {task.status})")
    tool = TOOLS[task.tool_id]
    engine = get_engine()
    if task_id in await engine.expire_uploads(get_settings().upload_expiry):
        raise DomainError("UPLOAD_EXPIRED", "The upload URLs expired before processing started")
    storage = get_storage()
    inputs = {f.key: f for f in await engine.files(task_id, "input")}
    agents = list(task.agents)
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
            expect=[TaskStatus.UPLOADING],
        )
        raise DomainError("FILES_NOT_FOUND", message)
    for key in needed:
        art = inputs[key]
        if key == "parameters":
            continue
        try:
            await check_stored_file(art.storage_key, art.filename)
        except (DataFileError, ResourceLimitError) as exc:
            message = str(exc) if isinstance(exc, DataFileError) else exc.message
            code = exc.error_code if isinstance(exc, DataFileError) else exc.code
            await engine.set_waiting_status(
                task_id,
                TaskStatus.UPLOAD_FAILED,
                message,
                {"error_code": code, "error_message": message},
                expect=[TaskStatus.UPLOADING],
            )
            raise DomainError(code, message, 422) from None
    parameters: dict[str, Any] = {}
    if "parameters" in inputs:
        raw = await asyncio.to_thread(storage.read, inputs["parameters"].storage_key)
        try:
            loaded = json.loads(raw)
        except ValueError:
            loaded = None
        parameters = check_parameters(tool, loaded)
    run = ToolRun(
        tool_id=tool.id,
        agents=agents,
        inputs={
            k: ToolInput(storage_key=a.storage_key, filename=a.filename) for k, a in inputs.items()
        },
        parameters=parameters,
    )
    breakdown = tool.breakdown(agents)
    return await engine.start_waiting(task, tool_spec(tool.id), run, breakdown, "agent execution")


async def check_stored_file(storage_key: str, filename: str) -> None:
    """The checks of `spyglass.tools.common.sniff` on an uploaded file, before it is charged
    for: a CSV's first HEAD_BYTES only, here; an Excel workbook is opened whole (it is zipped,
    and calamine reads a whole sheet), in a child process under the task memory cap, so that
    a large workbook does not grow the web process."""
    kind = DATA_TYPES.get(extension(filename))
    if kind is not None and kind.reader == "excel":
        await run_in_child(check_stored_workbook, storage_key, filename)
        return
    head = await asyncio.to_thread(get_storage().read_prefix, storage_key, HEAD_BYTES + 1)
    complete = len(head) <= HEAD_BYTES
    await asyncio.to_thread(check_file, head[:HEAD_BYTES], filename, complete)


def check_stored_workbook(storage_key: str, filename: str) -> None:
    """In a child process: the checks of an uploaded workbook."""
    check_file(get_storage().read(storage_key), filename, complete=True)


async def retry_tool_task(task: TaskView) -> TaskView:
    """A new task with the same tool, agents and a copy of the same input files, processed now."""
    engine = get_engine()
    storage = get_storage()
    inputs = await engine.files(task.id, "input")
    if not inputs or task.tool_id is None or task.owner_id is None:
        raise DomainError("TASK_NOT_RETRYABLE", "This task has no files to run again")
    new = await engine.create_waiting(
        state_name=TOOLS_STATE,
        task_name=task.tool_id,
        tool_id=task.tool_id,
        agents=list(task.agents),
        cost=task.cost,
        owner_id=task.owner_id,
        retry_of=task.id,
    )
    copies = []
    for art in inputs:
        key = input_key(task.owner_id, new.id, art.storage_key.rsplit("/", 1)[-1])
        try:
            data = await asyncio.to_thread(storage.read, art.storage_key)
        except Exception:
            continue  # a file that never arrived: processing reports it as missing
        await asyncio.to_thread(storage.write, key, data, art.content_type)
        copies.append(replace(art, size_bytes=len(data), storage_key=key, created_at=utcnow()))
    await engine.replace_inputs(new.id, copies)
    uploading = await engine.set_waiting_status(
        new.id,
        TaskStatus.UPLOADING,
        "Files copied from the original task",
        {"upload_started_at": utcnow()},
        expect=[TaskStatus.CREATED],
    )
    return await start_processing(uploading)


def require_completed(task: TaskView) -> None:
    if task.status is not TaskStatus.COMPLETED:
        raise DomainError("TASK_NOT_COMPLETED", f"Task not completed (it is {task.status})")


async def download_list(task_id: str, base_url: str) -> list[dict[str, Any]]:
    """Presigned GET URLs (1 h) of the task's output files."""
    storage = get_storage()
    out = []
    for art in await get_engine().files(task_id, "output"):
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


async def read_report(task: TaskView) -> dict[str, Any]:
    """The stored JSON report of a completed tool task (404 REPORT_NOT_FOUND if it has none)."""
    require_completed(task)
    outputs = {f.key: f for f in await get_engine().files(task.id, "output")}
    art = outputs.get("report")
    if art is None:
        raise DomainError("REPORT_NOT_FOUND", "Report not found", 404)
    try:
        raw = await asyncio.to_thread(get_storage().read, art.storage_key)
    except Exception:
        raise DomainError("REPORT_NOT_FOUND", "Report not found", 404) from None
    return json.loads(raw)


def _tool_job(tool_id: str) -> JobSpec:
    if tool_id not in TOOLS:
        raise KeyError(tool_id)
    return tool_spec(tool_id)


registry.on_retry(TOOLS_STATE, retry_tool_task)
registry.internal(TOOLS_STATE, _tool_job)
