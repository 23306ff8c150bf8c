"""Running a data tool on a task's uploaded files: agents in order, a report at the end.

The tool job is engine-internal (not in the public job registry): it is only ever
started by `POST /api/tasks/{id}/process` on the caller's own files, in the
transaction that charged the credits for all its agents. The child process reads the
files and runs the agents (`spyglass.tools.common.toolkit.run_agents`); each agent that
finishes logs an `agent_completed` event with its cost, so a run that stops (failed,
cancelled, interrupted) gets back what its unfinished agents cost, by the one rule of
`spyglass.tasks.credits`.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import sys
from functools import cache
from typing import Any

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel

from spyglass.config import get_settings
from spyglass.filetypes import data_type
from spyglass.storage import Storage, get_storage
from spyglass.tasks.child import send
from spyglass.tasks.context import TaskContext
from spyglass.tasks.credits import WORK_DONE
from spyglass.tasks.decorator import MonitoredJob, build_spec
from spyglass.tasks.registry import JobOptions, JobSpec
from spyglass.tools.catalogue import TOOLS, TOOLS_STATE
from spyglass.tools.common.frames import load_table
from spyglass.tools.common.report import build_report, to_json
from spyglass.tools.common.sniff import HEAD_BYTES, sniff_csv
from spyglass.tools.common.toolkit import (
    AgentResult,
    Output,
    Tool,
    check_inputs,
    progress_to,
    run_agents,
)
from spyglass.tools.profile.streaming import stream_profile

log = logging.getLogger(__name__)


class ToolInput(BaseModel):
    storage_key: str
    filename: str


class ToolRun(BaseModel):
    tool_id: str
    agents: list[str]
    inputs: dict[str, ToolInput]
    parameters: dict[str, Any] = {}


async def run_tool(task: TaskContext, run: ToolRun) -> dict[str, Any]:
    """Load the files and run the agents in one child process; stream its steps here.

    The agents share their frames (clean-my-data's mutate `frames["working"]` in turn), so
    the whole body runs in the child; it sends each agent's start and end (with its output
    files) back, and this job logs them, saves the outputs and reports progress as today.
    """
    tool = TOOLS[run.tool_id]
    tool.parameters.model_validate(run.parameters)  # invalid parameters fail here, at once
    await task.update(progress=1, message="Reading the files")
    checklist = {agent: "pending" for agent in run.agents}
    costs = tool.breakdown(run.agents)  # what each agent was charged
    done = 0

    async def on_message(message: tuple[str, str, dict[str, Any]]) -> None:
        nonlocal done
        kind, agent, info = message
        if kind == "progress":  # a long step within an agent (or reading: agent "")
            share = info["share"]
            await task.update(
                progress=None
                if share is None or not agent
                else 5 + 90 * (done + share) / len(run.agents),
                message=f"{agent}: {info['what']}"
                if agent
                else f"Reading the files: {info['what']}",
            )
            return
        if kind == "started":
            checklist[agent] = "running"
            await task.log(f"Running {agent}", level="agent_started", data={"agent": agent})
            await task.update(message=f"Running {agent}", data={"agents": dict(checklist)})
            return
        for filename, data, content_type, key, kind_ in info["outputs"]:
            await task.save_output(filename, data, content_type, key=key, kind=kind_)
        checklist[agent] = "completed"
        done += 1
        await task.log(
            f"{agent} completed",
            level=WORK_DONE,  # this agent's credits are earned: not refunded
            data={"agent": agent, "cost": costs[agent], "summary": info["summary"]},
        )
        await task.update(
            progress=5 + 90 * done / len(run.agents),
            message=f"{agent} completed",
            data={"agents": dict(checklist)},
        )

    body = await task.run_sync(_tool_body, task.task_id, run, on_message=on_message)
    await task.save_output(
        "report.json",
        body,
        "application/json",
        key="report",
        kind="report",
    )
    return {"report": "report.json", "executiveSummary": json.loads(body)["executiveSummary"]}


#: glibc's mallopt parameter for the most malloc arenas.
_M_ARENA_MAX = -8


def _reserve_what_is_used() -> None:
    """In the task's child process (one run, then it exits): allocate so that the address
    space reserved stays close to the memory used, which is what the child's cap
    (SPYGLASS_JOB_MEMORY_MB, an address-space limit) counts. pyarrow's default allocator
    (mimalloc) reserves about a gigabyte up front and glibc 64 MB for each thread's arena, so
    a run using 600 MB was refused under a 1 GB cap; the system allocator with two arenas
    reserves little more than it uses, at the same speed (bench/profile_bench.py)."""
    pa.set_memory_pool(pa.system_memory_pool())
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 2)


#: The address space a task's child holds before it reads a byte (Python, pandas, pyarrow
#: and the app, forked from the warm server: about 400 MB), and a margin for the agents.
CHILD_BASE_MB = 450
#: Address space a CSV loaded whole needs, per byte of the file: its bytes, pyarrow's table
#: and the frame, then the agents' per-column work (measured: bench/RESULTS-bigfiles.md).
LOAD_FACTOR = 6


class FileTooLargeError(ValueError):
    """A file larger than this tool can hold within a task's memory, found before reading it:
    the task ends FAILED with this message, its agents refunded."""

    error_code = "RESOURCE_LIMIT"


def in_memory_limit(memory_mb: int | None = None) -> int:
    """The largest file (bytes) loaded whole under a task memory cap of `memory_mb` (the
    setting SPYGLASS_JOB_MEMORY_MB by default); larger CSV files are streamed by the tools
    that can (profile-my-data), and refused by the others."""
    mb = get_settings().job_memory_mb if memory_mb is None else memory_mb
    return max(0, mb - CHILD_BASE_MB) * 1024 * 1024 // LOAD_FACTOR


def read_input(tool: Tool, storage: Storage, source: ToolInput, limit: int) -> pd.DataFrame:
    """One uploaded file as the agents read it: loaded whole when it fits the task's memory;
    else, a CSV for a tool that streams, its sample standing for it (`streaming`); else
    FileTooLargeError, before any of it is read."""
    size = storage.size(source.storage_key) or 0
    if size <= limit:
        return load_table(storage.read_whole(source.storage_key), source.filename)
    kind = data_type(source.filename)
    if tool.streams and kind is not None and kind.reader == "csv":
        head = storage.read_prefix(source.storage_key, HEAD_BYTES)
        dialect = sniff_csv(head, source.filename, complete=False)
        return stream_profile(lambda: storage.open(source.storage_key), dialect, source.filename)
    mb = get_settings().job_memory_mb
    if tool.streams:  # an Excel workbook: read whole or not at all
        how = "Save it as a CSV (profile-my-data reads a CSV of any size) or split it"
    else:
        how = (
            "Profile it with profile-my-data (it reads a CSV of any size), or split it into "
            f"smaller files for {tool.id}"
        )
    raise FileTooLargeError(
        f"'{source.filename}' ({size / 1e6:,.0f} MB) is too large for {tool.id}: a task may "
        f"use {mb:,} MB of memory, enough for files up to {limit / 1e6:,.0f} MB. {how}; or ask "
        "the administrator to raise SPYGLASS_JOB_MEMORY_MB"
    )


def _tool_body(task_id: str, run: ToolRun) -> bytes:
    """In the task's child process: read the files, run the agents in order, build the report."""
    _reserve_what_is_used()
    tool = TOOLS[run.tool_id]
    params = tool.parameters.model_validate(run.parameters)
    storage = get_storage()
    limit = in_memory_limit()
    frames: dict[str, pd.DataFrame] = {}

    def progress(agent: str, share: float | None, what: str) -> None:
        send(("progress", agent, {"share": share, "what": what}))

    with progress_to(functools.partial(progress, "")):  # a streamed file reports its blocks
        for key, source in run.inputs.items():
            if key == "parameters":
                continue
            frames[key] = read_input(tool, storage, source, limit)
    check_inputs(tool, run.agents, frames)

    def started(agent: str) -> None:
        send(("started", agent, {}))

    def done(agent: str, result: AgentResult, outputs: list[Output]) -> None:
        files = [(o.filename, o.data, o.content_type, o.key, o.kind) for o in outputs]
        send(("completed", agent, {"outputs": files, "summary": _summary(result)}))

    ctx = run_agents(
        tool,
        run.agents,
        frames,
        params,
        task_id=task_id,
        on_start=started,
        on_done=done,
        on_progress=progress,
    )
    return to_json(build_report(tool, ctx))


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if isinstance(v, int | float | str)}


async def _tool_job(task: TaskContext, run: ToolRun) -> dict[str, Any]:
    return await run_tool(task, run)


@cache
def tool_spec(tool_id: str) -> JobSpec:
    """The engine-internal job of a tool (not exposed on any start endpoint)."""
    job = MonitoredJob(_tool_job, JobOptions(direct=False))
    return build_spec(TOOLS_STATE, (), tool_id, job, is_static=True)
