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
import json
import logging
import sys
from functools import cache
from typing import Any

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel

from spyglass.storage import get_storage
from spyglass.tasks.child import send
from spyglass.tasks.context import TaskContext
from spyglass.tasks.credits import WORK_DONE
from spyglass.tasks.decorator import MonitoredJob, build_spec
from spyglass.tasks.registry import JobOptions, JobSpec
from spyglass.tools.catalogue import TOOLS, TOOLS_STATE
from spyglass.tools.common.frames import load_table
from spyglass.tools.common.report import build_report, to_json
from spyglass.tools.common.toolkit import AgentResult, Output, check_inputs, run_agents

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


def _tool_body(task_id: str, run: ToolRun) -> bytes:
    """In the task's child process: read the files, run the agents in order, build the report."""
    _reserve_what_is_used()
    tool = TOOLS[run.tool_id]
    params = tool.parameters.model_validate(run.parameters)
    frames: dict[str, pd.DataFrame] = {}
    for key, source in run.inputs.items():
        if key == "parameters":
            continue
        frames[key] = load_table(get_storage().read(source.storage_key), source.filename)
    check_inputs(tool, run.agents, frames)

    def started(agent: str) -> None:
        send(("started", agent, {}))

    def done(agent: str, result: AgentResult, outputs: list[Output]) -> None:
        files = [(o.filename, o.data, o.content_type, o.key, o.kind) for o in outputs]
        send(("completed", agent, {"outputs": files, "summary": _summary(result)}))

    ctx = run_agents(
        tool, run.agents, frames, params, task_id=task_id, on_start=started, on_done=done
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
