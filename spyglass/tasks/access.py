"""Who may see and manage what: the one access policy of every path.

REST, token sockets, the token API, pages' states and the admin portal all ask here.
A task is visible to its owner and to admins (every task, ownerless direct ones too);
anyone else is told it does not exist. The token-free direct paths see only tasks
without an owner. Client tokens are managed by their owner and by admins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from spyglass.tasks.view import TaskView


class Viewer(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def is_admin(self) -> bool: ...


def is_admin(user: Viewer | None) -> bool:
    """Admins see and manage everything: the dashboard, the portal, every task and token."""
    return bool(user is not None and user.is_admin)


def can_see(task: TaskView | None, user: Viewer | None) -> bool:
    return bool(task and user and (is_admin(user) or task.owner_id == user.id))


def visible_without_account(task: TaskView) -> bool:
    """What the token-free direct paths may show: tasks nobody owns."""
    return task.owner_id is None


def owner_scope(user: Viewer) -> int | None:
    """Whose tasks (and client tokens) `user` lists and follows: their own, or with None
    every owner's (an admin)."""
    return None if is_admin(user) else user.id


def can_manage_tokens_of(owner_id: int, user: Viewer) -> bool:
    """Issue or revoke a client token of `owner_id`: that user, or an admin."""
    return owner_id == user.id or is_admin(user)
