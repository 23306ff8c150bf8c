"""Who may see and do what: the one access policy of every path.

REST, token sockets, the token API, pages' states and the admin portal all ask here.

Roles (the `user.role` column):

- **admin**: everything: every task, every token, users' roles and credits, the portal.
- **operator**: reads and acts on (cancels, retries, deletes) every task; no user management.
- **viewer**: reads every task; changes nothing (no start, cancel, retry or delete).
- **user**: their own tasks only.

A task a person may not read is "not found" for them, exactly like an unknown id; one they
may read but not act on is refused (403 FORBIDDEN). The token-free direct paths see only
tasks without an owner.

Client tokens carry scopes (`tasks:read`, `tasks:start`, `tasks:manage`, `tokens:manage`):
a request made with a token needs the route's scope on the token *and* in the role of its
owner (`scope_allowed`), so a token never does more than its user's role allows.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from spyglass.tasks.view import TaskView


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"
    USER = "user"


ROLES: tuple[str, ...] = tuple(r.value for r in Role)

TASKS_READ = "tasks:read"
TASKS_START = "tasks:start"
TASKS_MANAGE = "tasks:manage"
TOKENS_MANAGE = "tokens:manage"
#: Every scope a client token can carry; a token issued without scopes gets them all (the
#: behaviour of tokens from before scopes existed).
SCOPES: tuple[str, ...] = (TASKS_READ, TASKS_START, TASKS_MANAGE, TOKENS_MANAGE)
SCOPE_DOC = {
    TASKS_READ: "list and read tasks, their events, results and files; follow sockets",
    TASKS_START: "start jobs and tool tasks (REST create, token start, upload, process)",
    TASKS_MANAGE: "cancel, retry and delete tasks (one or in bulk)",
    TOKENS_MANAGE: "list, issue and revoke client tokens",
}

#: What each role may do at all, whatever a token says.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset(SCOPES),
    Role.OPERATOR: frozenset(SCOPES),
    Role.USER: frozenset(SCOPES),
    Role.VIEWER: frozenset({TASKS_READ, TOKENS_MANAGE}),
}


class Viewer(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def role(self) -> str: ...


def role_of(user: Viewer | None) -> str | None:
    if user is None:
        return None
    role = user.role
    return role if role in ROLES else Role.USER.value


def is_admin(user: Viewer | None) -> bool:
    """Admins see and manage everything: users, credits, the portal, every task and token."""
    return role_of(user) == Role.ADMIN


def can_manage_users(user: Viewer | None) -> bool:
    """Roles, credits, other users' tokens, the model portal: admins only."""
    return is_admin(user)


def reads_every_task(user: Viewer | None) -> bool:
    """Admins, operators and viewers read every task (and open the admin dashboard)."""
    return role_of(user) in (Role.ADMIN, Role.OPERATOR, Role.VIEWER)


def acts_on_every_task(user: Viewer | None) -> bool:
    """Admins and operators cancel, retry and delete anyone's task."""
    return role_of(user) in (Role.ADMIN, Role.OPERATOR)


def can_change_tasks(user: Viewer | None) -> bool:
    """May start, cancel, retry or delete tasks at all (a viewer changes nothing)."""
    return user is not None and role_of(user) != Role.VIEWER


def can_read(task: TaskView | None, user: Viewer | None) -> bool:
    return bool(task and user and (reads_every_task(user) or task.owner_id == user.id))


#: The older name of `can_read`, used by pages and sockets.
can_see = can_read


def can_act(task: TaskView | None, user: Viewer | None) -> bool:
    """Cancel, retry or delete `task`: its owner (not a viewer), or an admin or operator."""
    if not task or not user or not can_change_tasks(user):
        return False
    return acts_on_every_task(user) or task.owner_id == user.id


class Owned(Protocol):
    """A task, or what is read of it, as far as whose it is."""

    @property
    def owner_id(self) -> int | None: ...


def visible_without_account(task: Owned) -> bool:
    """What the token-free direct paths may show: tasks nobody owns."""
    return task.owner_id is None


def owner_scope(user: Viewer) -> int | None:
    """Whose tasks `user` lists and follows: their own, or with None every owner's (admins,
    operators, viewers)."""
    return None if reads_every_task(user) else user.id


def act_scope(user: Viewer) -> int | None:
    """Whose tasks `user` may act on in bulk: their own, or with None every owner's. Callers
    check `can_change_tasks` first (a viewer acts on none)."""
    return None if acts_on_every_task(user) else user.id


def token_scope(user: Viewer) -> int | None:
    """Whose client tokens `user` lists: their own, or with None everyone's (an admin)."""
    return None if is_admin(user) else user.id


def can_manage_tokens_of(owner_id: int, user: Viewer) -> bool:
    """Issue or revoke a client token of `owner_id`: that user, or an admin."""
    return owner_id == user.id or is_admin(user)


def scope_allowed(scope: str, token_scopes: Collection[str], role: str) -> bool:
    """A request needing `scope`, made with a token of `token_scopes` owned by a `role`."""
    return scope in token_scopes and scope in ROLE_SCOPES.get(role, ROLE_SCOPES[Role.USER])


def normalise_scopes(scopes: Sequence[str] | None) -> tuple[str, ...]:
    """The scopes of a token being issued, in canonical order; None: every scope. Raises
    ValueError naming an unknown one."""
    if scopes is None:
        return SCOPES
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"Unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    wanted = set(scopes)
    return tuple(s for s in SCOPES if s in wanted)
