"""The JSON shapes of a task: what sockets stream and what the direct API answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from spyglass.tasks.models import Task
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.view import EventView, TaskView

TASK_COLUMNS = tuple(Task.model_fields)


def row_of(task: Task) -> dict[str, Any]:
    return {name: getattr(task, name) for name in TASK_COLUMNS}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def socket_payload(
    kind: str,
    task: TaskView | Mapping[str, Any],
    *,
    eta_seconds: float | None = None,
    rate: float | None = None,
    event: dict[str, Any] | None = None,
    data: Any = None,
) -> dict[str, Any]:
    """One socket message: `snapshot` on connect, then `update` (status/progress) or `event`.
    `task` is a view, or an engine row (a live task's: see `direct_row`)."""
    fields = direct_view(task) if isinstance(task, TaskView) else direct_row(task)
    payload: dict[str, Any] = {"type": kind, **fields}
    if eta_seconds is not None or rate is not None:
        payload["eta_seconds"] = eta_seconds
        payload["rate"] = rate
    if data is not None:
        payload["data"] = data
    if event is not None:
        payload["event"] = {
            "seq": event["seq"],
            "event_type": event["event_type"],
            "message": event.get("message"),
            "data": event.get("data"),
            "timestamp": iso(event.get("timestamp")),
        }
    return payload


def direct_view(task: TaskView) -> dict[str, Any]:
    """The seed's shape `{task_id, status, progress, result, timestamp}`, plus names and errors
    (`direct_row`'s, from the view's fields). Sockets send the same fields, with a `type` in
    front."""
    row = {name: getattr(task, name) for name in DIRECT_ROW_COLUMNS}
    row["status"] = task.status.value
    return direct_row(row)


#: The columns `direct_row` reads, and the owner's (whether a token-free path may show it).
DIRECT_ROW_COLUMNS = (
    "id",
    "state_name",
    "task_name",
    "tool_id",
    "agents",
    "status",
    "progress",
    "message",
    "result",
    "error_code",
    "error_message",
    "scheduled_at",
    "updated_at",
    "owner_id",
)


@dataclass(frozen=True, slots=True)
class DirectTask:
    """A task as the direct API answers it (`answer`: `direct_row`'s fields), with what the
    access policy asks of it: its state and its owner."""

    state_name: str
    owner_id: int | None
    answer: dict[str, Any]

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> DirectTask:
        """From a row with `DIRECT_ROW_COLUMNS` (or more)."""
        return cls(row["state_name"], row.get("owner_id"), direct_row(row))


def direct_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A task's direct-API fields, from a row (an engine row, a stored one with
    `DIRECT_ROW_COLUMNS`, or a view's fields): a job's progress is on its sockets, and a
    result read answered, without a view built first."""
    tool_id = row.get("tool_id")
    scheduled, updated = row.get("scheduled_at"), row.get("updated_at")
    return {
        "task_id": row["id"],
        "state_name": row["state_name"],
        "task_name": row["task_name"],
        "tool_id": tool_id,
        "agents": list(row.get("agents") or ()) if tool_id else None,
        "status": row["status"],  # the engine's rows hold a `TaskStatus` value
        "progress": float(row.get("progress") or 0.0),
        "message": row.get("message"),
        "result": row.get("result"),
        "error_code": row.get("error_code"),
        "error_message": row.get("error_message"),
        "scheduled_at": scheduled.isoformat() if scheduled is not None else None,
        "timestamp": updated.isoformat() if updated is not None else None,
    }


def rest_view(task: TaskView) -> dict[str, Any]:
    """A task in the REST tasks API (S000 `TaskResponse` with the job's fields)."""
    return {
        "task_id": task.id,
        "status": task.status.value,
        "tool_id": task.tool_id,
        "agents": list(task.agents),
        "state_name": task.state_name,
        "task_type": task.task_name,
        "progress": task.progress,
        "message": task.message,
        "input_params": task.input_args,
        "result": task.result,
        "error_code": task.error_code,
        "error_message": task.error_message,
        "retry_of": task.retry_of,
        "attempt": task.attempt,
        "cost": task.cost,
        "queue": task.queue,
        "priority": task.priority,
        "scheduled_at": iso(task.scheduled_at),
        "created_at": iso(task.created_at),
        "upload_started_at": iso(task.upload_started_at),
        "processing_started_at": iso(task.processing_started_at),
        "completed_at": iso(task.completed_at),
        "failed_at": iso(task.failed_at),
        "cancelled_at": iso(task.cancelled_at),
        "updated_at": iso(task.updated_at),
        "execution_time_ms": task.execution_time_ms,
        "downloads_available": task.status is TaskStatus.COMPLETED and task.is_tool,
    }


def event_view(event: EventView) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "timestamp": iso(event.timestamp),
        "event_type": event.event_type,
        "message": event.message,
        "data": event.data,
    }
