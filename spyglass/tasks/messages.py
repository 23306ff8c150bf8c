"""The JSON shapes of a task: what sockets stream and what the direct API answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from spyglass.tasks.models import Task

TASK_COLUMNS = tuple(Task.model_fields)


def row_of(task: Task) -> dict[str, Any]:
    return {name: getattr(task, name) for name in TASK_COLUMNS}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def socket_payload(
    kind: str,
    row: dict[str, Any],
    *,
    eta_seconds: float | None = None,
    rate: float | None = None,
    event: dict[str, Any] | None = None,
    data: Any = None,
) -> dict[str, Any]:
    """One socket message: `snapshot` on connect, then `update` (status/progress) or `event`."""
    payload: dict[str, Any] = {"type": kind, **direct_view(row)}
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


def direct_view(row: dict[str, Any]) -> dict[str, Any]:
    """The seed's shape `{task_id, status, progress, result, timestamp}`, plus names and errors.

    Sockets send the same fields, with a `type` in front.
    """
    return {
        "task_id": row["id"],
        "state_name": row["state_name"],
        "task_name": row["task_name"],
        "tool_id": row.get("tool_id"),
        "agents": row.get("agents"),
        "status": row["status"],
        "progress": row["progress"],
        "message": row.get("message"),
        "result": row.get("result"),
        "error_code": row.get("error_code"),
        "error_message": row.get("error_message"),
        "scheduled_at": iso(row.get("scheduled_at")),
        "timestamp": iso(row.get("updated_at")),
    }


def rest_view(row: dict[str, Any]) -> dict[str, Any]:
    """A task in the REST tasks API (S000 `TaskResponse` with the job's fields)."""
    return {
        "task_id": row["id"],
        "status": row["status"],
        "tool_id": row.get("tool_id"),
        "agents": row.get("agents") or [],
        "state_name": row["state_name"],
        "task_type": row["task_name"],
        "progress": row["progress"],
        "message": row.get("message"),
        "input_params": row.get("input_args"),
        "result": row.get("result"),
        "error_code": row.get("error_code"),
        "error_message": row.get("error_message"),
        "retry_of": row.get("retry_of"),
        "attempt": row.get("attempt", 1),
        "cost": row.get("cost", 0),
        "queue": row.get("queue") or "default",
        "priority": row.get("priority") or 0,
        "scheduled_at": iso(row.get("scheduled_at")),
        "created_at": iso(row.get("created_at")),
        "upload_started_at": iso(row.get("upload_started_at")),
        "processing_started_at": iso(row.get("processing_started_at")),
        "completed_at": iso(row.get("completed_at")),
        "failed_at": iso(row.get("failed_at")),
        "cancelled_at": iso(row.get("cancelled_at")),
        "updated_at": iso(row.get("updated_at")),
        "execution_time_ms": row.get("execution_time_ms"),
        "downloads_available": row["status"] == "COMPLETED" and bool(row.get("tool_id")),
    }


def event_view(event: Any) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "timestamp": iso(event.timestamp),
        "event_type": event.event_type,
        "message": event.message,
        "data": event.data,
    }
