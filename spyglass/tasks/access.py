"""Who may see a task: its owner and admins. Anyone else is told it does not exist."""

from __future__ import annotations

from typing import Any, Protocol

from spyglass.errors import DomainError
from spyglass.tasks.engine import get_engine


class Viewer(Protocol):
    id: int
    is_admin: bool


def can_see(row: dict[str, Any] | None, user: Viewer | None) -> bool:
    return bool(row and user and (user.is_admin or row["owner_id"] == user.id))


async def owned_row(task_id: str, user: Viewer | None) -> dict[str, Any]:
    """The freshest view of a task the user may see; 404 TASK_NOT_FOUND otherwise."""
    row = await get_engine().get_row(task_id) if user is not None else None
    if row is None or not can_see(row, user):
        raise DomainError("TASK_NOT_FOUND", f"Task '{task_id}' not found", 404)
    return row
