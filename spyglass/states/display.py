"""How pages put a task into words: its title, times and durations, and what went wrong.

People see a tool's name or a job's title, never the state and function names the engine
files runs under; times in UTC; durations in seconds, minutes and hours; an error as the
message written for them (the exception class left out) with advice that fits its code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from spyglass.tasks.registry import UnknownJob, humanise, registry
from spyglass.tools.catalogue import TOOLS, TOOLS_STATE


def title_of(state_name: str, task_name: str, tool_id: str | None = None) -> str:
    """A data tool's name ("Profile my data"), or the job's title (its doc string's first
    line, else its name in words)."""
    tool = TOOLS.get(tool_id or (task_name if state_name == TOOLS_STATE else ""))
    if tool is not None:
        return tool.name
    try:
        return registry.get(state_name, task_name).title
    except UnknownJob:
        return humanise(task_name)


def agent_label(tool_id: str | None, agent_id: str) -> str:
    """What an agent does, in words ("Data profiling and statistics")."""
    tool = TOOLS.get(tool_id or "")
    agent = tool.agent(agent_id) if tool is not None else None
    return agent.description if agent is not None else humanise(agent_id)


def args_text(args: Mapping[str, Any] | None, limit: int = 80) -> str:
    """A job's input in one short line (`name Browser · age 7`): what tells its runs apart."""
    if not args or not isinstance(args, Mapping):
        return ""
    parts = []
    for key, value in args.items():
        if isinstance(value, dict | list) or value is None:
            continue
        parts.append(f"{humanise(str(key)).lower()} {value}")
    text = " · ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_time(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def when_text(value: datetime | str | None) -> str:
    """`2026-11-26 14:03:22` (UTC; the columns say so)."""
    moment = parse_time(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def duration_text(seconds: float | None) -> str:
    """`< 0.01 s`, `0.42 s`, `3.5 s`, `12 s`, `2 min 05 s`, `1 h 02 min`, `3 d 4 h`."""
    if seconds is None:
        return ""
    seconds = max(0.0, float(seconds))
    if seconds == 0:
        return "0 s"
    if seconds < 0.01:
        return "< 0.01 s"
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def eta_text(eta_seconds: float | None) -> str:
    """`about 20 s left`, while a task reports how fast it goes."""
    if eta_seconds is None or eta_seconds < 0:
        return ""
    return f"about {duration_text(eta_seconds)} left"


#: `RuntimeError: the job broke` → the part after the class name.
_EXCEPTION_PREFIX = re.compile(r"^[A-Z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*: ")


def human_error(message: str | None) -> str:
    """An error message as people read it: without the exception class in front, starting
    with a capital letter."""
    text = _EXCEPTION_PREFIX.sub("", (message or "").strip(), count=1)
    return text[:1].upper() + text[1:]


#: What to do next, by error code: for a data tool's run, and for a job's.
REMEDIES: dict[str, tuple[str, str]] = {
    "BAD_INPUT_FILE": (
        "The file cannot be used as it is. Fix it (a CSV or Excel table with a header row and "
        "at least one row of data) or choose another file, then run the task again: retrying "
        "with the same file fails the same way.",
        "The job could not use its input. Start it again with other input.",
    ),
    "JOB_ERROR": (
        "The tool stopped on an unexpected error. Retry it once; if it fails again, try "
        "another file or fewer agents, and tell the administrator what the message says.",
        "The job's own code stopped on an error. Retrying runs the same code on the same "
        "input: if it fails the same way, tell the job's author what the message says.",
    ),
    "TIMEOUT": (
        "The run took longer than it may. Retry it with a smaller file or fewer agents.",
        "The job ran out of time. Retry it when the system is less busy, or give it less "
        "to do; its author can raise its time limit.",
    ),
    "INTERRUPTED": (
        "The server stopped while this task ran: nothing is wrong with your file. Retry it.",
        "The server stopped while this task ran: nothing is wrong with the input. Retry it.",
    ),
    "RESOURCE_LIMIT": (
        "The file needs more memory than a task may use. Try a smaller file (fewer rows or "
        "columns; profile-my-data reads a CSV of any number of rows), or ask the "
        "administrator to raise the limit.",
        "The job needed more memory than a task may use. Give it less to do, or ask the "
        "administrator to raise the limit.",
    ),
    "RESULT_NOT_SERIALIZABLE": (
        "The tool finished but its result could not be stored. Tell the administrator.",
        "The job finished but returned something that cannot be stored (not JSON): its "
        "author must fix the job. Retrying fails the same way.",
    ),
    "BILLING_INSUFFICIENT_CREDITS": (
        "Not enough credits for these agents: ask an admin for more, or choose fewer "
        "agents, then retry.",
        "Not enough credits: ask an admin for more, then retry.",
    ),
    "FILES_NOT_FOUND": (
        "A file never arrived. Start a new task and upload it again.",
        "A file never arrived. Start a new task and upload it again.",
    ),
    "UPLOAD_FAILED": (
        "The upload did not finish. Start a new task and upload the file again.",
        "The upload did not finish. Start a new task and upload the file again.",
    ),
    "UPLOAD_EXPIRED": (
        "The upload links expired before processing started. Start a new task and upload "
        "the files again.",
        "The upload links expired before processing started. Start a new task.",
    ),
}

#: Failures a plain retry cannot fix: the page offers to start afresh with another file.
NEEDS_NEW_FILE = frozenset({"BAD_INPUT_FILE", "RESOURCE_LIMIT"})


def remedy(error_code: str | None, *, tool: bool) -> str:
    """Advice that fits the failure (and whether it was a data tool's run or a job's)."""
    pair = REMEDIES.get(error_code or "")
    if pair is None:
        return "Retry it; if it fails again, tell the administrator what the message says."
    return pair[0] if tool else pair[1]
